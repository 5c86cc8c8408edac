"""Pausing payouts: by an operator (audited) or by the circuit breaker when today's total or the recent
failure rate crosses the configured limits. A paused system keeps accepting and approving withdrawals; only
the submission of new bills waits (bills already at WeChat are still followed to the end)."""
from __future__ import annotations

import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.service import record
from app.db import utcnow
from app.ledger.service import insert_ignoring_conflicts
from app.withdrawals import states as S
from app.withdrawals.booking import emit_payout
from app.withdrawals.models import PayoutControl, Withdrawal

log = logging.getLogger(__name__)
CST = ZoneInfo("Asia/Shanghai")
BREAKER = "system:breaker"


def control(session: Session, *, lock: bool = False) -> PayoutControl:
    row = session.get(PayoutControl, 1, with_for_update=lock, populate_existing=lock)
    if row is None:
        session.execute(insert_ignoring_conflicts(session, PayoutControl.__table__).values(
            id=1, paused=False, paused_reason="", paused_by="", failure_window_minutes=60, failure_min_count=20,
            day="", day_submitted_fen=0, updated_at=utcnow()))
        row = session.get(PayoutControl, 1, with_for_update=lock, populate_existing=True)
    return row


def _today() -> str:
    return utcnow().astimezone(CST).date().isoformat()


def status(session: Session) -> dict:
    c = control(session)
    return {"paused": c.paused, "paused_reason": c.paused_reason, "paused_by": c.paused_by,
            "paused_at": c.paused_at.isoformat() if c.paused_at else None,
            "daily_total_limit_fen": c.daily_total_limit_fen, "failure_rate_limit_bps": c.failure_rate_limit_bps,
            "failure_window_minutes": c.failure_window_minutes, "failure_min_count": c.failure_min_count,
            "submitted_today_fen": c.day_submitted_fen if c.day == _today() else 0}


def _pause(session: Session, c: PayoutControl, reason: str, actor: str) -> None:
    c.paused, c.paused_reason, c.paused_by, c.paused_at, c.updated_at = True, reason[:255], actor, utcnow(), utcnow()
    record(session, actor, "payouts.pause", "payout_control", 1, reason=reason)
    log.warning("payouts paused by %s: %s", actor, reason)


def pause(session: Session, *, reason: str, actor: str) -> dict:
    c = control(session, lock=True)
    _pause(session, c, reason, actor)
    session.flush()
    return status(session)


def resume(session: Session, *, actor: str, reason: str = "") -> dict:
    """Lift the pause and queue every approved withdrawal that waited (the payout job is deduplicated)."""
    c = control(session, lock=True)
    c.paused, c.paused_reason, c.paused_by, c.paused_at, c.updated_at = False, "", "", None, utcnow()
    record(session, actor, "payouts.resume", "payout_control", 1, reason=reason)
    for w in session.scalars(select(Withdrawal).where(Withdrawal.state == S.APPROVED)):
        emit_payout(session, w)
    session.flush()
    return status(session)


def set_limits(session: Session, values: dict, *, actor: str) -> dict:
    c = control(session, lock=True)
    for k in ("daily_total_limit_fen", "failure_rate_limit_bps", "failure_window_minutes", "failure_min_count"):
        if k in values:
            setattr(c, k, values[k])
    c.updated_at = utcnow()
    record(session, actor, "payouts.limits", "payout_control", 1, **{k: values[k] for k in values})
    session.flush()
    return status(session)


def allow_submit(session: Session, w: Withdrawal) -> tuple[bool, str]:
    """Called once per withdrawal, in the transaction that marks it SUBMITTING: counts it into today's total,
    or refuses (paused, or the daily total would be crossed: then the breaker pauses payouts)."""
    c = control(session, lock=True)
    if c.paused:
        return False, c.paused_reason or "paused"
    today = _today()
    if c.day != today:
        c.day, c.day_submitted_fen = today, 0
    if c.daily_total_limit_fen is not None and c.day_submitted_fen + w.net_fen > c.daily_total_limit_fen:
        _pause(session, c, f"daily total limit {c.daily_total_limit_fen} fen reached", BREAKER)
        return False, c.paused_reason
    c.day_submitted_fen += w.net_fen
    return True, ""


def after_failure(session: Session) -> None:
    """A bill ended FAIL: trip the breaker when recent failures cross the configured rate."""
    c = control(session)
    if c.paused or c.failure_rate_limit_bps is None:
        return
    since = utcnow() - timedelta(minutes=c.failure_window_minutes)
    total, failed = session.execute(
        select(func.count(), func.count().filter(Withdrawal.state == S.FAIL))
        .where(Withdrawal.finished_at >= since, Withdrawal.state.in_((S.SUCCESS, S.FAIL)))).one()
    if total >= c.failure_min_count and failed * 10_000 >= c.failure_rate_limit_bps * total:
        c = control(session, lock=True)
        if not c.paused:
            _pause(session, c, f"failure rate {failed}/{total} in {c.failure_window_minutes} min", BREAKER)
