"""From domain events to board credits (rows in board_credits), in the subscriber's transaction.

Who an event counts for: the member (in the league of their grade at that moment), the team they are a member
of (if they had joined it by then: team figures count from joining) and the store they work at."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.boards.models import BoardCredit, BoardSource
from app.grades.service import grade_of
from app.members.service import get_member
from app.orders.models import Order
from app.referrals.stores import current_assignment
from app.teams.models import Team, TeamMember

METRICS = ("sales_fen", "new_members", "commission_fen")
KINDS = ("member", "team", "store")


def subjects_of(session: Session, member_id: int, at: datetime, store_id: int | None = None) -> list[tuple]:
    """[(kind, id, league)] an event of `member_id` at `at` counts for. An event about a member merged away
    since it was recorded counts for the member it lives on as; the member's row stays share-locked, so a merge
    running now and these credits take turns (without it a credit could land on the merged id after the merge's
    subscriber moved its credits, and stay there)."""
    member_id = get_member(session, member_id, share_lock=True).id
    out = [("member", member_id, grade_of(session, member_id))]
    seat = session.scalar(select(TeamMember).join(Team, Team.id == TeamMember.team_id)
                          .where(TeamMember.member_id == member_id, Team.status == "active"))
    if seat is not None and seat.joined_at <= at:
        out.append(("team", seat.team_id, ""))
    if store_id is None:
        assignment = current_assignment(session, member_id)
        store_id = assignment.store_id if assignment is not None else None
    if store_id is not None:
        out.append(("store", store_id, ""))
    return out


def _insert(session: Session, rows: list[dict]) -> None:
    if not rows:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(BoardCredit.__table__).values(rows).on_conflict_do_nothing())


def _source(session: Session, ref: str, at: datetime) -> None:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(BoardSource.__table__).values(ref=ref, at=at).on_conflict_do_nothing())


def _rows(event_id: int, ref: str, subjects: list[tuple], metric: str, amount: int, at: datetime) -> list[dict]:
    return [{"event_id": event_id, "ref": ref, "subject_kind": k, "subject_id": i, "metric": metric,
             "amount": amount, "league": league, "at": at} for k, i, league in subjects]


def order_paid(session: Session, event_id: int, data: dict) -> None:
    """The sale counts for the level-1 referrer, their team and store, at the order's paid time."""
    order = session.get(Order, data["order_id"])
    ref = f"order:{data['order_id']}"
    at = order.paid_at
    _source(session, ref, at)
    referrers = data.get("referrer_ids") or []
    if referrers and data["paid_fen"] > 0:
        _insert(session, _rows(event_id, ref, subjects_of(session, referrers[0], at), "sales_fen",
                               data["paid_fen"], at))


def _net_by_subject(session: Session, ref: str, metric: str) -> list[tuple]:
    return session.execute(
        select(BoardCredit.subject_kind, BoardCredit.subject_id, BoardCredit.league, func.sum(BoardCredit.amount))
        .where(BoardCredit.ref == ref, BoardCredit.metric == metric)
        .group_by(BoardCredit.subject_kind, BoardCredit.subject_id, BoardCredit.league)).all()


def _take_off(session: Session, event_id: int, ref: str, metric: str, amount: int, at: datetime) -> None:
    rows = []
    for kind, subject, league, net in _net_by_subject(session, ref, metric):
        off = min(amount, int(net))
        if off > 0:
            rows += _rows(event_id, ref, [(kind, subject, league)], metric, -off, at)
    _insert(session, rows)


def source_time(session: Session, ref: str) -> datetime | None:
    return session.scalar(select(BoardSource.at).where(BoardSource.ref == ref))


def order_refunded(session: Session, event_id: int, data: dict, at: datetime) -> None:
    """The refund comes off every board the sale counted on, in the periods it counted in."""
    _take_off(session, event_id, f"order:{data['order_id']}", "sales_fen", data["amount_fen"], at)


def commission_accrued(session: Session, event_id: int, data: dict) -> None:
    order = session.get(Order, data["order_id"])
    ref = f"commission:{data['commission_id']}"
    _source(session, ref, order.paid_at)
    if data["amount_fen"] > 0:
        _insert(session, _rows(event_id, ref, subjects_of(session, data["earner_id"], order.paid_at),
                               "commission_fen", data["amount_fen"], order.paid_at))


def commission_reversed(session: Session, event_id: int, reversal: dict, at: datetime) -> None:
    _take_off(session, event_id, f"commission:{reversal['commission_id']}", "commission_fen",
              reversal["amount_fen"], at)


def member_bound(session: Session, event_id: int, data: dict, at: datetime) -> None:
    referrer = data.get("referrer_id")
    if referrer is None:
        return
    _insert(session, _rows(event_id, f"bind:{data['member_id']}", subjects_of(session, referrer, at,
                                                                              data.get("store_id")),
                           "new_members", 1, at))


def member_merged(session: Session, event_id: int, data: dict) -> None:
    """What the merged-away member counted moves to the survivor, ref by ref, in the periods and league it
    counted in: a credit off the one and the same onto the other. The merged member's scores fall to 0 (it leaves
    the boards), a later refund of its sales comes off the survivor (`_net_by_subject` by ref), and a rebuild,
    which sums the credits, agrees. Team and store boards do not change: the same person sold for them."""
    t = BoardCredit
    groups = session.execute(
        select(t.ref, t.metric, t.league, t.at, func.sum(t.amount))
        .where(t.subject_kind == "member", t.subject_id == data["merged_id"])
        .group_by(t.ref, t.metric, t.league, t.at)).all()
    rows = []
    for ref, metric, league, at, net in groups:
        if net:
            rows += _rows(event_id, ref, [("member", data["merged_id"], league)], metric, -int(net), at)
            rows += _rows(event_id, ref, [("member", data["kept_id"], league)], metric, int(net), at)
    _insert(session, rows)


def credits_of(session: Session, event_id: int) -> list[BoardCredit]:
    return list(session.scalars(select(BoardCredit).where(BoardCredit.event_id == event_id)
                                .order_by(BoardCredit.id)))
