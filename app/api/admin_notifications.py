"""Operators: the moments' settings, and every message and attempt per member."""
from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Dict, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from app.api.fields import Int
from app.api.auth import OPERATOR_AUTH, operator_actor, operator_required
from app.api.responses import list_of, ok
from app.api.web import db
from app.audit.service import record
from app.notifications.moments import CHANNELS, MOMENTS
from app.notifications.service import all_moment_configs, messages_of, save_moment_config

bp = APIBlueprint("admin_notifications", __name__, tag="notifications (admin)")


class ChannelSettings(Schema):
    template_id = String(validate=Length(max=64), metadata={"description": "empty: this channel is not used"})
    fields = Dict(keys=String(validate=Length(1, 32)), values=String(validate=Length(1, 32)), metadata={
        "description": "WeChat template key (thing1, amount2, ...; its type is the key without digits) -> one of "
                       "the moment's values"})


class MomentIn(Schema):
    moment = String(required=True, validate=OneOf(list(MOMENTS)))
    enabled = Boolean()
    channels = List(String(validate=OneOf(list(CHANNELS))), validate=Length(max=len(CHANNELS)),
                    metadata={"description": "the order channels are tried in"})
    page = String(validate=Length(max=256), metadata={"description": "the mini-program page a message opens"})
    subscribe = Nested(ChannelSettings)
    template = Nested(ChannelSettings)
    digest_seconds = Int(validate=Range(0, 86400), metadata={
        "description": "merge this moment's messages to a member within this many seconds into one (0: never); "
                       "only moments with digest true"})


class MomentsIn(Schema):
    moments = List(Nested(MomentIn), required=True, validate=Length(1, len(MOMENTS)))


class MomentOut(Schema):
    moment = String()
    event = String(metadata={"description": "the domain event it follows"})
    urgent = Boolean(metadata={"description": "sent during quiet hours too"})
    values = List(String(), metadata={"description": "the values a field mapping may use"})
    enabled = Boolean()
    channels = List(String())
    page = String()
    subscribe = Nested(ChannelSettings)
    template = Nested(ChannelSettings)
    digest = Boolean(metadata={"description": "may be merged into digests"})
    digest_seconds = Integer()


class AttemptOut(Schema):
    at = String()
    channel = String()
    outcome = String(metadata={"description": "sent | retry | failed | skipped | delivered | undelivered"})
    errcode = Integer(allow_none=True, metadata={"description": "WeChat's errcode"})
    errmsg = String()


class MessageOut(Schema):
    id = Integer()
    moment = String()
    event_id = Integer()
    status = String(metadata={"description": "pending | sent | failed | skipped"})
    reason = String(metadata={"description": "why skipped: muted, disabled, no_channel"})
    channel = String()
    template_id = String()
    msgid = String(allow_none=True)
    errcode = Integer(allow_none=True)
    errmsg = String()
    delivery = String(metadata={"description": "TEMPLATESENDJOBFINISH status of a template message"})
    values = Dict()
    not_before = String()
    created_at = String()
    sent_at = String(allow_none=True)
    attempts = List(Nested(AttemptOut))


class LimitIn(Schema):
    limit = Integer(load_default=100, validate=Range(1, 500))


@bp.get("/api/admin/notifications/moments")
@operator_required
@bp.doc(summary="Every moment's notification settings", security=OPERATOR_AUTH,
        responses=ok("the moments", list_of(MomentOut)))
def admin_moments():
    return {"items": all_moment_configs(db())}


@bp.put("/api/admin/notifications/moments")
@operator_required
@bp.input(MomentsIn, arg_name="body")
@bp.doc(summary="Change moments' settings (only the keys given change)", security=OPERATOR_AUTH,
        responses=ok("every moment after the change", list_of(MomentOut)),
        description="422 `channels_invalid`, `moment_value_unknown`, `digest_invalid`.")
def admin_save_moments(body):
    for item in body["moments"]:
        changes = dict(item)
        moment = changes.pop("moment")
        saved = save_moment_config(db(), moment, changes)
        record(db(), operator_actor(), "notifications.moment_saved", "notification_moment", moment, settings=saved)
    db().commit()
    return {"items": all_moment_configs(db())}


@bp.get("/api/admin/members/<int:member_id>/notifications")
@operator_required
@bp.input(LimitIn, location="query", arg_name="page")
@bp.doc(summary="A member's messages, newest first, with every attempt", security=OPERATOR_AUTH,
        responses=ok("the member's messages", list_of(MessageOut)), description="404 `member_not_found`.")
def admin_member_notifications(member_id: int, page):
    return {"items": messages_of(db(), member_id, page["limit"])}
