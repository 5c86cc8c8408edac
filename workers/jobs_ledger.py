"""RQ jobs for orders, commissions and grades. Ids in, idempotent, each opens its own unit of work."""
from __future__ import annotations

import logging

from app.runtime import get_runtime

log = logging.getLogger(__name__)


def mature_due_commissions(batch_size: int | None = None) -> int:
    """Scheduled (e.g. every 10 minutes): move every due commission to available, one committed batch at a time.

    Safe to run twice at once: batches lock their rows with SKIP LOCKED, and each commission matures once."""
    from app.commissions.service import mature_all_due

    n = mature_all_due(get_runtime().sessions, **({"batch_size": batch_size} if batch_size else {}))
    log.info("matured %d commissions", n)
    return n


def evaluate_grades(member_ids: list[int]) -> list[dict]:
    """After orders, refunds and bindings: raise grades whose rules are now met (each member in its own commit)."""
    from app.grades.service import evaluate_member_grade

    changes = []
    for member_id in member_ids:
        with get_runtime().session() as s:
            change = evaluate_member_grade(s, int(member_id))
        if change:
            changes.append(change)
    return changes


def evaluate_all_grades(chunk: int = 500) -> int:
    """Periodic sweep (e.g. nightly): team figures of deep ancestors change without an event of their own."""
    from sqlalchemy import select

    from app.members.models import MemberRole

    with get_runtime().session() as s:
        ids = s.scalars(select(MemberRole.member_id).where(MemberRole.role == "partner")
                        .order_by(MemberRole.member_id)).all()
    changed = 0
    for i in range(0, len(ids), chunk):
        changed += len(evaluate_grades(ids[i:i + chunk]))
    return changed
