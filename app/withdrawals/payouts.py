"""Paying an approved withdrawal with WeChat Pay merchant transfer, and applying what WeChat reports.

`drive(withdrawal_id)` moves one withdrawal one step closer to a final state; the RQ job is a shell around it.
Rules that keep money from being paid twice or lost:
- one `out_bill_no` per withdrawal, written when the withdrawal was created, sent with identical parameters
  (snapshotted openid, net amount, remark, real name) on every try;
- the attempt is committed (SUBMITTING, submit_attempts+1, last_submit_at) *before* the call, so a worker
  killed mid-call leaves a withdrawal that the next run resolves by querying, never by billing again;
- an unknown outcome is resolved by querying; NOT_FOUND within PAYOUT_ACCEPT_GRACE of a submit means "still
  being accepted" (wait, query again); only an older NOT_FOUND allows a resubmit — same number, same content;
- only one worker drives a withdrawal at a time (a PostgreSQL advisory lock on a dedicated connection, released
  by the server if the worker dies);
- every report (create answer, query answer, notification) goes through the state machine under the row lock:
  whichever arrives first wins, duplicates and stale reports change nothing, final states never change."""
from __future__ import annotations

import logging
import os
import random
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from app.crypto import decrypt
from app.db import utcnow
from app.config import PayoutSettings
from app.errors import IllegalTransition
from app.events import record as record_event
from app.outbox.after_commit import HANDOFF
from app.runtime import Runtime, unit_of_work
from app.withdrawals import breaker
from app.withdrawals import states as S
from app.withdrawals.booking import (MEMBER_CANCELLED_REASON, book_paid, emit_payout, lock_withdrawal, log_transition,
                                     return_money)
from app.withdrawals.models import Withdrawal
from app.withdrawals.ratelimit import RateLimiter
from wechat.errors import PayError, PayNotFound, PayUnknownOutcome
from wechat.pay import DEFAULT_REPORT_INFOS, WeChatPay

log = logging.getLogger(__name__)
UNKNOWN_CANCEL_CODES = frozenset({"FREQUENCY_LIMITED", "SIGN_ERROR"})  # nothing happened: the member may retry
_LOCK_BASE = 0x5744 << 48  # advisory-lock key space for withdrawals ("WD")


class Later(Exception):
    """Not finished: drive this withdrawal again in `delay` seconds (the outbox turns it into RetryLater)."""

    def __init__(self, delay: float, why: str):
        super().__init__(why)
        self.delay = delay


def pay_client(rt: Runtime) -> WeChatPay:
    """One client (and HTTP connection pool) per process and runtime; rebuilt in a forked child."""
    key = ("withdrawals.pay_client", os.getpid())
    client = rt.cache.get(key)
    if client is None:
        client = rt.cache[key] = WeChatPay(rt.settings, timeout=(3.05, rt.settings.payout.http_timeout))
    return client


def limiter(rt: Runtime) -> RateLimiter:
    cfg = rt.settings.payout
    key = ("withdrawals.limiter", os.getpid())
    lim = rt.cache.get(key)
    if lim is None:
        lim = rt.cache[key] = RateLimiter(rt.redis, f"wechatpay:rate:{rt.settings.wechatpay_mch_id}",
                                          cfg.rate_per_s, cfg.rate_burst)
    return lim


class _Units:
    """Units of work for one drive. PostgreSQL: `fast` is the autocommit connection holding the withdrawal's
    advisory lock (single-statement steps of the common path, one round trip each); ORM units run on a second
    connection of the same small pool (the advisory lock is held all along by `fast`)."""

    def __init__(self, rt: Runtime, fast=None):
        self.rt, self.fast = rt, fast

    @contextmanager
    def session(self):
        if self.fast is None:
            with self.rt.session() as s:
                yield s
            return
        # With the runtime's handoff, so outbox rows written here (events' deliveries) go to RQ at commit.
        with unit_of_work(lambda: Session(bind=_payout_engine(self.rt), expire_on_commit=False,
                                          info={HANDOFF: self.rt.handoff})) as s:
            yield s


