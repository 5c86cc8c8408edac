"""Contest prizes, team-goal rewards and captain rewards: fixed amounts for a frozen result, paid through the
ledger as prizes (their own entries, from the platform's `prize_expense` account), never as a commission level.

Rules, published with the contest (`contests.prizes`):
- members: `{"ranks": [1, 3], "amount_fen": 20000}` each of ranks 1 to 3; `{"goal": 500000, "amount_fen":
  10000}` everyone whose score reaches the goal (of several goals, the highest reached pays).
- teams: `{"ranks" | "goal": ..., "captain_fen": 5000, "members_fen": 30000}`: the captain's reward, and a pool
  the team's members share by what each contributed to the team's score (largest remainder, to the fen).

What a prize can depend on: a member's score counts their level-1 sales and bindings and their level-1/2
commissions; a member's share counts their own contribution; a team's score never counts a sale more than two
levels below its captain (app/boards/contests.py). So no prize depends on a sale three levels below its receiver.

Before a prize is paid its receiver passes the fraud checks (app/orders/signals.py on the orders behind the prize,
and no open risk flag); a flagged prize is `held` with a risk flag until an operator grants or rejects it."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.boards.models import Contest, ContestPrize
from app.db import utcnow
from app.errors import Conflict, NotFound, ValidationFailed
from app.events import record as record_event
from app.fraud.service import has_open_flags, raise_flag
from app.ledger.service import member_account, platform_account, post_entry
from app.orders.signals import Thresholds, order_signals

MAX_RULES = 20
MAX_RANK = 1000
MAX_PRIZE_FEN = 10 ** 10


def _invalid(message: str, **details):
    raise ValidationFailed(message, code="contest_prize_invalid", details=details)


def _int(rule: dict, key: str, i: int, *, low: int, high: int) -> int:
    value = rule.get(key, 0 if key in ("captain_fen", "members_fen") else None)
    if type(value) is not int:  # floats (even 100.0), strings and booleans are refused, never truncated
        _invalid(f"prizes[{i}].{key} must be an integer.", field=f"prizes[{i}].{key}")
    if not low <= value <= high:
        _invalid(f"prizes[{i}].{key} must be between {low} and {high}.", field=f"prizes[{i}].{key}")
    return value


def parse_rules(kind: str, rules) -> list[dict]:
    """Validated prize rules for a contest of `kind` (member | team); ValidationFailed otherwise."""
    if rules is None:
        return []
    if not isinstance(rules, list) or len(rules) > MAX_RULES:
        _invalid(f"prizes must be a list of at most {MAX_RULES} rules.", field="prizes")
    out, taken = [], []
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            _invalid(f"prizes[{i}] must be an object.", field=f"prizes[{i}]")
        amounts = ("amount_fen",) if kind == "member" else ("captain_fen", "members_fen")
        allowed = {"ranks", "goal", *amounts}
        if set(rule) - allowed:
            _invalid(f"prizes[{i}] has unknown keys; a {kind} contest's rule takes {sorted(allowed)}.",
                  field=f"prizes[{i}]")
        if ("ranks" in rule) == ("goal" in rule):
            _invalid(f"prizes[{i}] needs either ranks [from, to] or a goal.", field=f"prizes[{i}]")
        clean: dict = {}
        if "ranks" in rule:
            ranks = rule["ranks"]
            if not (isinstance(ranks, list) and len(ranks) == 2 and all(type(r) is int for r in ranks)
                    and 1 <= ranks[0] <= ranks[1] <= MAX_RANK):
                _invalid(f"prizes[{i}].ranks must be [from, to] with 1 <= from <= to <= {MAX_RANK}.",
                      field=f"prizes[{i}].ranks")
            if any(a <= ranks[1] and ranks[0] <= b for a, b in taken):
                _invalid(f"prizes[{i}].ranks overlaps another rule's ranks.", field=f"prizes[{i}].ranks")
            taken.append(tuple(ranks))
            clean["ranks"] = list(ranks)
        else:
            clean["goal"] = _int(rule, "goal", i, low=1, high=MAX_PRIZE_FEN * 100)
        for key in amounts:
            clean[key] = _int(rule, key, i, low=0 if kind == "team" else 1, high=MAX_PRIZE_FEN)
        if not any(clean[k] for k in amounts):
            _invalid(f"prizes[{i}] pays nothing.", field=f"prizes[{i}]")
        out.append(clean)
    goals = [r["goal"] for r in out if "goal" in r]
    if len(goals) != len(set(goals)):
        _invalid("Two goal rules have the same goal.", field="prizes")
    return out


def _rule_for(rules: list[dict], rank: int, score: int) -> tuple[dict | None, dict | None]:
    """(the rank rule that pays this rank, the highest goal rule this score reaches)."""
    by_rank = next((r for r in rules if "ranks" in r and r["ranks"][0] <= rank <= r["ranks"][1]), None)
    goals = [r for r in rules if "goal" in r and score >= r["goal"]]
    return by_rank, (max(goals, key=lambda r: r["goal"]) if goals else None)


def split(pool: int, weights: dict[int, int]) -> dict[int, int]:
    """Share `pool` fen among ids by positive integer weights, to the fen: largest remainder, ties to the
    smaller id. The shares sum to the pool exactly."""
    weights = {k: w for k, w in weights.items() if w > 0}
    total = sum(weights.values())
    if pool <= 0 or total <= 0:
        return {}
    shares = {k: pool * w // total for k, w in weights.items()}
    left = pool - sum(shares.values())
    for k in sorted(weights, key=lambda k: (-(pool * weights[k] % total), k))[:left]:
        shares[k] += 1
    return {k: v for k, v in shares.items() if v > 0}


def plan_prizes(contest: Contest, results: list[dict], team_info: dict[int, tuple[int, dict[int, int]]]) -> list[dict]:
    """The prize rows a frozen contest pays. `team_info`: {team_id: (captain_id, {member_id: contribution})} for
    team contests. Pure."""
    rows: list[dict] = []
    for r in results:
        by_rank, by_goal = _rule_for(contest.prizes or [], r["rank"], r["score"])
        for rule, tag in ((by_rank, ""), (by_goal, "goal")):
            if rule is None:
                continue
            base = {"contest_id": contest.id, "rank": r["rank"]}
            if contest.kind == "member":
                rows.append({**base, "member_id": r["subject_id"], "team_id": None, "role": tag or "winner",
                             "amount_fen": rule["amount_fen"]})
                continue
            captain, contributions = team_info.get(r["subject_id"], (None, {}))
            if captain is not None and rule["captain_fen"]:
                rows.append({**base, "member_id": captain, "team_id": r["subject_id"],
                             "role": f"{tag}_captain" if tag else "captain", "amount_fen": rule["captain_fen"]})
            for member_id, share in split(rule["members_fen"], contributions).items():
                rows.append({**base, "member_id": member_id, "team_id": r["subject_id"],
                             "role": f"{tag}_share" if tag else "share", "amount_fen": share})
    return rows


def thresholds(cfg) -> Thresholds:
    return Thresholds(cfg.self_purchase_bp, cfg.shared_payer_accounts, cfg.refund_rate_bp, cfg.refund_min_orders)


def _pay(session: Session, prize: ContestPrize) -> None:
    key = f"contest:{prize.contest_id}:prize:{prize.id}"
    post_entry(session, key, [(member_account(session, prize.member_id, "available"), prize.amount_fen),
                              (platform_account(session, "prize_expense"), -prize.amount_fen)],
               "contest_prize", "contest_prize", prize.id, memo=f"contest {prize.contest_id} {prize.role}")
    prize.journal_key = key
    prize.status = "granted"
    record_event(session, "prize.granted", prize_id=prize.id, member_id=prize.member_id,
                 contest_id=prize.contest_id, amount_fen=prize.amount_fen)


def check_and_grant(session: Session, prize_id: int, order_ids: list[int], t: Thresholds) -> str:
    """Pay one pending prize if its receiver passes the fraud checks, else hold it for an operator (with a risk
    flag). Locks the prize row: two runs at once decide once. Returns the prize's status."""
    prize = session.scalar(select(ContestPrize).where(ContestPrize.id == prize_id).with_for_update())
    if prize is None or prize.status != "pending":
        return prize.status if prize else "missing"
    findings = order_signals(session, prize.member_id, order_ids, t)
    if has_open_flags(session, prize.member_id):
        findings.append({"kind": "open_flag"})
    if findings:
        prize.status, prize.findings = "held", findings
        raise_flag(session, prize.member_id, "contest_prize_review", contest_id=prize.contest_id, prize_id=prize.id,
                   amount_fen=prize.amount_fen, findings=findings)
    else:
        _pay(session, prize)
    session.flush()
    return prize.status


