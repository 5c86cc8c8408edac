"""Contests (PK): members or teams over a fixed window [starts_at, ends_at), by a metric, from the same credits
as the boards (a sale counts at its paid time; a refund of it, whenever it comes, counts against it until the
contest is frozen).

Tie rules, published with the contest: `shared` (equal scores share a rank) or `earlier` (of equal scores, the
one whose last counting sale (or binding) happened first ranks higher: they got there first).

A team's score counts its members' figures from joining, except what lies more than two levels below the team's
captain in the referral tree (a sale referred by the captain's grand-downline): team prizes and captain rewards
must never become a third commission level.

At the deadline the periodic job `boards.freeze_contests` freezes each due contest: one conditional UPDATE
claims it (status open → frozen), and the results, the prizes they pay and the `contest.frozen` event are
written in the same transaction, so two schedulers freeze it exactly once."""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session, aliased

from app.boards import prizes as contest_prizes
from app.boards.credits import METRICS
from app.boards.models import BoardCredit, Contest, ContestPrize, ContestResult
from app.commissions.models import Commission
from app.db import utcnow
from app.errors import NotFound, ValidationFailed
from app.events import record as record_event
from app.members.models import Member
from app.teams.models import Team, TeamMember

TIE_RULES = ("shared", "earlier")
MAX_LEVELS = 2  # how far below a prize's receiver a counted sale may lie


def create_contest(session: Session, *, name: str, kind: str, metric: str, starts_at: datetime, ends_at: datetime,
                   tie_rule: str = "shared", prizes: list | None = None, created_by: int | None = None) -> Contest:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationFailed("Give the contest a name.", code="contest_invalid")
    if kind not in ("member", "team") or metric not in METRICS or tie_rule not in TIE_RULES:
        raise ValidationFailed("Unknown contest kind, metric or tie rule.", code="contest_invalid",
                               details={"kinds": ["member", "team"], "metrics": list(METRICS),
                                        "tie_rules": list(TIE_RULES)})
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValidationFailed("Give the window's times with their offset (e.g. +08:00).", code="contest_invalid")
    if ends_at <= starts_at:
        raise ValidationFailed("A contest ends after it starts.", code="contest_invalid")
    contest = Contest(name=name, kind=kind, metric=metric, starts_at=starts_at, ends_at=ends_at, tie_rule=tie_rule,
                      status="open", prizes=contest_prizes.parse_rules(kind, prizes), created_by=created_by)
    session.add(contest)
    session.flush()
    return contest


def get_contest(session: Session, contest_id: int) -> Contest:
    contest = session.get(Contest, contest_id)
    if contest is None:
        raise NotFound("No such contest.", code="contest_not_found")
    return contest


def list_contests(session: Session, *, status: str | None = None, limit: int = 50) -> list[Contest]:
    q = select(Contest).order_by(Contest.ends_at.desc(), Contest.id.desc()).limit(limit)
    if status is not None:
        q = q.where(Contest.status == status)
    return list(session.scalars(q))


# -- what counts ---------------------------------------------------------------------------------------------

def _member_rows(session: Session, contest: Contest) -> list[tuple[int, int, datetime, str]]:
    return [tuple(r) for r in session.execute(
        select(BoardCredit.subject_id, BoardCredit.amount, BoardCredit.at, BoardCredit.ref)
        .where(BoardCredit.subject_kind == "member", BoardCredit.metric == contest.metric,
               BoardCredit.at >= contest.starts_at, BoardCredit.at < contest.ends_at))]


def _depth_below(parent: dict[int, int | None], member: int, ancestor: int) -> int | None:
    """How many levels `member` lies below `ancestor` in the referral tree (0: the same), None: not below."""
    depth, at, seen = 0, member, set()
    while at is not None and at not in seen:
        if at == ancestor:
            return depth
        seen.add(at)
        at, depth = parent.get(at), depth + 1
    return None


def _uplines(session: Session, members: set[int]) -> dict[int, int | None]:
    """referrer_id of the members and of every ancestor above them, one query per level."""
    parent: dict[int, int | None] = {}
    todo = set(members)
    while todo:
        rows = session.execute(select(Member.id, Member.referrer_id).where(Member.id.in_(sorted(todo)))).all()
        parent.update(dict(rows))
        todo = {r for _, r in rows if r is not None and r not in parent}
    return parent


