"""Withdrawal requests, review and views. Plain functions on a Session: flush, never commit.

Money (see docs/withdrawals.md): a request moves the whole amount `available -> withdrawing` at once; fee and
tax are computed at request time (the member sees them before confirming) and booked on success:
`withdrawing -> payout_clearing (net) + fees (fee) + tax_withheld (tax)`. Reject, FAIL and CANCELLED move the
whole amount `withdrawing -> available`. Ledger keys: `withdrawal:<id>:request|paid|returned`; `paid` and
`returned` are mutually exclusive because only one final state is ever reached (row lock + state machine)."""
from __future__ import annotations

import secrets
from datetime import datetime, time as dtime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.service import record
from app.db import utcnow
from app.errors import Conflict, Forbidden, IllegalTransition, NotFound, UpstreamError, ValidationFailed
from app.fraud.service import has_open_flags
from app.grades.service import grade_of
from app.ledger.models import LedgerAccount
from app.grades.models import Grade
from app.ledger.service import member_accounts, member_balances, post_entry
from app.members.models import Identity
from app.members.service import get_member
from app.referrals.partners import partner_status
from app.runtime import Runtime
from app.withdrawals import states as S
from app.withdrawals.booking import MEMBER_CANCELLED_REASON, emit_payout, lock_withdrawal, log_transition, return_money
from app.withdrawals.models import Withdrawal, WithdrawalEvent, WithdrawalRule
from app.withdrawals.payouts import cancel_bill
from wechat.errors import PayUnknownOutcome
from app.withdrawals.rules import WECHAT_REAL_NAME_FROM_FEN, Rule, RuleViolation, quote, validate_rule

CST = ZoneInfo("Asia/Shanghai")
NOT_COUNTED_TODAY = (S.REJECTED, S.FAIL, S.CANCELLED)  # money came back: these do not use up today's limits


# -- rules ---------------------------------------------------------------------------------------------------

def _rule_of_row(row: WithdrawalRule) -> Rule:
    return Rule(**{f: getattr(row, f) for f in Rule.field_names()})


def rule_for_grade(session: Session, grade_code: str) -> Rule:
    """The grade's own rule, else the default ('*'), else built-in defaults."""
    rows = {r.grade_code: r for r in session.scalars(
        select(WithdrawalRule).where(WithdrawalRule.grade_code.in_([grade_code or "*", "*"])))}
    row = rows.get(grade_code) or rows.get("*")
    return _rule_of_row(row) if row else Rule()


def list_rules(session: Session) -> list[dict]:
    rows = session.scalars(select(WithdrawalRule).order_by(WithdrawalRule.grade_code)).all()
    out = [_rule_of_row(r).to_dict() | {"updated_by": r.updated_by} for r in rows]
    if not any(r["grade_code"] == "*" for r in out):
        out.insert(0, Rule().to_dict() | {"updated_by": "built-in"})
    return out


def set_rule(session: Session, grade_code: str, values: dict, *, actor: str) -> dict:
    """Create or replace a grade's rule (unspecified fields keep their current or default value). Audited."""
    current = rule_for_grade(session, grade_code).to_dict()
    if grade_code != "*" and session.get(WithdrawalRule, grade_code) is None:
        if not session.scalar(select(Grade.id).where(Grade.code == grade_code)):
            raise NotFound("No such grade.", code="grade_not_found")
    merged = {**current, **{k: v for k, v in values.items() if k in Rule.field_names()}, "grade_code": grade_code}
    rule = Rule(**merged)
    try:
        validate_rule(rule)
    except RuleViolation as v:
        raise ValidationFailed(v.message, code=v.code, details=v.details) from None
    row = session.get(WithdrawalRule, grade_code, with_for_update=True)
    if row is None:
        row = WithdrawalRule(grade_code=grade_code)
        session.add(row)
    for k, v in rule.to_dict().items():
        setattr(row, k, v)
    row.updated_by, row.updated_at = actor, utcnow()
    record(session, actor, "withdrawal_rule.set", "withdrawal_rule", grade_code, **rule.to_dict())
    session.flush()
    return rule.to_dict()


