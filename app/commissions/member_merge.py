"""When two members turn out to be one person, the merged one's commissions become the survivor's (their
money moves with the ledger's own merge hook)."""
from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.commissions.models import Commission
from app.members.merge import register_merge_hook


@register_merge_hook
def move_commissions(session: Session, kept_id: int, merged_id: int) -> None:
    session.execute(update(Commission).where(Commission.earner_id == merged_id).values(earner_id=kept_id))
