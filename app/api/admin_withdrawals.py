"""Operators: withdrawal rules per grade, review, and the payout switch and circuit-breaker limits."""
from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from app.api.auth import OPERATOR_AUTH, operator_actor, operator_required
from app.api.fields import Bps, Fen, Int, Text
from app.api.member_withdrawals import RuleOut, WithdrawalOut
from app.api.responses import list_of, ok
from app.api.web import db, runtime
from app.withdrawals import breaker, service
from app.withdrawals import states as S
from app.errors import NotFound
from app.withdrawals.models import Withdrawal

bp = APIBlueprint("admin_withdrawals", __name__, tag="admin")


class AdminWithdrawalOut(WithdrawalOut):
    member_id = Integer()
    grade_code = String()
    out_bill_no = String(allow_none=True)
    transfer_bill_no = String(allow_none=True)
    reviewed_by = String(allow_none=True)
    submit_attempts = Integer()
    real_name_sent = Boolean()


class HistoryOut(Schema):
    from_ = String(data_key="from", allow_none=True)
    to = String()
    source = String()
    note = String(allow_none=True)
    at = String()


class WithdrawalDetailOut(AdminWithdrawalOut):
    history = List(Nested(HistoryOut))


class SavedRuleOut(RuleOut):
    updated_by = String(allow_none=True)


class PayoutsOut(Schema):
    paused = Boolean()
    paused_reason = String(allow_none=True)
    paused_by = String(allow_none=True)
    paused_at = String(allow_none=True)
    daily_total_limit_fen = Integer(allow_none=True)
    failure_rate_limit_bps = Integer(allow_none=True)
    failure_window_minutes = Integer()
    failure_min_count = Integer()
    submitted_today_fen = Integer()


class ListQuery(Schema):
    state = String(load_default=None, allow_none=True, validate=OneOf(S.STATES))
    limit = Integer(load_default=100, validate=Range(1, 500))
    before_id = Integer(load_default=None, allow_none=True)


class RejectIn(Schema):
    reason = Text(required=True, validate=Length(1, 255))


class RuleIn(Schema):
    min_fen = Fen(validate=Range(10))
    max_fen = Fen(validate=Range(10))
    daily_max_fen = Fen(validate=Range(0))
    daily_count = Int(validate=Range(0))
    fee_bps = Bps()
    fee_fixed_fen = Fen(validate=Range(0))
    tax_threshold_fen = Fen(allow_none=True, validate=Range(0))
    tax_bps = Bps()
    real_name_from_fen = Fen(validate=Range(0, 200_000))
    auto_approve_below_fen = Fen(validate=Range(0))


class PauseIn(Schema):
    reason = Text(required=True, validate=Length(1, 255))


class ResumeIn(Schema):
    reason = String(load_default="", validate=Length(max=255))


class LimitsIn(Schema):
    daily_total_limit_fen = Fen(allow_none=True, validate=Range(0))
    failure_rate_limit_bps = Bps(allow_none=True)
    failure_window_minutes = Int(validate=Range(1, 24 * 60))
    failure_min_count = Int(validate=Range(1))


def _view(w: Withdrawal) -> dict:
    return service.admin_view(w, mch_id=runtime().settings.wechatpay_mch_id)


@bp.get("/api/admin/withdrawals")
@operator_required
@bp.input(ListQuery, location="query", arg_name="query")
@bp.doc(summary="Withdrawals, newest first (filter by state, e.g. REVIEWING)", security=OPERATOR_AUTH,
        responses=ok("the withdrawals", list_of(AdminWithdrawalOut, "withdrawals")))
def list_withdrawals(query):
    rows = service.list_withdrawals(db(), query.get("state"), query["limit"], query.get("before_id"))
    return {"withdrawals": [_view(w) for w in rows]}


@bp.get("/api/admin/withdrawals/<int:withdrawal_id>")
@operator_required
@bp.doc(summary="A withdrawal with its history", security=OPERATOR_AUTH,
        responses=ok("the withdrawal and its state history", WithdrawalDetailOut))
def get_withdrawal(withdrawal_id: int):
    w = db().get(Withdrawal, withdrawal_id)
    if w is None:
        raise NotFound("No such withdrawal.", code="withdrawal_not_found")
    return _view(w) | {"history": service.history(db(), w.id)}


@bp.post("/api/admin/withdrawals/<int:withdrawal_id>/approve")
@operator_required
@bp.doc(summary="Approve: the payout is queued in the same transaction", security=OPERATOR_AUTH,
        responses=ok("the approved withdrawal", AdminWithdrawalOut))
def approve(withdrawal_id: int):
    w = service.approve_withdrawal(db(), withdrawal_id, actor=operator_actor())
    out = _view(w)
    db().commit()
    return out


@bp.post("/api/admin/withdrawals/<int:withdrawal_id>/reject")
@operator_required
@bp.input(RejectIn, arg_name="body")
@bp.doc(summary="Reject with a reason the partner sees; the money returns to available", security=OPERATOR_AUTH,
        responses=ok("the rejected withdrawal", AdminWithdrawalOut))
def reject(withdrawal_id: int, body):
    w = service.reject_withdrawal(db(), withdrawal_id, reason=body["reason"], actor=operator_actor())
    out = _view(w)
    db().commit()
    return out


@bp.get("/api/admin/withdrawal-rules")
@operator_required
@bp.doc(summary="Withdrawal rules per grade ('*' is the default)", security=OPERATOR_AUTH,
        responses=ok("every saved rule (and the built-in default)", list_of(SavedRuleOut, "rules")))
def get_rules():
    return {"rules": service.list_rules(db())}


@bp.put("/api/admin/withdrawal-rules/<grade_code>")
@operator_required
@bp.input(RuleIn, arg_name="body")
@bp.doc(summary="Set a grade's withdrawal rule (fields left out keep their value)", security=OPERATOR_AUTH,
        responses=ok("the grade's rule as saved", RuleOut))
def put_rule(grade_code: str, body):
    out = service.set_rule(db(), grade_code, body, actor=operator_actor())
    db().commit()
    return out


@bp.get("/api/admin/payouts")
@operator_required
@bp.doc(summary="Whether payouts run, and the circuit breaker's limits", security=OPERATOR_AUTH,
        responses=ok("the payout switch and limits", PayoutsOut))
def payout_status():
    return breaker.status(db())


@bp.post("/api/admin/payouts/pause")
@operator_required
@bp.input(PauseIn, arg_name="body")
@bp.doc(summary="Pause payouts (audited); bills already at WeChat are still followed", security=OPERATOR_AUTH,
        responses=ok("the payout switch, paused", PayoutsOut))
def pause(body):
    out = breaker.pause(db(), reason=body["reason"], actor=operator_actor())
    db().commit()
    return out


@bp.post("/api/admin/payouts/resume")
@operator_required
@bp.input(ResumeIn, arg_name="body")
@bp.doc(summary="Resume payouts (audited); approved withdrawals are queued again", security=OPERATOR_AUTH,
        responses=ok("the payout switch, running", PayoutsOut))
def resume(body):
    out = breaker.resume(db(), actor=operator_actor(), reason=body["reason"])
    db().commit()
    return out


@bp.patch("/api/admin/payouts/limits")
@operator_required
@bp.input(LimitsIn, arg_name="body")
@bp.doc(summary="Circuit-breaker limits: daily total and failure rate", security=OPERATOR_AUTH,
        responses=ok("the payout switch and the new limits", PayoutsOut))
def limits(body):
    out = breaker.set_limits(db(), body, actor=operator_actor())
    db().commit()
    return out
