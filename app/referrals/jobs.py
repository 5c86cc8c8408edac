"""Referral jobs (ids only, idempotent)."""
from __future__ import annotations

import logging

from app.outbox import job
from app.referrals.codes import renew_expiring_qr_codes
from app.runtime import Runtime
from wechat.clients import official_account

log = logging.getLogger(__name__)


@job("referrals.renew_temporary_qr_codes")
def renew_temporary_qr_codes(rt: Runtime) -> int:
    """Periodic: re-issue 30-day service-account QR tickets before they expire (past the permanent budget)."""
    with rt.session() as s:
        renewed = renew_expiring_qr_codes(s, official_account(rt.settings, rt.redis))
    if renewed:
        log.info("renewed %d temporary QR codes", renewed)
    return renewed
