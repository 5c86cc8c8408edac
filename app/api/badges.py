"""Badges: members see what they earned and how far they are from the rest; operators define their own
thresholds over the same figures and switch badges on or off (audited)."""
from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp

from app.api.auth import (MEMBER_AUTH, OPERATOR_AUTH, current_member_id, member_required, operator_actor,
                          operator_required)
from app.api.fields import Text
from app.api.responses import ok
from app.api.web import db
from app.audit.service import record
from app.boards import badges

bp = APIBlueprint("badges", __name__, tag="badges")


class BadgeOut(Schema):
    code = String()
    name = String()
    figure = String(metadata={"description": ", ".join(f"{k}: {v}" for k, v in badges.FIGURES.items())})
    threshold = Integer()
    active = Boolean(metadata={"description": "false: no longer awarded (earned ones stay)"})
    builtin = Boolean()


class MyBadgeOut(Schema):
    code = String()
    name = String()
    figure = String()
    threshold = Integer()
    value = Integer(metadata={"description": "my figure now"})
    earned_at = String(allow_none=True, metadata={"description": "null: not earned yet"})


class MyBadgesOut(Schema):
    items = List(Nested(MyBadgeOut))


class BadgeListOut(Schema):
    items = List(Nested(BadgeOut))


class BadgeIn(Schema):
    code = String(required=True, validate=Regexp(r"^[a-z][a-z0-9_]{1,31}$"),
                  metadata={"description": "lower-case letters, digits and _"})
    name = Text(required=True, validate=Length(1, 32))
    figure = String(required=True, validate=OneOf(tuple(badges.FIGURES)))
    threshold = Integer(required=True, strict=True, validate=Range(1, badges.MAX_THRESHOLD))


class BadgePatch(Schema):
    name = Text(validate=Length(1, 32))
    threshold = Integer(strict=True, validate=Range(1, badges.MAX_THRESHOLD))
    active = Boolean()


@bp.get("/api/mp/badges")
@member_required
@bp.doc(summary="Every active badge (and any I earned) with my figure and when I earned it", security=MEMBER_AUTH,
        responses=ok("badges", MyBadgesOut))
def my_badges():
    return {"items": badges.progress(db(), current_member_id())}


@bp.get("/api/admin/badges")
@operator_required
@bp.doc(summary="Badge definitions", security=OPERATOR_AUTH, responses=ok("badges", BadgeListOut))
def list_badges():
    return {"items": badges.definitions(db())}


@bp.post("/api/admin/badges")
@operator_required
@bp.input(BadgeIn, arg_name="body")
@bp.doc(summary="Define a badge: a threshold over one of the figures", security=OPERATOR_AUTH,
        responses=ok("the badge", BadgeOut, 201))
def create_badge(body):
    badge = badges.define(db(), **body)
    record(db(), operator_actor(), "badge.defined", "badge", badge.code, name=badge.name, figure=badge.figure,
           threshold=badge.threshold)
    out = badges.definition_out(badge)
    db().commit()
    return out, 201


@bp.patch("/api/admin/badges/<code>")
@operator_required
@bp.input(BadgePatch, arg_name="body")
@bp.doc(summary="Rename a badge, move its threshold or switch it on or off", security=OPERATOR_AUTH,
        responses=ok("the badge", BadgeOut))
def change_badge(code: str, body):
    badge, changes = badges.change(db(), code, **body)
    for field, (before, after) in changes.items():
        record(db(), operator_actor(), f"badge.{field}", "badge", badge.code, before=before, after=after)
    out = badges.definition_out(badge)
    db().commit()
    return out
