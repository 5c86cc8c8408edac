"""When two members turn out to be one person, the merged one's orders become the survivor's."""
from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.members.merge import register_merge_hook
from app.orders.models import Order


@register_merge_hook
def move_orders(session: Session, kept_id: int, merged_id: int) -> None:
    session.execute(update(Order).where(Order.buyer_id == merged_id).values(buyer_id=kept_id))