def _team_rows(session: Session, contest: Contest, team_id: int | None = None) -> list[tuple]:
    """[(team_id, via member_id, amount, at, ref)] of the window that count for team contests: each team credit
    with the member it came through, minus what lies more than two levels below the team's captain."""
    t, m = aliased(BoardCredit), aliased(BoardCredit)
    q = (select(t.subject_id, m.subject_id, t.amount, t.at, t.ref)
         .join(m, and_(m.event_id == t.event_id, m.ref == t.ref, m.metric == t.metric, m.subject_kind == "member"))
         .where(t.subject_kind == "team", t.metric == contest.metric, t.at >= contest.starts_at,
                t.at < contest.ends_at))
    if team_id is not None:
        q = q.where(t.subject_id == team_id)
    rows = session.execute(q).all()
    if not rows:
        return []
    captains = dict(session.execute(select(Team.id, Team.captain_id)
                                    .where(Team.id.in_(sorted({r[0] for r in rows})))).all())
    parent = _uplines(session, {r[1] for r in rows})
    # How far below the earner the source of a credit lies: a sale or a binding 1, a commission its level.
    commission_ids = sorted({int(r[4].split(":", 1)[1]) for r in rows if r[4].startswith("commission:")})
    levels = dict(session.execute(select(Commission.id, Commission.level)
                                  .where(Commission.id.in_(commission_ids))).all()) if commission_ids else {}
    out = []
    for team, via, amount, at, ref in rows:
        below_via = levels.get(int(ref.split(":", 1)[1]), 1) if ref.startswith("commission:") else 1
        depth = _depth_below(parent, via, captains.get(team)) if captains.get(team) is not None else None
        if depth is not None and depth + below_via > MAX_LEVELS:
            continue
        out.append((team, via, amount, at, ref))
    return out


def _ranked(contest: Contest, totals: dict[int, list]) -> list[dict]:
    rows = [(subject, score, last) for subject, (score, last) in totals.items() if score > 0]
    if contest.tie_rule == "earlier":
        rows.sort(key=lambda r: (-r[1], r[2], r[0]))
    else:
        rows.sort(key=lambda r: (-r[1], r[0]))
    out, rank = [], 0
    for i, (subject, score, _) in enumerate(rows):
        if contest.tie_rule == "earlier" or i == 0 or score != rows[i - 1][1]:
            rank = i + 1
        out.append({"rank": rank, "subject_id": subject, "score": score})
    return out


def live_standings(session: Session, contest: Contest) -> list[dict]:
    """[{rank, subject_id, score}] best first, by the contest's tie rule."""
    totals: dict[int, list] = {}
    if contest.kind == "team":
        source = [(team, amount, at) for team, _via, amount, at, _ref in _team_rows(session, contest)]
    else:
        source = [(subject, amount, at) for subject, amount, at, _ref in _member_rows(session, contest)]
    for subject, amount, at in source:
        entry = totals.setdefault(subject, [0, at])
        entry[0] += int(amount)
        entry[1] = max(entry[1], at)
    return _ranked(contest, totals)


_shared: dict[int, tuple[float, list[dict]]] = {}
_shared_locks: dict[int, threading.Lock] = defaultdict(threading.Lock)


