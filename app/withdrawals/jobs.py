"""Payout jobs: ids in, idempotent, safe to run twice at once (see payouts.py for why)."""
from __future__ import annotations

import logging

from app.outbox import RetryLater, job
from app.runtime import Runtime
from app.withdrawals.booking import PAYOUT_JOB
from app.withdrawals.payouts import Later, drive, reconcile

log = logging.getLogger(__name__)


@job(PAYOUT_JOB, queue="payouts")
def drive_payout(rt: Runtime, withdrawal_id: int) -> str:
    """Drive one withdrawal towards a final state: submit its bill, or resolve an unknown outcome by query."""
    try:
        return drive(rt, int(withdrawal_id))
    except Later as later:
        log.info("withdrawal %s: %s; again in %.1fs", withdrawal_id, later, later.delay)
        raise RetryLater(later.delay, str(later)) from None


@job("withdrawals.reconcile", queue="payouts")
def reconcile_payouts(rt: Runtime) -> int:
    """Periodic: queue a payout job for every non-final bill (query) and every approved withdrawal (submit)."""
    with rt.session() as s:
        n = reconcile(s, rt.settings.payout)
    log.info("reconciliation queued %d withdrawals", n)
    return n