# -- requests ------------------------------------------------------------------------------------------------

def _today_start_utc(now: datetime) -> datetime:
    local_day = now.astimezone(CST).date()
    return datetime.combine(local_day, dtime(0), CST).astimezone(timezone.utc)


def _lock_member_money(session: Session, member_id: int) -> dict[str, int]:
    """Lock the member's available and withdrawing accounts (id order, like the ledger) and return their ids.

    Every request of one member queues here, so balance and daily-limit checks below cannot race."""
    ids = member_accounts(session, [(member_id, "available"), (member_id, "withdrawing")])
    # NO KEY UPDATE like the ledger: journal-line inserts take KEY SHARE on their accounts (foreign key).
    session.execute(select(LedgerAccount.id).where(LedgerAccount.id.in_(ids.values()))
                    .order_by(LedgerAccount.id).with_for_update(key_share=True)).all()
    return {"available": ids[(member_id, "available")], "withdrawing": ids[(member_id, "withdrawing")]}


def new_out_bill_no() -> str:
    """≤ 32 chars of [0-9A-Za-z], random so it is unique across databases sharing one merchant account."""
    return "LB" + secrets.token_hex(15)


def request_withdrawal(session: Session, member_id: int, amount_fen: int, idempotency_key: str, *,
                       appid: str) -> tuple[Withdrawal, bool]:
    """Move `amount_fen` available -> withdrawing and create the withdrawal (auto-approved when the rule allows).

    Idempotent on (member, idempotency_key): a double tap returns the first withdrawal (created=False); the same
    key with another amount is a Conflict."""
    if not idempotency_key or len(idempotency_key) > 64:
        raise ValidationFailed("An idempotency key of 1 to 64 characters is required.", code="idempotency_key_required")
    member = get_member(session, member_id)
    if partner_status(session, member.id) == "frozen":
        raise Forbidden("Your partner account is frozen; contact the merchant.", code="partner_frozen")
    accounts = _lock_member_money(session, member.id)
    existing = session.scalar(select(Withdrawal).where(Withdrawal.member_id == member.id,
                                                       Withdrawal.idempotency_key == idempotency_key))
    if existing is not None:
        if existing.amount_fen != amount_fen:
            raise Conflict("This idempotency key was used for another amount.", code="idempotency_key_reused")
        return existing, False

    now = utcnow()
    grade = grade_of(session, member.id)
    rule = rule_for_grade(session, grade)
    q = _quote(session, member.id, rule, amount_fen, now)
    available = session.scalar(select(LedgerAccount.balance_fen).where(LedgerAccount.id == accounts["available"]))
    if available < amount_fen:
        raise Conflict("Not enough available balance.", code="insufficient_balance",
                       details={"available_fen": int(available), "amount_fen": amount_fen})
    openid = session.scalar(select(Identity.value).where(Identity.member_id == member.id,
                                                          Identity.kind == "mini_openid"))
    if not openid:
        raise ValidationFailed("Open the mini-program once: WeChat pays to your mini-program identity.",
                               code="miniapp_openid_required")
    if q.needs_real_name and not member.real_name_enc:
        raise ValidationFailed("WeChat needs your real name for this amount; add it first.",
                               code="real_name_required", details={"net_fen": q.net_fen})

    w = Withdrawal(member_id=member.id, idempotency_key=idempotency_key, amount_fen=q.amount_fen, fee_fen=q.fee_fen,
                   tax_fen=q.tax_fen, net_fen=q.net_fen, grade_code=grade, state=S.REVIEWING,
                   out_bill_no=new_out_bill_no(), openid=openid, appid=appid, remark="佣金提现",
                   user_name_enc=member.real_name_enc if q.needs_real_name else None, created_at=now, updated_at=now)
    session.add(w)
    session.flush()
    post_entry(session, f"withdrawal:{w.id}:request",
               [(accounts["available"], -amount_fen), (accounts["withdrawing"], amount_fen)],
               "withdrawal_requested", "withdrawal", w.id)
    log_transition(session, w, None, S.REVIEWING, "member")
    if amount_fen < rule.auto_approve_below_fen and not has_open_flags(session, member.id):
        _approve(session, w, "system", "auto-approved below threshold")
    session.flush()
    return w, True


