"""When two members turn out to be one person, their money becomes one: each non-zero balance moves by a
balanced, idempotent journal entry (the books show the move; nothing is rewritten)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.ledger.models import LedgerAccount
from app.ledger.service import member_account, post_entry
from app.members.merge import register_merge_hook


@register_merge_hook
def move_balances(session: Session, kept_id: int, merged_id: int) -> None:
    accounts = session.execute(select(LedgerAccount.id, LedgerAccount.kind, LedgerAccount.balance_fen)
                               .where(LedgerAccount.member_id == merged_id).order_by(LedgerAccount.id)).all()
    for account_id, kind, balance in accounts:
        if balance:
            target = member_account(session, kept_id, kind)
            post_entry(session, f"merge:{merged_id}:{kind}", [(account_id, -balance), (target, balance)],
                       kind="member_merge", ref_type="member", ref_id=kept_id,
                       memo=f"member {merged_id} merged into {kept_id}")
    session.flush()
