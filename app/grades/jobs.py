"""Grade jobs: each member is evaluated in its own commit; evaluating twice changes nothing more."""
from __future__ import annotations

from sqlalchemy import select

from app.grades.service import evaluate_member_grade
from app.members.models import MemberRole
from app.outbox import job
from app.runtime import Runtime


def evaluate_grades(rt: Runtime, member_ids) -> list[dict]:
    """Raise the grades whose rules these members now meet. Returns the changes."""
    changes = []
    for member_id in member_ids:
        with rt.session() as s:
            change = evaluate_member_grade(s, int(member_id))
        if change:
            changes.append(change)
    return changes


@job("grades.evaluate_all")
def evaluate_all_grades(rt: Runtime, chunk: int = 500) -> int:
    """Periodic (nightly): downline figures of deep ancestors change without an event of their own."""
    with rt.session() as s:
        ids = s.scalars(select(MemberRole.member_id).where(MemberRole.role == "partner")
                        .order_by(MemberRole.member_id)).all()
    return sum(len(evaluate_grades(rt, ids[i:i + chunk])) for i in range(0, len(ids), chunk))
