"""When two members turn out to be one person, their money becomes one: orders, commissions, withdrawals and
grade follow the survivor, and each non-zero balance moves by a balanced, idempotent journal entry (the books
show the move; nothing is rewritten)."""
from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.commissions.models import Commission
from app.grades.models import MemberGrade
from app.ledger.models import LedgerAccount
from app.ledger.service import member_account, post_entry
from app.members.merge import register_merge_hook
from app.orders.models import Order


def move_money(session: Session, kept_id: int, merged_id: int) -> None:
    session.execute(update(Order).where(Order.buyer_id == merged_id).values(buyer_id=kept_id))
    session.execute(update(Commission).where(Commission.earner_id == merged_id).values(earner_id=kept_id))
    try:
        from app.withdrawals.models import Withdrawal
    except ImportError:  # withdrawals not installed in this build
        Withdrawal = None
    if Withdrawal is not None:
        # Both apps may have used the same client idempotency key: keep the merged one's distinct.
        kept_keys = select(Withdrawal.idempotency_key).where(Withdrawal.member_id == kept_id).scalar_subquery()
        session.execute(update(Withdrawal).where(Withdrawal.member_id == merged_id,
                                                 Withdrawal.idempotency_key.in_(kept_keys))
                        .values(idempotency_key=func.substr(Withdrawal.idempotency_key, 1, 40) + f":m{merged_id}"))
        session.execute(update(Withdrawal).where(Withdrawal.member_id == merged_id).values(member_id=kept_id))
    if session.get(MemberGrade, kept_id) is None:
        session.execute(update(MemberGrade).where(MemberGrade.member_id == merged_id).values(member_id=kept_id))
    accounts = session.execute(select(LedgerAccount.id, LedgerAccount.kind, LedgerAccount.balance_fen)
                               .where(LedgerAccount.member_id == merged_id).order_by(LedgerAccount.id)).all()
    for account_id, kind, balance in accounts:
        if balance:
            target = member_account(session, kept_id, kind)
            post_entry(session, f"merge:{merged_id}:{kind}", [(account_id, -balance), (target, balance)],
                       kind="member_merge", ref_type="member", ref_id=kept_id,
                       memo=f"member {merged_id} merged into {kept_id}")
    session.flush()


register_merge_hook(move_money)
