"""The primitives every withdrawal path shares: lock a withdrawal, log its transitions, book its money, queue
its payout, and record the domain events of its end. Below `service` (requests and review), `breaker` and
`payouts` (WeChat Pay), which all use them."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.events import record as record_event
from app.ledger.service import member_accounts, platform_account, post_entry
from app.outbox import emit
from app.withdrawals import states as S
from app.withdrawals.models import Withdrawal, WithdrawalEvent

PAYOUT_JOB = "withdrawals.drive_payout"


MEMBER_CANCELLED_REASON = "cancelled by the member"


def log_transition(session: Session, w: Withdrawal, before: str | None, after: str, source: str,
                   note: str = "") -> None:
    session.add(WithdrawalEvent(withdrawal_id=w.id, from_state=before, to_state=after, source=source[:64],
                                note=note[:255]))


def lock_withdrawal(session: Session, withdrawal_id: int) -> Withdrawal:
    w = session.scalar(select(Withdrawal).where(Withdrawal.id == withdrawal_id).with_for_update()
                       .execution_options(populate_existing=True))
    if w is None:
        raise NotFound("No such withdrawal.", code="withdrawal_not_found")
    return w


def emit_payout(session: Session, w: Withdrawal, delay: float = 0.0) -> None:
    """Queue the payout job in this transaction: it exists iff the state change that needs it committed."""
    emit(session, PAYOUT_JOB, w.id, key=f"payout:{w.id}", delay=delay)


def return_money(session: Session, w: Withdrawal) -> None:
    """The whole amount back `withdrawing -> available` (rejected, FAIL, CANCELLED); set state and reason first."""
    ids = member_accounts(session, [(w.member_id, "available"), (w.member_id, "withdrawing")])
    post_entry(session, f"withdrawal:{w.id}:returned",
               [(ids[(w.member_id, "withdrawing")], -w.amount_fen), (ids[(w.member_id, "available")], w.amount_fen)],
               "withdrawal_returned", "withdrawal", w.id, memo=w.state)
    if w.state != S.CANCELLED or w.reason != MEMBER_CANCELLED_REASON:  # the member's own cancel is no news
        record_event(session, "withdrawal.failed", withdrawal_id=w.id, member_id=w.member_id, state=w.state,
                     reason=w.reason or "", amount_fen=w.amount_fen)


def book_paid(session: Session, w: Withdrawal) -> None:
    withdrawing = member_accounts(session, [(w.member_id, "withdrawing")])[(w.member_id, "withdrawing")]
    lines = [(withdrawing, -w.amount_fen), (platform_account(session, "payout_clearing"), w.net_fen)]
    if w.fee_fen:
        lines.append((platform_account(session, "fees"), w.fee_fen))
    if w.tax_fen:
        lines.append((platform_account(session, "tax_withheld"), w.tax_fen))
    post_entry(session, f"withdrawal:{w.id}:paid", lines, "withdrawal_paid", "withdrawal", w.id)
    record_event(session, "withdrawal.paid", withdrawal_id=w.id, member_id=w.member_id, net_fen=w.net_fen)