@contextmanager
def exclusive(rt: Runtime, withdrawal_id: int):
    """Units of work for driving the withdrawal, or None when another process drives it right now.

    PostgreSQL: a session-level advisory lock on a dedicated autocommit connection (no BEGIN/COMMIT round
    trips); the server drops the lock if the worker dies. The drive's commits skip the WAL flush wait
    (synchronous_commit=off): a database crash may forget the last fraction of a second of them, and every
    one is re-derived from WeChat by querying the same out_bill_no (ledger keys make the replay a no-op).
    Embedded (SQLite, one process): no lock."""
    if rt.engine.dialect.name != "postgresql":
        yield _Units(rt)
        return
    conn = _fast_engine(rt).connect()
    key = _LOCK_BASE + int(withdrawal_id)
    got = False
    try:
        got = bool(conn.exec_driver_sql("SELECT pg_try_advisory_lock(%(k)s)", {"k": key}).scalar())
        yield _Units(rt, conn) if got else None
    finally:
        try:
            if got:
                conn.exec_driver_sql("SELECT pg_advisory_unlock(%(k)s)", {"k": key})
        finally:
            conn.close()


def _payout_engine(rt: Runtime):
    """A small pool of connections with synchronous_commit=off, for payout drives only (see `exclusive`)."""
    key = ("withdrawals.payout_engine", os.getpid())
    engine = rt.cache.get(key)
    if engine is None:
        engine = rt.cache[key] = create_engine(rt.engine.url, pool_size=4, max_overflow=8,
                                               connect_args={"options": "-c synchronous_commit=off"})
    return engine


def _fast_engine(rt: Runtime):
    """The same pool in autocommit: each statement is its own transaction (one round trip)."""
    key = ("withdrawals.fast_engine", os.getpid())
    engine = rt.cache.get(key)
    if engine is None:
        engine = rt.cache[key] = _payout_engine(rt).execution_options(isolation_level="AUTOCOMMIT")
    return engine


# One statement, one round trip: lock the withdrawal if it is still APPROVED, count it into today's total unless
# paused or the daily limit would be crossed, mark it SUBMITTING (attempt committed before the call), and record
# the event. No row back = anything unusual (not APPROVED, paused, limit, no control row): the ORM path decides.
_SUBMIT_FAST = """
WITH durable AS (
  SELECT set_config('synchronous_commit', 'on', true) AS v
), w AS (
  SELECT id, net_fen FROM withdrawals WHERE id = %(id)s AND state = 'APPROVED'
    AND (SELECT v FROM durable) IS NOT NULL FOR UPDATE
), c AS (
  UPDATE payout_control SET
    day_submitted_fen = (CASE WHEN day = %(today)s THEN day_submitted_fen ELSE 0 END) + (SELECT net_fen FROM w),
    day = %(today)s
  WHERE id = 1 AND NOT paused AND EXISTS (SELECT 1 FROM w)
    AND (daily_total_limit_fen IS NULL OR (CASE WHEN day = %(today)s THEN day_submitted_fen ELSE 0 END)
         + (SELECT net_fen FROM w) <= daily_total_limit_fen)
  RETURNING id
), u AS (
  UPDATE withdrawals SET state = 'SUBMITTING', tries = tries + 1, submit_attempts = submit_attempts + 1,
    last_submit_at = %(now)s, updated_at = %(now)s
  WHERE id = %(id)s AND EXISTS (SELECT 1 FROM c)
  RETURNING id, out_bill_no, openid, appid, net_fen, remark, user_name_enc, last_submit_at, tries
), e AS (
  INSERT INTO withdrawal_events (withdrawal_id, from_state, to_state, source, note, created_at)
  SELECT id, 'APPROVED', 'SUBMITTING', 'worker', 'first submit', %(now)s FROM u
)
SELECT out_bill_no, openid, appid, net_fen, remark, user_name_enc, last_submit_at, tries FROM u
"""

