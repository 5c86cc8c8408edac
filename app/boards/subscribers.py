"""Boards react to sales, refunds, bindings and commissions. Each event's credits are written once (the
receipt) and then applied to Redis, each credit claiming its own dedupe key, so a replay, a retry after a crash
between the two, or two deliveries at once count once. A refund or reversal that overtakes its sale waits."""
from __future__ import annotations

from datetime import timedelta
from typing import Callable

from sqlalchemy.orm import Session

from app.boards import badges, contests, prizes
from app.boards import credits as board_credits
from app.boards.models import Contest, ContestPrize
from app.boards.store import Credit, apply_credits
from app.db import utcnow
from app.events import Event, first_receipt, subscriber
from app.orders.models import Order
from app.outbox import RetryLater
from app.runtime import Runtime
from app.teams.models import Team

WAIT_FOR_SALE = timedelta(days=1)  # a refund whose sale the boards never counted waits this long for it


def _run(rt: Runtime, event: Event, name: str, write: Callable[[Session], None]) -> str:
    cfg = rt.settings.boards
    with rt.session() as s:
        fresh = first_receipt(s, name, event.id)
        if fresh:
            write(s)
            s.flush()
        rows = board_credits.credits_of(s, event.id)
        recent = utcnow() - timedelta(days=cfg.dedupe_days / 2)
        todo = [Credit(c.id, c.subject_kind, c.subject_id, c.metric, c.amount, c.league, c.at)
                for c in rows if fresh or c.created_at >= recent]  # an old replay's dedupe keys may be gone
    results = apply_credits(rt.redis, todo, cfg)  # after the commit: the credits are durable
    if -1 in results:
        raise RetryLater(5.0, "the boards are being rebuilt")
    return f"{results.count(1)} applied"


def _source_or_wait(s: Session, ref: str, order_id: int):
    at = board_credits.source_time(s, ref)
    if at is None:
        order = s.get(Order, order_id)
        if order is not None and order.paid_at > utcnow() - WAIT_FOR_SALE:
            raise RetryLater(5.0, f"{ref} is not counted yet")
    return at


@subscriber("order.paid", name="boards.on_order_paid")
def on_order_paid(rt: Runtime, event: Event) -> str:
    return _run(rt, event, "boards.on_order_paid", lambda s: board_credits.order_paid(s, event.id, event.data))


@subscriber("order.refunded", name="boards.on_order_refunded")
def on_order_refunded(rt: Runtime, event: Event) -> str:
    def write(s: Session) -> None:
        at = _source_or_wait(s, f"order:{event.data['order_id']}", event.data["order_id"])
        if at is not None:
            board_credits.order_refunded(s, event.id, event.data, at)

    return _run(rt, event, "boards.on_order_refunded", write)


@subscriber("member.merged", name="boards.on_member_merged")
def on_member_merged(rt: Runtime, event: Event) -> str:
    return _run(rt, event, "boards.on_member_merged",
                lambda s: board_credits.member_merged(s, event.id, event.data))


@subscriber("commission.accrued", name="boards.on_commission_accrued")
def on_commission_accrued(rt: Runtime, event: Event) -> str:
    return _run(rt, event, "boards.on_commission_accrued",
                lambda s: board_credits.commission_accrued(s, event.id, event.data))


@subscriber("commission.reversed", name="boards.on_commission_reversed")
def on_commission_reversed(rt: Runtime, event: Event) -> str:
    def write(s: Session) -> None:
        for reversal in event.data.get("reversals", []):
            at = _source_or_wait(s, f"commission:{reversal['commission_id']}", event.data["order_id"])
            if at is not None:
                board_credits.commission_reversed(s, event.id, reversal, at)

    return _run(rt, event, "boards.on_commission_reversed", write)


@subscriber("member.bound", name="boards.on_member_bound")
def on_member_bound(rt: Runtime, event: Event) -> str:
    return _run(rt, event, "boards.on_member_bound",
                lambda s: board_credits.member_bound(s, event.id, event.data, event.occurred_at))


# -- contests and badges -------------------------------------------------------------------------------------

@subscriber("contest.frozen", name="boards.grant_prizes")
def grant_prizes(rt: Runtime, event: Event) -> str:
    """Each pending prize of the frozen contest: fraud checks, then paid through the ledger or held for an
    operator. One transaction per prize, each deciding under the prize's row lock, so a rerun decides nothing
    twice."""
    contest_id = event.data["contest_id"]
    with rt.session() as s:
        pending = prizes.pending_ids(s, contest_id)
    decided, behind = [], {}
    for prize_id in pending:
        with rt.session() as s:
            contest, prize = s.get(Contest, contest_id), s.get(ContestPrize, prize_id)
            whose = prize.team_id if contest.kind == "team" else prize.member_id  # a team's shares: one read
            if whose not in behind:
                behind[whose] = contests.orders_behind(s, contest, prize)
            decided.append(prizes.check_and_grant(s, prize_id, behind[whose], prizes.thresholds(rt.settings.fraud)))
    return f"{decided.count('granted')} granted, {decided.count('held')} held"


def _badges(rt: Runtime, event: Event, name: str, count: Callable[[Session], list[str]]) -> str:
    with rt.session() as s:
        earned = count(s) if first_receipt(s, name, event.id) else []
    return f"earned {earned}" if earned else "no new badge"


@subscriber("order.paid", name="badges.on_order_paid")
def badge_referral_orders(rt: Runtime, event: Event) -> str:
    referrers = event.data.get("referrer_ids") or []
    if not referrers or event.data["paid_fen"] <= 0:
        return "no referrer"
    return _badges(rt, event, "badges.on_order_paid", lambda s: badges.count(s, referrers[0], "referral_orders"))


@subscriber("member.bound", name="badges.on_member_bound")
def badge_new_members(rt: Runtime, event: Event) -> str:
    referrer = event.data.get("referrer_id")
    if referrer is None:
        return "no referrer"
    return _badges(rt, event, "badges.on_member_bound", lambda s: badges.count(s, referrer, "new_members"))


@subscriber("team.joined", name="badges.on_team_joined")
def badge_team_members(rt: Runtime, event: Event) -> str:
    def count(s: Session) -> list[str]:
        team = s.get(Team, event.data["team_id"])
        if team is None:
            return []
        size = badges.team_size(s, team.id, team.captain_id)
        return badges.award(s, team.captain_id, "team_members",
                            badges.raise_figure(s, team.captain_id, "team_members", size))

    return _badges(rt, event, "badges.on_team_joined", count)


@subscriber("withdrawal.paid", name="badges.on_withdrawal_paid")
def badge_withdrawals(rt: Runtime, event: Event) -> str:
    return _badges(rt, event, "badges.on_withdrawal_paid",
                   lambda s: badges.count(s, event.data["member_id"], "withdrawals_paid"))


@subscriber("contest.frozen", name="badges.on_contest_frozen")
def badge_contest_wins(rt: Runtime, event: Event) -> str:
    def count(s: Session) -> list[str]:
        contest = s.get(Contest, event.data["contest_id"])
        return [code for member in contests.winners_of(s, contest) for code in badges.count(s, member, "contest_wins")]

    return _badges(rt, event, "badges.on_contest_frozen", count)