def decide(session: Session, prize_id: int, *, grant: bool, operator_id: int | None) -> ContestPrize:
    """An operator grants (pays) or rejects a held prize. Deciding a decided prize is 409."""
    prize = session.scalar(select(ContestPrize).where(ContestPrize.id == prize_id).with_for_update())
    if prize is None:
        raise NotFound("No such prize.", code="prize_not_found")
    if prize.status != "held":
        raise Conflict("Only a held prize can be decided.", code="prize_not_held", details={"status": prize.status})
    if grant:
        _pay(session, prize)
    else:
        prize.status = "rejected"
    prize.decided_by, prize.decided_at = operator_id, utcnow()
    session.flush()
    return prize


def prizes_of(session: Session, *, contest_id: int | None = None, member_id: int | None = None,
              status: str | None = None, limit: int = 200) -> list[ContestPrize]:
    q = select(ContestPrize).order_by(ContestPrize.id.desc()).limit(limit)
    if contest_id is not None:
        q = q.where(ContestPrize.contest_id == contest_id)
    if member_id is not None:
        q = q.where(ContestPrize.member_id == member_id)
    if status is not None:
        q = q.where(ContestPrize.status == status)
    return list(session.scalars(q))


def prize_out(p: ContestPrize) -> dict:
    return {"id": p.id, "contest_id": p.contest_id, "member_id": p.member_id, "role": p.role, "team_id": p.team_id,
            "rank": p.rank, "amount_fen": p.amount_fen, "status": p.status, "findings": p.findings or [],
            "decided_by": p.decided_by, "decided_at": p.decided_at.isoformat() if p.decided_at else None}


def pending_ids(session: Session, contest_id: int) -> list[int]:
    return list(session.scalars(select(ContestPrize.id).where(ContestPrize.contest_id == contest_id,
                                                              ContestPrize.status == "pending")
                                .order_by(ContestPrize.id)))

