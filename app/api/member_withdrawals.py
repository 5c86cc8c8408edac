"""Partners withdraw their available commission to their WeChat balance and follow each withdrawal."""
from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Dict, Integer, Nested, String
from apiflask.validators import Length, Range
from flask import request

from app.api.auth import MEMBER_AUTH, current_member_id, member_required
from app.api.fields import Fen
from app.api.responses import list_of, ok
from app.api.web import db, runtime
from app.errors import Conflict
from app.grades.service import grade_of
from app.ledger.service import member_balances
from app.withdrawals import service

bp = APIBlueprint("member_withdrawals", __name__, tag="withdrawals")


class WithdrawalIn(Schema):
    amount_fen = Fen(required=True, validate=Range(min=1))
    idempotency_key = String(validate=Length(1, 64), metadata={
        "description": "one per tap (or send the Idempotency-Key header): a double tap creates one withdrawal"})


class QuoteQuery(Schema):
    amount_fen = Integer(required=True, validate=Range(min=1), metadata={"description": "integer fen"})


class QuoteOut(Schema):
    amount_fen = Integer()
    fee_fen = Integer()
    tax_fen = Integer()
    net_fen = Integer(metadata={"description": "what arrives in the member's WeChat balance"})
    real_name_required = Boolean(metadata={"description": "WeChat needs the payee's real name for this transfer"})
    real_name_on_file = Boolean()
    real_name_from_fen = Integer(metadata={"description": "net amounts from this one need a real name"})
    available_fen = Integer()
    enough_balance = Boolean()


class ConfirmOut(Schema):
    mchId = String(allow_none=True)
    appId = String()
    package = String()


class WithdrawalOut(Schema):
    id = Integer()
    state = String(metadata={"description": "REVIEWING, APPROVED, SUBMITTING, WAIT_USER_CONFIRM, TRANSFERING, "
                                            "SUCCESS, FAIL, CANCELING, CANCELLED, REJECTED"})
    final = Boolean()
    reason = String(allow_none=True)
    amount_fen = Integer()
    fee_fen = Integer()
    tax_fen = Integer()
    net_fen = Integer(metadata={"description": "what reaches the member's WeChat balance"})
    created_at = String()
    finished_at = String(allow_none=True)
    confirm = Nested(ConfirmOut, metadata={"description": "only in WAIT_USER_CONFIRM: what "
                                                          "wx.requestMerchantTransfer needs"})


class RuleOut(Schema):
    grade_code = String()
    min_fen = Integer()
    max_fen = Integer()
    daily_max_fen = Integer()
    daily_count = Integer()
    fee_bps = Integer()
    fee_fixed_fen = Integer()
    tax_threshold_fen = Integer(allow_none=True)
    tax_bps = Integer()
    real_name_from_fen = Integer()
    auto_approve_below_fen = Integer()


class MyRuleOut(Schema):
    rule = Nested(RuleOut)
    balances = Dict(keys=String(), values=Integer(), metadata={"description": "pending, available, withdrawing "
                                                                               "(fen)"})


class ListQuery(Schema):
    limit = Integer(load_default=50, validate=Range(1, 200))
    before_id = Integer(load_default=None, allow_none=True)


def _view(w) -> dict:
    return service.view(w, mch_id=runtime().settings.wechatpay_mch_id)


@bp.post("/api/mp/withdrawals")
@member_required
@bp.input(WithdrawalIn, arg_name="body")
@bp.doc(summary="Withdraw available commission to my WeChat balance (idempotent per key)", security=MEMBER_AUTH,
        responses=ok("the new withdrawal", WithdrawalOut, 201)
        | ok("the withdrawal this idempotency key made before", WithdrawalOut))
def create_withdrawal(body):
    key = request.headers.get("Idempotency-Key") or body.get("idempotency_key")
    w, created = service.request_withdrawal(db(), current_member_id(), body["amount_fen"], key or "",
                                            appid=runtime().settings.wechat_miniapp_id)
    out = _view(w)
    db().commit()
    return out, 201 if created else 200