# Apply a non-final state WeChat reported to a withdrawal still in the state we left it in (one round trip).
# No row back = someone else moved it meanwhile (e.g. a notification): the ORM path applies the report.
_APPLY_FAST = """
WITH u AS (
  UPDATE withdrawals SET state = %(new)s, updated_at = %(now)s,
    package_info = COALESCE(%(package)s, package_info),
    transfer_bill_no = COALESCE(NULLIF(transfer_bill_no, ''), %(bill_no)s, transfer_bill_no)
  WHERE id = %(id)s AND state = %(expected)s
  RETURNING id
)
INSERT INTO withdrawal_events (withdrawal_id, from_state, to_state, source, note, created_at)
SELECT id, %(expected)s, %(new)s, %(source)s, '', %(now)s FROM u
RETURNING withdrawal_id
"""


def _durable_commit(session: Session) -> None:
    """The SUBMITTING marker must survive a database crash (the pool runs synchronous_commit=off): were it lost
    after the bill reached WeChat, the withdrawal would look APPROVED and its member could cancel it while
    WeChat pays. The fast path does the same inside its statement (the `durable` CTE)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit = on"))


def _submit_fast(units: _Units, withdrawal_id: int):
    """BillParams when the fast path marked the withdrawal SUBMITTING, else None."""
    if units.fast is None:
        return None
    row = units.fast.exec_driver_sql(_SUBMIT_FAST, {"id": withdrawal_id, "today": breaker._today(),
                                                    "now": utcnow()}).first()
    if row is None:
        return None
    return BillParams(row.out_bill_no, row.openid, row.appid, row.net_fen, row.remark, row.user_name_enc,
                      row.last_submit_at, row.tries)


def _apply_fast(units: _Units, withdrawal_id: int, expected: str, bill: dict, source: str) -> str | None:
    new = bill.get("state")
    # WAIT_USER_CONFIRM records withdrawal.awaiting_confirmation (the member is told, then reminded): the ORM path.
    if units.fast is None or new not in S.WECHAT_STATES or S.is_final(new) or new == S.WAIT_USER_CONFIRM:
        return None
    try:
        if S.reported(expected, new) is not S.Move.APPLY:
            return None
    except IllegalTransition:
        return None
    package = bill.get("package_info") if new == S.WAIT_USER_CONFIRM else None
    row = units.fast.exec_driver_sql(_APPLY_FAST, {
        "id": withdrawal_id, "new": new, "expected": expected, "now": utcnow(), "source": source,
        "package": package or None, "bill_no": bill.get("transfer_bill_no") or None}).first()
    return "apply" if row is not None else None


def backoff(cfg: PayoutSettings, tries: int) -> float:
    return min(cfg.backoff_base * 2 ** min(max(tries - 1, 0), 16), cfg.backoff_max) * (0.5 + random.random())


# -- applying WeChat's reports --------------------------------------------------------------------------------

_CANCELLED_REASON = "not confirmed in WeChat within 24 hours, or cancelled"


def apply_report(session: Session, w: Withdrawal, wechat_state: str, *, source: str, fail_reason: str | None = None,
                 package_info: str | None = None, transfer_bill_no: str | None = None) -> str:
    """Apply a bill state WeChat reported to a locked withdrawal. Returns apply | same | stale | refused."""
    if transfer_bill_no and not w.transfer_bill_no:
        w.transfer_bill_no = transfer_bill_no
    try:
        move = S.reported(w.state, wechat_state)
    except IllegalTransition as exc:
        # WeChat contradicting a final state (or a bill for a withdrawal never sent) is for a human to look at.
        log.error("withdrawal %s: refused report %s from %s (%s)", w.id, wechat_state, source, exc)
        log_transition(session, w, w.state, w.state, source, f"refused report {wechat_state}: {exc}")
        session.flush()
        return "refused"
    if move is not S.Move.APPLY:
        if wechat_state == S.WAIT_USER_CONFIRM and package_info and not w.package_info:
            w.package_info = package_info
        return move.value
    before, now = w.state, utcnow()
    w.state, w.updated_at = wechat_state, now
    if wechat_state == S.WAIT_USER_CONFIRM and package_info:
        w.package_info = package_info
    if wechat_state == S.WAIT_USER_CONFIRM:
        record_event(session, "withdrawal.awaiting_confirmation", withdrawal_id=w.id, member_id=w.member_id,
                     net_fen=w.net_fen)
    if S.is_final(wechat_state):
        w.finished_at, w.package_info = now, None
        if wechat_state == S.SUCCESS:
            book_paid(session, w)
        else:
            if not w.reason:
                w.reason = (fail_reason or "FAIL")[:255] if wechat_state == S.FAIL else \
                    (fail_reason or (MEMBER_CANCELLED_REASON if before == S.CANCELING else _CANCELLED_REASON))[:255]
            return_money(session, w)
            if wechat_state == S.FAIL:
                breaker.after_failure(session)
    log_transition(session, w, before, wechat_state, source, fail_reason or "")
    session.flush()
    return "apply"


def apply_bill(session: Session, withdrawal_id: int, bill: dict, source: str) -> str:
    w = lock_withdrawal(session, withdrawal_id)
    return apply_report(session, w, bill["state"], source=source, fail_reason=bill.get("fail_reason"),
                        package_info=bill.get("package_info"), transfer_bill_no=bill.get("transfer_bill_no"))


def on_transfer_notification(session: Session, resource: dict) -> None:
    """MCHTRANSFER.BILL.FINISHED, already verified and decrypted by wechat.pay. Idempotent."""
    no, state = resource.get("out_bill_no"), resource.get("state")
    w = session.scalar(select(Withdrawal).where(Withdrawal.out_bill_no == no).with_for_update()
                       .execution_options(populate_existing=True))
    if w is None or state not in S.WECHAT_STATES:
        log.warning("transfer notification for unknown bill %s (%s) ignored", no, state)
        return
    apply_report(session, w, state, source="notify", fail_reason=resource.get("fail_reason"),
                 transfer_bill_no=resource.get("transfer_bill_no"))


# -- driving one withdrawal -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class BillParams:
    out_bill_no: str
    openid: str
    appid: str
    amount: int
    remark: str
    user_name_enc: str | None
    last_submit_at: object
    tries: int


def _params(w: Withdrawal) -> BillParams:
    return BillParams(w.out_bill_no, w.openid, w.appid, w.net_fen, w.remark, w.user_name_enc, w.last_submit_at,
                      w.tries)


def _mark_attempt(w: Withdrawal) -> None:
    w.state = S.local(w.state, "submit")
    w.submit_attempts += 1
    w.last_submit_at = w.updated_at = utcnow()


def drive(rt: Runtime, withdrawal_id: int) -> str:
    """One step towards a final state. Returns a short outcome; raises Later when it must run again."""
    cfg = rt.settings.payout
    with exclusive(rt, withdrawal_id) as units:
        if units is None:
            raise Later(max(cfg.accept_grace, 5.0), "another worker is driving this withdrawal")
        p = _submit_fast(units, withdrawal_id)  # the common case: APPROVED, not paused, within today's limit
        if p is not None:
            return _create(rt, units, cfg, pay_client(rt), limiter(rt), withdrawal_id, p)
        with units.session() as s:
            w = lock_withdrawal(s, withdrawal_id)
            if S.is_final(w.state) or w.state == S.REVIEWING:
                return w.state
            w.tries += 1
            if w.state == S.APPROVED:
                ok, why = breaker.allow_submit(s, w)
                if not ok:
                    return f"paused: {why}"  # resume() queues it again
                _durable_commit(s)
                _mark_attempt(w)
                action = "create"
            else:
                action = "query"  # SUBMITTING: the last attempt's outcome is unknown; later states: reconcile
            state, p = w.state, _params(w)
            if action == "create":
                log_transition(s, w, S.APPROVED, S.SUBMITTING, "worker", "first submit")
        pay = pay_client(rt)
        lim = limiter(rt)
        if action == "query":
            try:
                lim.acquire()
                bill = pay.query_transfer_bill(p.out_bill_no)
            except PayNotFound:
                if state != S.SUBMITTING:
                    raise Later(backoff(cfg, p.tries), f"{state} bill not found by query") from None
                since = (utcnow() - p.last_submit_at).total_seconds() if p.last_submit_at else 1e9
                if since < cfg.accept_grace:  # WeChat may still be accepting it: ask again before concluding
                    raise Later(cfg.accept_grace - since + 0.5, "not found right after submit") from None
                with units.session() as s:  # nothing was created: resubmit, same number, identical parameters
                    w = lock_withdrawal(s, withdrawal_id)
                    if w.state != S.SUBMITTING:
                        return w.state
                    _mark_attempt(w)
                    p = _params(w)
                action = "create"
            except (PayUnknownOutcome, PayError, TimeoutError) as exc:
                raise Later(backoff(cfg, p.tries), f"query: {exc}") from None
            else:
                with units.session() as s:
                    outcome = apply_bill(s, withdrawal_id, bill, "query")
                if bill.get("state") == S.CANCELING:  # a member's cancel under way: follow it to CANCELLED
                    raise Later(backoff(cfg, p.tries), "cancel under way at WeChat")
                return outcome
        return _create(rt, units, cfg, pay, lim, withdrawal_id, p)


def _create(rt: Runtime, units: _Units, cfg: PayoutSettings, pay: WeChatPay, lim: RateLimiter, withdrawal_id: int,
            p: BillParams) -> str:
    user_name = decrypt(rt.settings.secret_key, p.user_name_enc) if p.user_name_enc else None
    try:
        lim.acquire()
        bill = pay.create_transfer_bill(p.out_bill_no, p.openid, p.amount, p.remark, user_name=user_name,
                                        scene_id="1005", report_infos=DEFAULT_REPORT_INFOS, appid=p.appid)
    except (PayUnknownOutcome, TimeoutError) as exc:
        # Maybe billed, maybe not: the next run queries by out_bill_no (after the acceptance grace).
        raise Later(min(cfg.accept_grace, backoff(cfg, p.tries)), f"create: unknown outcome: {exc}") from None
    except PayError as exc:
        if exc.retryable or exc.code in ("NOT_ENOUGH", "SIGN_ERROR", "FREQUENCY_LIMITED"):
            # Nothing happened, and trying again later may work (merchant balance topped up, rate limit over).
            raise Later(backoff(cfg, p.tries), f"create: {exc.code}") from None
        return _refused(units, cfg, pay, lim, withdrawal_id, p.out_bill_no, exc)
    fast = _apply_fast(units, withdrawal_id, S.SUBMITTING, bill, "create")
    if fast is not None:
        return fast
    with units.session() as s:
        return apply_bill(s, withdrawal_id, bill, "create")


def _refused(units: _Units, cfg, pay, lim, withdrawal_id: int, out_bill_no: str, exc: PayError) -> str:
    """A definite rejection. A reused out_bill_no "with different content" would mean a bill exists: make sure
    no bill exists before giving the money back."""
    try:
        lim.acquire()
        bill = pay.query_transfer_bill(out_bill_no)
    except PayNotFound:
        with units.session() as s:
            w = lock_withdrawal(s, withdrawal_id)
            if w.state not in (S.APPROVED, S.SUBMITTING):
                return w.state
            before = w.state
            w.state = S.local(before, "refused")
            w.reason, w.finished_at, w.updated_at = f"{exc.code}: {exc.message}"[:255], utcnow(), utcnow()
            return_money(s, w)
            log_transition(s, w, before, S.FAIL, "worker", w.reason)
            breaker.after_failure(s)
            return S.FAIL
    except (PayUnknownOutcome, PayError, TimeoutError) as q:
        raise Later(backoff(cfg, 1), f"query after refusal: {q}") from None
    with units.session() as s:
        return apply_bill(s, withdrawal_id, bill, "query")


# -- the member cancels a bill awaiting confirmation -------------------------------------------------------

def cancel_bill(session: Session, w: Withdrawal, rt: Runtime) -> bool:
    """Ask WeChat to cancel the bill of a locked WAIT_USER_CONFIRM withdrawal; apply what WeChat says.

    Cancelling is asynchronous at WeChat: the answer is CANCELING and the money stays in `withdrawing` until
    WeChat reports CANCELLED (notification, or a query by the payout job queued here / by reconciliation).
    Returns True when the cancel was accepted, False when WeChat refused it because the bill moved on meanwhile
    (the member confirmed first): then the bill's real state, learnt by query, is applied (e.g. SUCCESS, paid
    normally). Raises PayUnknownOutcome when WeChat's answer is unknown (nothing is changed here; a cancel that
    did happen arrives as a CANCELLED notification or query answer)."""
    cfg = rt.settings.payout
    pay, lim = pay_client(rt), limiter(rt)
    try:
        lim.acquire(max_wait=5.0)
        answer = pay.cancel_transfer_bill(w.out_bill_no)
    except TimeoutError as exc:
        raise PayUnknownOutcome(f"cancel: {exc}") from None
    except PayError as exc:
        if exc.retryable or exc.code in UNKNOWN_CANCEL_CODES:
            raise PayUnknownOutcome(f"cancel: {exc.code}") from None
        # Not cancellable any more (confirmed, or finished): learn where the bill is.
        try:
            lim.acquire(max_wait=5.0)
            bill = pay.query_transfer_bill(w.out_bill_no)
        except (PayError, TimeoutError) as q:
            raise PayUnknownOutcome(f"cancel refused ({exc.code}), then query: {q}") from None
        apply_report(session, w, bill["state"], source="query", fail_reason=bill.get("fail_reason"),
                     package_info=bill.get("package_info"), transfer_bill_no=bill.get("transfer_bill_no"))
        return bill["state"] in (S.CANCELING, S.CANCELLED)
    state = answer.get("state") or S.CANCELING
    if state not in (S.CANCELING, S.CANCELLED):
        raise PayUnknownOutcome(f"cancel: unexpected answer state {state!r}")
    apply_report(session, w, state, source="member", transfer_bill_no=answer.get("transfer_bill_no"))
    if not S.is_final(w.state):
        # Follow the cancel by query even if the CANCELLED notification is lost (reconciliation would too).
        emit_payout(session, w, delay=cfg.cancel_followup)
    return True


# -- reconciliation -------------------------------------------------------------------------------------------

def reconcile(session: Session, cfg: PayoutSettings, limit: int = 5000) -> int:
    """Queue a payout job for every withdrawal that is not final and has (or may have) a bill, and for every
    approved one nobody is paying (a lost job). Jobs are deduplicated, so running this often is cheap."""
    paused = breaker.control(session).paused
    recheck_before = utcnow() - timedelta(seconds=cfg.confirm_recheck)
    wanted = [S.SUBMITTING, S.ACCEPTED, S.PROCESSING, S.TRANSFERING, S.CANCELING] + ([] if paused else [S.APPROVED])
    rows = session.scalars(select(Withdrawal).where(
        (Withdrawal.state.in_(wanted)) |
        ((Withdrawal.state == S.WAIT_USER_CONFIRM) & (Withdrawal.updated_at < recheck_before)))
        .order_by(Withdrawal.id).limit(limit)).all()
    for w in rows:
        if w.state == S.WAIT_USER_CONFIRM:
            w.updated_at = utcnow()  # next recheck in confirm_recheck seconds
        emit_payout(session, w)
    session.flush()
    return len(rows)
