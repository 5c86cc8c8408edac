"""When two members turn out to be one person, the merged one's withdrawals become the survivor's."""
from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.members.merge import register_merge_hook
from app.withdrawals.models import Withdrawal


@register_merge_hook
def move_withdrawals(session: Session, kept_id: int, merged_id: int) -> None:
    # Both apps may have used the same client idempotency key: keep the merged one's distinct.
    kept_keys = select(Withdrawal.idempotency_key).where(Withdrawal.member_id == kept_id).scalar_subquery()
    session.execute(update(Withdrawal).where(Withdrawal.member_id == merged_id,
                                             Withdrawal.idempotency_key.in_(kept_keys))
                    .values(idempotency_key=func.substr(Withdrawal.idempotency_key, 1, 40) + f":m{merged_id}"))
    session.execute(update(Withdrawal).where(Withdrawal.member_id == merged_id).values(member_id=kept_id))