def _quote(session: Session, member_id: int, rule: Rule, amount_fen: int, now: datetime):
    """The rule's quote for this amount after today's earlier requests; ValidationFailed with the rule's code."""
    today_fen, today_count = session.execute(
        select(func.coalesce(func.sum(Withdrawal.amount_fen), 0), func.count())
        .where(Withdrawal.member_id == member_id, Withdrawal.created_at >= _today_start_utc(now),
               Withdrawal.state.not_in(NOT_COUNTED_TODAY))).one()
    try:
        return quote(rule, amount_fen, today_fen=int(today_fen), today_count=int(today_count))
    except RuleViolation as v:
        raise ValidationFailed(v.message, code=v.code, details=v.details) from None


def quote_withdrawal(session: Session, member_id: int, amount_fen: int) -> dict:
    """What a request for `amount_fen` would do, before the member confirms: fee, tax and net, and whether WeChat
    will need their real name (`real_name_required`, from the rule's threshold on the net amount, at most WeChat's
    2,000 yuan) and whether one is on file. Refused like the request itself (the rule's codes) when the rule
    would refuse it; the balance is reported, not checked (`enough_balance`)."""
    member = get_member(session, member_id)
    rule = rule_for_grade(session, grade_of(session, member.id))
    q = _quote(session, member.id, rule, amount_fen, utcnow())
    available = member_balances(session, member.id).get("available", 0)
    return {"amount_fen": q.amount_fen, "fee_fen": q.fee_fen, "tax_fen": q.tax_fen, "net_fen": q.net_fen,
            "real_name_required": q.needs_real_name, "real_name_on_file": member.real_name_enc is not None,
            "real_name_from_fen": min(rule.real_name_from_fen, WECHAT_REAL_NAME_FROM_FEN),
            "available_fen": int(available), "enough_balance": int(available) >= q.amount_fen}


# -- review --------------------------------------------------------------------------------------------------

def _move(session: Session, w: Withdrawal, action: str, source: str, note: str = "") -> str:
    before = w.state
    try:
        w.state = S.local(before, action)
    except IllegalTransition as exc:
        raise Conflict(str(exc), code="withdrawal_state_conflict", details={"state": before}) from None
    w.updated_at = utcnow()
    log_transition(session, w, before, w.state, source, note)
    return before


def _approve(session: Session, w: Withdrawal, actor: str, note: str = "") -> None:
    _move(session, w, "approve", actor, note)
    w.reviewed_by, w.approved_at = actor, utcnow()
    emit_payout(session, w)  # same transaction: the payout job exists iff the approval committed


def approve_withdrawal(session: Session, withdrawal_id: int, *, actor: str) -> Withdrawal:
    w = lock_withdrawal(session, withdrawal_id)
    _approve(session, w, actor)
    record(session, actor, "withdrawal.approve", "withdrawal", w.id, amount_fen=w.amount_fen)
    session.flush()
    return w


def reject_withdrawal(session: Session, withdrawal_id: int, *, reason: str, actor: str) -> Withdrawal:
    if not reason or not reason.strip():
        raise ValidationFailed("Say why the withdrawal is rejected; the partner sees it.", code="reason_required")
    w = lock_withdrawal(session, withdrawal_id)
    _move(session, w, "reject", actor, reason)
    w.reason, w.reviewed_by, w.finished_at = reason.strip()[:255], actor, utcnow()
    return_money(session, w)
    record(session, actor, "withdrawal.reject", "withdrawal", w.id, reason=w.reason)
    session.flush()
    return w


