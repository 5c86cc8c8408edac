"""Grades: definitions, measured figures, automatic upgrades, operator grants. Every change is recorded.

Automatic rules only ever raise a grade (a partner is never demoted by a quiet month); an operator grant sets
any grade and marks it permanent, so automatic rules never lower it either (they may still raise it)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, NotFound, ValidationFailed
from app.events import record as record_event
from app.grades.models import Grade, GradeChange, MemberGrade
from app.members.models import Member

def create_grade(session: Session, *, code: str, rank: int, name: str = "", auto_upgrade: bool = True,
                 min_personal_sales_fen: int | None = None, min_direct_referrals: int | None = None,
                 min_downline_size: int | None = None, min_downline_sales_fen: int | None = None,
                 period_days: int | None = None) -> Grade:
    if not isinstance(code, str) or not code or len(code) > 32 or code == "*":
        raise ValidationFailed("A grade code is 1 to 32 characters.", code="grade_invalid")
    for name_, v in (("rank", rank), ("min_personal_sales_fen", min_personal_sales_fen),
                     ("min_direct_referrals", min_direct_referrals), ("min_downline_size", min_downline_size),
                     ("min_downline_sales_fen", min_downline_sales_fen), ("period_days", period_days)):
        if v is not None and (type(v) is not int or v < 0):
            raise ValidationFailed(f"{name_} must be a non-negative integer.", code="grade_invalid",
                                   details={"field": name_})
    if session.scalar(select(Grade.id).where((Grade.code == code) | (Grade.rank == rank))):
        raise Conflict("A grade with this code or rank exists.", code="grade_exists")
    grade = Grade(code=code, rank=rank, name=name[:64], auto_upgrade=auto_upgrade,
                  min_personal_sales_fen=min_personal_sales_fen, min_direct_referrals=min_direct_referrals,
                  min_downline_size=min_downline_size, min_downline_sales_fen=min_downline_sales_fen,
                  period_days=period_days)
    session.add(grade)
    session.flush()
    return grade


def list_grades(session: Session) -> list[dict]:
    return [{"code": g.code, "name": g.name, "rank": g.rank, "auto_upgrade": g.auto_upgrade,
             "min_personal_sales_fen": g.min_personal_sales_fen, "min_direct_referrals": g.min_direct_referrals,
             "min_downline_size": g.min_downline_size, "min_downline_sales_fen": g.min_downline_sales_fen,
             "period_days": g.period_days}
            for g in session.scalars(select(Grade).order_by(Grade.rank))]


@dataclass(frozen=True)
class Figures:
    personal_sales_fen: int
    direct_referrals: int
    downline_size: int
    downline_sales_fen: int


# The member's whole downline: every depth (statistics are unbounded, only commissions stop at level 2).
_DOWNLINE = """
    WITH RECURSIVE downline(id, depth) AS (
        SELECT m.id, 1 FROM members m WHERE m.referrer_id = :m
        UNION
        SELECT m.id, d.depth + 1 FROM members m JOIN downline d ON m.referrer_id = d.id WHERE d.depth < 1000)
"""


def figures(session: Session, member_id: int, period_days: int | None = None) -> Figures:
    """Measured figures. Sales are net of refunds, in fen, for orders paid in the last period_days (None: ever)."""
    since = utcnow() - timedelta(days=period_days) if period_days else None
    period = "AND o.paid_at >= :since" if since else ""
    params = {"m": member_id, "since": since}
    personal = session.scalar(text(f"SELECT COALESCE(SUM(o.paid_fen - o.refunded_fen), 0) FROM orders o "
                                   f"WHERE o.buyer_id = :m {period}"), params)
    direct = session.scalar(select(func.count()).select_from(Member).where(Member.referrer_id == member_id))
    downline_size, downline_sales = session.execute(text(
        _DOWNLINE + f"""SELECT (SELECT COUNT(DISTINCT id) FROM downline),
                              (SELECT COALESCE(SUM(o.paid_fen - o.refunded_fen), 0) FROM orders o
                               WHERE o.buyer_id IN (SELECT id FROM downline) {period})"""), params).one()
    return Figures(int(personal), int(direct), int(downline_size), int(downline_sales))


def _qualifies(g: Grade, f: Figures) -> bool:
    checks = ((g.min_personal_sales_fen, f.personal_sales_fen), (g.min_direct_referrals, f.direct_referrals),
              (g.min_downline_size, f.downline_size), (g.min_downline_sales_fen, f.downline_sales_fen))
    return all(need is None or have >= need for need, have in checks)


def grade_of(session: Session, member_id: int) -> str:
    """The member's grade code; without a row, the lowest grade ('' when no grades exist)."""
    code = session.scalar(select(MemberGrade.grade_code).where(MemberGrade.member_id == member_id))
    if code is None:
        code = session.scalar(select(Grade.code).order_by(Grade.rank).limit(1)) or ""
    return code


def _set_grade(session: Session, member_id: int, code: str, *, permanent: bool, reason: str, actor: str) -> dict:
    row = session.get(MemberGrade, member_id, with_for_update=True)
    before = row.grade_code if row else None
    if row is None:
        row = MemberGrade(member_id=member_id, grade_code=code, permanent=permanent, updated_at=utcnow())
        session.add(row)
    else:
        row.grade_code, row.permanent, row.updated_at = code, permanent or row.permanent, utcnow()
    session.add(GradeChange(member_id=member_id, from_grade=before, to_grade=code, reason=reason[:255], actor=actor))
    record_event(session, "grade.changed", member_id=member_id, **{"from": before, "to": code}, actor=actor)
    session.flush()
    return {"member_id": member_id, "from": before, "to": code, "reason": reason}


def evaluate_member_grade(session: Session, member_id: int) -> dict | None:
    """Raise the member to the highest auto-upgrade grade whose rule they now meet. Returns the change or None."""
    grades = session.scalars(select(Grade).order_by(Grade.rank)).all()
    if not grades or session.get(Member, member_id) is None:
        return None
    current = grade_of(session, member_id)
    ranks = {g.code: g.rank for g in grades}
    current_rank = ranks.get(current, -1)
    cache: dict[int | None, Figures] = {}
    best = None
    for g in grades:
        if g.rank <= current_rank or not g.auto_upgrade:
            continue
        f = cache.get(g.period_days) or cache.setdefault(g.period_days, figures(session, member_id, g.period_days))
        if _qualifies(g, f):
            best = (g, f)
    if best is None:
        return None
    g, f = best
    reason = "auto: " + ", ".join(f"{k}={v}" for k, v in asdict(f).items())
    return _set_grade(session, member_id, g.code, permanent=False, reason=reason, actor="system")


def grant_grade(session: Session, member_id: int, code: str, *, reason: str, actor: str) -> dict:
    """An operator sets a permanent grade (up or down). Automatic rules never lower it."""
    if session.get(Member, member_id) is None:
        raise NotFound("No such member.", code="member_not_found")
    if not session.scalar(select(Grade.id).where(Grade.code == code)):
        raise NotFound("No such grade.", code="grade_not_found")
    if not reason or not reason.strip():
        raise ValidationFailed("Say why this grade is granted.", code="reason_required")
    return _set_grade(session, member_id, code, permanent=True, reason=f"granted: {reason.strip()}", actor=actor)


def grade_history(session: Session, member_id: int) -> list[dict]:
    rows = session.scalars(select(GradeChange).where(GradeChange.member_id == member_id).order_by(GradeChange.id))
    return [{"from": r.from_grade, "to": r.to_grade, "reason": r.reason, "actor": r.actor,
             "at": r.created_at.isoformat()} for r in rows]
