"""A partner's earnings: balances and each commission with its (masked) order."""
from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Integer

from app.api.auth import MEMBER_AUTH, current_member_id, member_required
from app.api.web import db
from app.reports.earnings import commissions_of, earnings

bp = APIBlueprint("member_earnings", __name__, tag="earnings")


class PageIn(Schema):
    limit = Integer(load_default=20)
    before_id = Integer(load_default=None, allow_none=True)


class EarningsOut(Schema):
    pending_fen = Integer()
    available_fen = Integer(metadata={"description": "may be negative after a refund of withdrawn money"})
    withdrawing_fen = Integer()
    held_fen = Integer(metadata={"description": "part of pending held while a review is open"})
    lifetime_fen = Integer()


@bp.get("/api/mp/earnings")
@bp.output(EarningsOut)
@bp.doc(summary="My pending, available and lifetime earnings (fen)", security=MEMBER_AUTH)
@member_required
def my_earnings():
    return earnings(db(), current_member_id())


@bp.get("/api/mp/commissions")
@bp.input(PageIn, location="query", arg_name="page")
@bp.doc(summary="My commissions, newest first, each with its order (buyer masked), level, state and dates",
        security=MEMBER_AUTH)
@member_required
def my_commissions(page):
    items = commissions_of(db(), current_member_id(), page["limit"], page["before_id"])
    return {"items": items, "next_before_id": items[-1]["id"] if items else None}
