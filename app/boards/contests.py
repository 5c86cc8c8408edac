"""Contests (PK): members or teams over a fixed window [starts_at, ends_at), by a metric, from the same credits
as the boards (a sale counts at its paid time; a refund of it, whenever it comes, counts against it until the
contest is frozen).

Tie rules, published with the contest: `shared` (equal scores share a rank) or `earlier` (of equal scores, the
one whose last counting sale (or binding) happened first ranks higher: they got there first).

At the deadline the periodic job `boards.freeze_contests` freezes each due contest: one conditional UPDATE
claims it (status open → frozen), and the results are written in the same transaction, so two schedulers
freeze it exactly once."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.boards.credits import METRICS
from app.boards.models import BoardCredit, Contest, ContestResult
from app.db import utcnow
from app.errors import NotFound, ValidationFailed

TIE_RULES = ("shared", "earlier")


def create_contest(session: Session, *, name: str, kind: str, metric: str, starts_at: datetime, ends_at: datetime,
                   tie_rule: str = "shared", created_by: int | None = None) -> Contest:
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
                      status="open", created_by=created_by)
    session.add(contest)
    session.flush()
    return contest


def get_contest(session: Session, contest_id: int) -> Contest:
    contest = session.get(Contest, contest_id)
    if contest is None:
        raise NotFound("No such contest.", code="contest_not_found")
    return contest


def live_standings(session: Session, contest: Contest) -> list[dict]:
    """[{rank, subject_id, score}] best first, by the contest's tie rule."""
    rows = session.execute(
        select(BoardCredit.subject_id, func.sum(BoardCredit.amount), func.max(BoardCredit.at))
        .where(BoardCredit.subject_kind == contest.kind, BoardCredit.metric == contest.metric,
               BoardCredit.at >= contest.starts_at, BoardCredit.at < contest.ends_at)
        .group_by(BoardCredit.subject_id)).all()
    rows = [(subject, int(score), last) for subject, score, last in rows if int(score) > 0]
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


def standings(session: Session, contest: Contest) -> list[dict]:
    """Frozen results once frozen, live standings before."""
    if contest.status == "frozen":
        return [{"rank": r.rank, "subject_id": r.subject_id, "score": r.score}
                for r in session.scalars(select(ContestResult).where(ContestResult.contest_id == contest.id)
                                         .order_by(ContestResult.rank, ContestResult.subject_id))]
    return live_standings(session, contest)


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
    session.add_all([ContestResult(contest_id=contest_id, **row) for row in live_standings(session, contest)])
    session.flush()
    return True


def due_contests(session: Session, now: datetime | None = None) -> list[int]:
    return list(session.scalars(select(Contest.id).where(Contest.status == "open", Contest.ends_at <= (now or utcnow()))
                                .order_by(Contest.ends_at)))