@bp.get("/api/mp/withdrawals")
@member_required
@bp.input(ListQuery, location="query", arg_name="query")
@bp.doc(summary="My withdrawals, newest first, with state and reason", security=MEMBER_AUTH,
        responses=ok("my withdrawals", list_of(WithdrawalOut, "withdrawals")))
def my_withdrawals(query):
    rows = service.member_withdrawals(db(), current_member_id(), query["limit"], query.get("before_id"))
    return {"withdrawals": [_view(w) for w in rows]}


@bp.get("/api/mp/withdrawals/rules")
@member_required
@bp.doc(summary="My withdrawal rule and balances", security=MEMBER_AUTH,
        responses=ok("the rule of my grade and my balances", MyRuleOut))
def my_rule():
    member_id = current_member_id()
    return {"rule": service.rule_for_grade(db(), grade_of(db(), member_id)).to_dict(),
            "balances": member_balances(db(), member_id)}


@bp.get("/api/mp/withdrawals/quote")
@member_required
@bp.input(QuoteQuery, location="query", arg_name="query")
@bp.doc(summary="What withdrawing this amount would pay, and whether my real name will be needed", security=MEMBER_AUTH,
        responses=ok("fee, tax and net for this amount, and whether a real name is needed", QuoteOut),
        description="Fee, tax and net as the request would compute them. `real_name_required` with "
                    "`real_name_on_file` false: ask for the real name (PUT /api/mp/me/real-name) before the "
                    "request, which would otherwise answer 422 `real_name_required`. Amounts the rule refuses "
                    "answer 422 with the request's codes (`amount_below_minimum`, `daily_count_exceeded`, ...).")
def quote_withdrawal(query):
    return service.quote_withdrawal(db(), current_member_id(), query["amount_fen"])


@bp.get("/api/mp/withdrawals/<int:withdrawal_id>")
@member_required
@bp.doc(summary="One of my withdrawals; `confirm` carries what wx.requestMerchantTransfer needs",
        security=MEMBER_AUTH, responses=ok("the withdrawal", WithdrawalOut))
def my_withdrawal(withdrawal_id: int):
    return _view(service.member_withdrawal(db(), current_member_id(), withdrawal_id))


@bp.post("/api/mp/withdrawals/<int:withdrawal_id>/cancel")
@member_required
@bp.doc(summary="Take back a withdrawal not yet sent to WeChat, or one awaiting my confirmation in WeChat",
        description="REVIEWING/APPROVED: `CANCELLED` at once, the money is available again. WAIT_USER_CONFIRM: "
                    "WeChat is asked to cancel the bill; the answer is `CANCELING` and the money stays in "
                    "withdrawing until WeChat reports the bill CANCELLED (then the state is `CANCELLED`). "
                    "409 `already_confirmed` (with `details.state`) when the transfer was confirmed in WeChat "
                    "first: it is paid normally. 409 `withdrawal_state_conflict` in any other state; 502 "
                    "`wechat_pay_unavailable` when WeChat did not answer (try again).",
        security=MEMBER_AUTH, responses=ok("the withdrawal (CANCELLED or CANCELING)", WithdrawalOut)
        | {409: "not cancellable", 502: "WeChat Pay did not answer"})
def cancel_my_withdrawal(withdrawal_id: int):
    w, cancelled = service.cancel_withdrawal(db(), current_member_id(), withdrawal_id, rt=runtime())
    out = _view(w)
    db().commit()  # also when WeChat refused the cancel: the bill's real state was learnt and applied
    if not cancelled:
        code = "already_confirmed" if w.state in ("TRANSFERING", "SUCCESS") else "withdrawal_state_conflict"
        raise Conflict("This transfer was confirmed in WeChat before the cancel; it is being paid."
                       if code == "already_confirmed" else "This withdrawal cannot be cancelled now.",
                       code=code, details={"state": w.state, "withdrawal": out})
    return out