def cancel_withdrawal(session: Session, member_id: int, withdrawal_id: int, *, rt: Runtime) -> tuple[Withdrawal, bool]:
    """The member takes back a withdrawal. Returns (withdrawal, cancelled).

    - No bill sent yet (REVIEWING, APPROVED): CANCELLED at once, the money returns.
    - A bill awaiting the member's confirmation (WAIT_USER_CONFIRM): WeChat is asked to cancel it (this call
      waits for WeChat's answer, row locked). The withdrawal becomes CANCELING and its money stays in
      `withdrawing` until WeChat reports CANCELLED (notification or query); only then does it return.
      If the member confirmed in WeChat first, WeChat refuses the cancel: the bill's real state is applied
      (TRANSFERING/SUCCESS: paid normally) and `cancelled` is False.
    - CANCELING already: nothing more to ask (a double tap), `cancelled` is True.
    WeChat not answering raises UpstreamError (nothing changed here; the member may try again)."""
    w = lock_withdrawal(session, withdrawal_id)
    if w.member_id != member_id:
        raise NotFound("No such withdrawal.", code="withdrawal_not_found")
    if w.state == S.CANCELING:
        return w, True
    if w.state == S.WAIT_USER_CONFIRM:
        try:
            cancelled = cancel_bill(session, w, rt)
        except PayUnknownOutcome as exc:
            raise UpstreamError("WeChat Pay did not answer the cancel; try again.", code="wechat_pay_unavailable",
                                details={"why": str(exc)[:200]}) from None
        session.flush()
        return w, cancelled
    _move(session, w, "cancel", "member", MEMBER_CANCELLED_REASON)
    w.reason, w.finished_at = MEMBER_CANCELLED_REASON, utcnow()
    return_money(session, w)
    session.flush()
    return w, True


# -- views ---------------------------------------------------------------------------------------------------

def view(w: Withdrawal, *, mch_id: str | None = None) -> dict:
    out = {"id": w.id, "state": w.state, "final": S.is_final(w.state), "reason": w.reason,
           "amount_fen": w.amount_fen, "fee_fen": w.fee_fen, "tax_fen": w.tax_fen, "net_fen": w.net_fen,
           "created_at": w.created_at.isoformat(), "finished_at": w.finished_at.isoformat() if w.finished_at else None}
    if w.state == S.WAIT_USER_CONFIRM and w.package_info:
        # What the mini-program passes to wx.requestMerchantTransfer({mchId, appId, package}).
        out["confirm"] = {"mchId": mch_id, "appId": w.appid, "package": w.package_info}
    return out


def admin_view(w: Withdrawal, *, mch_id: str | None = None) -> dict:
    """The member's view (the same confirmation data, `mch_id` included) and what the operator reviews."""
    return view(w, mch_id=mch_id) | {"member_id": w.member_id, "grade_code": w.grade_code, "out_bill_no": w.out_bill_no,
                      "transfer_bill_no": w.transfer_bill_no, "reviewed_by": w.reviewed_by,
                      "submit_attempts": w.submit_attempts, "real_name_sent": w.user_name_enc is not None}


def member_withdrawal(session: Session, member_id: int, withdrawal_id: int) -> Withdrawal:
    w = session.get(Withdrawal, withdrawal_id)
    if w is None or w.member_id != member_id:  # someone else's id looks exactly like a missing one
        raise NotFound("No such withdrawal.", code="withdrawal_not_found")
    return w


def member_withdrawals(session: Session, member_id: int, limit: int = 50, before_id: int | None = None):
    q = select(Withdrawal).where(Withdrawal.member_id == member_id).order_by(Withdrawal.id.desc()).limit(limit)
    if before_id:
        q = q.where(Withdrawal.id < before_id)
    return session.scalars(q).all()


def list_withdrawals(session: Session, state: str | None = None, limit: int = 100, before_id: int | None = None):
    q = select(Withdrawal).order_by(Withdrawal.id.desc()).limit(limit)
    if state:
        q = q.where(Withdrawal.state == state)
    if before_id:
        q = q.where(Withdrawal.id < before_id)
    return session.scalars(q).all()


def history(session: Session, withdrawal_id: int) -> list[dict]:
    rows = session.scalars(select(WithdrawalEvent).where(WithdrawalEvent.withdrawal_id == withdrawal_id)
                           .order_by(WithdrawalEvent.id))
    return [{"from": r.from_state, "to": r.to_state, "source": r.source, "note": r.note,
             "at": r.created_at.isoformat()} for r in rows]
