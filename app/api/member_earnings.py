"""A partner's earnings: balances and each commission with its (masked) order."""
from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Dict, Integer, List, Nested, String
from apiflask.validators import Range

from app.api.auth import MEMBER_AUTH, current_member_id, member_required
from app.api.responses import ok
from app.api.web import db
from app.reports.earnings import commissions_of, earnings

bp = APIBlueprint("member_earnings", __name__, tag="earnings")


class PageIn(Schema):
    limit = Integer(load_default=20, validate=Range(1, 200))
    before_id = Integer(load_default=None, allow_none=True)


class EarningsOut(Schema):
    pending_fen = Integer()
    available_fen = Integer(metadata={"description": "may be negative after a refund of withdrawn money"})
    withdrawing_fen = Integer()
    held_fen = Integer(metadata={"description": "part of pending held while a review is open"})
    lifetime_fen = Integer()


class CommissionOut(Schema):
    id = Integer()
    level = Integer(metadata={"description": "1: my direct referral bought; 2: theirs did"})
    state = String()
    amount_fen = Integer()
    reversed_fen = Integer()
    net_fen = Integer()
    order = Dict(metadata={"description": "shop_order_id, paid_fen, paid_at, buyer (masked)"})
    created_at = String()
    mature_at = String(allow_none=True)
    matured_at = String(allow_none=True)


class CommissionsOut(Schema):
    items = List(Nested(CommissionOut))
    next_before_id = Integer(allow_none=True, metadata={"description": "pass as before_id for the next page"})


@bp.get("/api/mp/earnings")
@bp.output(EarningsOut, description="my earnings in fen")
@bp.doc(summary="My pending, available and lifetime earnings (fen)", security=MEMBER_AUTH)
@member_required
def my_earnings():
    return earnings(db(), current_member_id())


@bp.get("/api/mp/commissions")
@bp.input(PageIn, location="query", arg_name="page")
@bp.doc(summary="My commissions, newest first, each with its order (buyer masked), level, state and dates",
        security=MEMBER_AUTH, responses=ok("a page of my commissions", CommissionsOut))
@member_required
def my_commissions(page):
    items = commissions_of(db(), current_member_id(), page["limit"], page["before_id"])
    return {"items": items, "next_before_id": items[-1]["id"] if items else None}
