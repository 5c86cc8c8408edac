"""The mini-program's side of notifications: reporting wx.requestSubscribeMessage results, muting kinds."""
from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Dict, List, String
from apiflask.validators import Length, OneOf

from app.api.auth import MEMBER_AUTH, current_member_id, member_required
from app.api.responses import ok
from app.api.web import db
from app.notifications.moments import MOMENTS
from app.notifications.service import grants_left, mutes_of, record_subscription_results, set_mutes

bp = APIBlueprint("member_notifications", __name__, tag="notifications")
RESULTS = ["accept", "reject", "ban", "filter"]


class SubscriptionsIn(Schema):
    results = Dict(keys=String(validate=Length(1, 64)), values=String(validate=OneOf(RESULTS)), required=True,
                   validate=Length(1, 20), metadata={
                       "description": "the success result of wx.requestSubscribeMessage without errMsg: "
                                      "{template_id: accept | reject | ban | filter}"})


class GrantsOut(Schema):
    grants = Dict(keys=String(), values=String(), metadata={
        "description": "one-time grants left per template id (integers)"})


class MutesIn(Schema):
    moments = List(String(validate=OneOf(list(MOMENTS))), required=True, validate=Length(max=len(MOMENTS)),
                   metadata={"description": f"the kinds muted, all others on: {', '.join(MOMENTS)}"})


class MutesOut(Schema):
    muted = List(String())
    moments = List(String(), metadata={"description": "every kind of message"})


@bp.post("/api/mp/subscriptions")
@member_required
@bp.input(SubscriptionsIn, arg_name="body")
@bp.doc(summary="Report what I answered to wx.requestSubscribeMessage", security=MEMBER_AUTH,
        responses=ok("the one-time grants now left for the templates reported", GrantsOut),
        description="Each accept is one message the server may send; reject and ban are recorded (a ban voids "
                    "the grants left for that template); filter is ignored. 422 `subscription_result_invalid`.")
def report_subscriptions(body):
    out = record_subscription_results(db(), current_member_id(), body["results"])
    db().commit()
    return {"grants": out}


@bp.get("/api/mp/subscriptions")
@member_required
@bp.doc(summary="My one-time grants left per template", security=MEMBER_AUTH,
        responses=ok("grants left per template id", GrantsOut))
def my_grants():
    return {"grants": grants_left(db(), current_member_id())}


@bp.get("/api/mp/notifications/mutes")
@member_required
@bp.doc(summary="The kinds of message I muted", security=MEMBER_AUTH, responses=ok("my mutes", MutesOut))
def my_mutes():
    return {"muted": mutes_of(db(), current_member_id()), "moments": list(MOMENTS)}


@bp.put("/api/mp/notifications/mutes")
@member_required
@bp.input(MutesIn, arg_name="body")
@bp.doc(summary="Mute kinds of message (the list replaces the previous one)", security=MEMBER_AUTH,
        responses=ok("my mutes", MutesOut), description="422 `moment_unknown`.")
def set_my_mutes(body):
    out = set_mutes(db(), current_member_id(), body["moments"])
    db().commit()
    return {"muted": out, "moments": list(MOMENTS)}