def shared_live_standings(session: Session, contest: Contest, seconds: float) -> list[dict]:
    """live_standings, computed at most once per `seconds` per process and contest: they scan the window's
    credits, which a crowd on a contest's page must not repeat per request. One thread computes while the others
    of the process wait for its answer. Callers read the rows, never change them."""
    if seconds <= 0:
        return live_standings(session, contest)
    hit = _shared.get(contest.id)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    with _shared_locks[contest.id]:
        hit = _shared.get(contest.id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        rows = live_standings(session, contest)
        _shared[contest.id] = (time.monotonic() + seconds, rows)
        return rows


def clear_shared() -> None:
    _shared.clear()


def standings(session: Session, contest: Contest, live_seconds: float = 0.0) -> list[dict]:
    """Frozen results once frozen, live standings before (shared for `live_seconds`, see
    shared_live_standings)."""
    if contest.status == "frozen":
        return [{"rank": r.rank, "subject_id": r.subject_id, "score": r.score}
                for r in session.scalars(select(ContestResult).where(ContestResult.contest_id == contest.id)
                                         .order_by(ContestResult.rank, ContestResult.subject_id))]
    return shared_live_standings(session, contest, live_seconds)


def page(rows: list[dict], limit: int, subject_id: int | None) -> tuple[list[dict], dict | None]:
    """The first `limit` rows, and `subject_id`'s own row wherever it is (None: not placed)."""
    mine = next((r for r in rows if r["subject_id"] == subject_id), None) if subject_id is not None else None
    return rows[:limit], mine


def _team_info(session: Session, contest: Contest, team_ids: list[int]) -> dict[int, tuple[int, dict[int, int]]]:
    """{team: (captain, {member: contribution})}: members still in the team at the deadline share its pool."""
    info = {}
    for team_id in team_ids:
        captain = session.scalar(select(Team.captain_id).where(Team.id == team_id))
        seated = set(session.scalars(select(TeamMember.member_id).where(TeamMember.team_id == team_id)))
        contributions: dict[int, int] = defaultdict(int)
        for _team, via, amount, _at, _ref in _team_rows(session, contest, team_id):
            if via in seated:
                contributions[via] += int(amount)
        info[team_id] = (captain, dict(contributions))
    return info


def freeze(session: Session, contest_id: int, now: datetime | None = None) -> bool:
    """Freeze one contest if it is due and still open; False when another run froze it (or it is not due)."""
    now = now or utcnow()
    claimed = session.execute(update(Contest).where(Contest.id == contest_id, Contest.status == "open",
                                                    Contest.ends_at <= now)
                              .values(status="frozen", frozen_at=now).returning(Contest.id)).first()
    if claimed is None:
        return False
    contest = session.get(Contest, contest_id)
    session.refresh(contest)
    results = live_standings(session, contest)
    session.add_all([ContestResult(contest_id=contest_id, **row) for row in results])
    if contest.prizes:
        winners = [r["subject_id"] for r in results]
        team_info = _team_info(session, contest, winners) if contest.kind == "team" else {}
        session.add_all([ContestPrize(status="pending", **row)
                         for row in contest_prizes.plan_prizes(contest, results, team_info)])
    session.flush()
    record_event(session, "contest.frozen", contest_id=contest.id, kind=contest.kind, metric=contest.metric)
    return True


def due_contests(session: Session, now: datetime | None = None) -> list[int]:
    return list(session.scalars(select(Contest.id).where(Contest.status == "open", Contest.ends_at <= (now or utcnow()))
                                .order_by(Contest.ends_at)))


def orders_behind(session: Session, contest: Contest, prize: ContestPrize) -> list[int]:
    """The orders whose sales (or commissions) made the score that pays this prize: the receiver's own for a
    member contest, the team's for a team contest."""
    if contest.kind == "team":
        refs = [ref for *_rest, ref in _team_rows(session, contest, prize.team_id)]
    else:
        refs = [ref for subject, _a, _at, ref in _member_rows(session, contest) if subject == prize.member_id]
    order_ids = {int(r.split(":", 1)[1]) for r in refs if r.startswith("order:")}
    commission_ids = sorted({int(r.split(":", 1)[1]) for r in refs if r.startswith("commission:")})
    if commission_ids:
        order_ids |= set(session.scalars(select(Commission.order_id).where(Commission.id.in_(commission_ids))))
    return sorted(order_ids)


def winners_of(session: Session, contest: Contest) -> list[int]:
    """Members who won a frozen contest: rank 1, or every member of a rank-1 team at the deadline."""
    firsts = list(session.scalars(select(ContestResult.subject_id).where(ContestResult.contest_id == contest.id,
                                                                          ContestResult.rank == 1)))
    if contest.kind == "member" or not firsts:
        return firsts
    return sorted(set(session.scalars(select(TeamMember.member_id).where(TeamMember.team_id.in_(firsts)))))


def placed_members(session: Session, contest: Contest) -> list[tuple[int, int, int, int | None]]:
    """[(member, rank, score, team)] of a frozen contest: each ranked member, or each member of a ranked team."""
    results = session.execute(select(ContestResult.subject_id, ContestResult.rank, ContestResult.score)
                              .where(ContestResult.contest_id == contest.id)).all()
    if contest.kind == "member":
        return [(s, r, sc, None) for s, r, sc in results]
    by_team = {s: (r, sc) for s, r, sc in results}
    seats = session.execute(select(TeamMember.member_id, TeamMember.team_id)
                            .where(TeamMember.team_id.in_(sorted(by_team)))).all() if by_team else []
    return [(m, *by_team[t], t) for m, t in seats]
