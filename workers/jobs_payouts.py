"""RQ jobs for payouts. Ids in, idempotent, safe to run twice at once; enqueued through workers.outbox."""
from __future__ import annotations

import logging

from app.runtime import get_runtime
from workers.outbox import RetryLater

log = logging.getLogger(__name__)


def pay_withdrawal(withdrawal_id: int) -> str:
    """Drive one withdrawal towards a final state: submit its bill, or resolve an unknown outcome by query."""
    from app.withdrawals.payouts import Later, drive

    try:
        return drive(int(withdrawal_id))
    except Later as later:
        log.info("withdrawal %s: %s; again in %.1fs", withdrawal_id, later, later.delay)
        raise RetryLater(later.delay, str(later)) from None


def reconcile_payouts() -> int:
    """Scheduled: queue a payout job for every non-final bill (query) and every approved withdrawal (submit)."""
    from app.withdrawals.payouts import reconcile

    with get_runtime().session() as s:
        n = reconcile(s)
    log.info("reconciliation queued %d withdrawals", n)
    return n
