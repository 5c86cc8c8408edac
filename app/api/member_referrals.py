"""Partners', clerks' and store managers' referral endpoints, and the public share link."""
from __future__ import annotations

from datetime import timedelta

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Dict, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from flask import Response, redirect, request, url_for

from app.api.auth import MEMBER_AUTH, current_member_id, member_required, role_required
from app.api.responses import ok, redirects
from app.api.web import db, runtime
from app.api.wechat_clients import mini_program, official_account
from app.db import utcnow
from app.errors import Forbidden
from app.referrals import codes, partners, touches, views
from app.referrals.stores import current_assignment
from app.reports import stores as stores_report
from app.orders.service import net_spent_fen

bp = APIBlueprint("member_referrals", __name__, tag="referrals")


class SceneIn(Schema):
    scene = String(required=True, validate=Length(1, 64))


class PartnerIn(Schema):
    note = String(load_default="", validate=Length(max=500))


class ChannelQuery(Schema):
    channel = String(load_default="share_qr", validate=OneOf(("oa_qr", "mini_code", "share_qr")))


class PageQuery(Schema):
    limit = Integer(load_default=50, validate=Range(1, 200))
    before_id = Integer(load_default=None, allow_none=True)


class DaysQuery(Schema):
    days = Integer(load_default=30, validate=Range(1, 366))


class TouchOut(Schema):
    outcome = String(metadata={"description": "bound, already_bound, protected, self, code_inactive, ..."})
    bound = Boolean()


class PartnershipOut(Schema):
    status = String(metadata={"description": "active, or pending (an application awaits review)"})
    application_id = Integer(metadata={"description": "when pending"})


class MyCodeOut(Schema):
    id = Integer()
    scene = String()
    kind = String()
    status = String()
    share_url = String()
    images = Dict(keys=String(), values=String(), metadata={"description": "channel -> code.png URL"})


class ReferralOut(Schema):
    id = Integer()
    nickname = String(metadata={"description": "masked"})
    avatar_url = String(allow_none=True)
    joined_at = String(allow_none=True)
    channel = String(allow_none=True)


class ReferralsOut(Schema):
    direct_count = Integer()
    second_level_count = Integer()
    direct = List(Nested(ReferralOut))


class ClerkFiguresOut(Schema):
    clerk_id = Integer()
    nickname = String()
    new_customers = Integer()
    first_orders = Integer()


class StoreFiguresOut(Schema):
    store_id = Integer()
    clerks = List(Nested(ClerkFiguresOut))


def _code_out(code, standing: str) -> dict:
    """`status` is the code's standing (active | frozen | revoked | inactive): what a scan of it does now. Images
    are offered only while it binds."""
    base = runtime().settings.public_base_url
    images = {ch: f"{base}/api/mp/code.png?channel={ch}" for ch in ("oa_qr", "mini_code", "share_qr")}
    return {"id": code.id, "scene": code.scene, "kind": code.kind, "status": standing,
            "share_url": codes.share_url(base, code), "images": images if standing == "active" else {}}


@bp.post("/api/mp/touch")
@member_required
@bp.input(SceneIn, arg_name="body")
@bp.doc(summary="Mini-program launched with a scene (decodeURIComponent(options.scene))", security=MEMBER_AUTH,
        responses=ok("what the touch did (bound or why not)", TouchOut))
def mp_touch(body):
    result = touches.on_mini_launch(db(), current_member_id(), body["scene"], request.remote_addr,
                                   request.user_agent.string)
    db().commit()
    return {"outcome": result.outcome, "bound": result.bound}


@bp.post("/api/mp/partner")
@member_required
@bp.input(PartnerIn, arg_name="body")
@bp.doc(summary="Become a partner (or apply, by the merchant's policy)", security=MEMBER_AUTH,
        responses=ok("a partner now, or an application pending review", PartnershipOut))
def mp_become_partner(body):
    spent = _spent_fen(current_member_id())
    result = partners.request_partnership(db(), current_member_id(), body["note"], spent_fen=spent)
    db().commit()
    return result


def _spent_fen(member_id: int) -> int:
    return net_spent_fen(db(), member_id)


@bp.get("/api/mp/code")
@member_required
@bp.doc(summary="My exclusive code (partners and clerks); status says whether it binds (frozen, revoked, ...)",
        security=MEMBER_AUTH, responses=ok("my code, its standing, share link and image URLs", MyCodeOut))
def mp_my_code():
    code = codes.ensure_personal_code(db(), current_member_id())
    out = _code_out(code, codes.code_standing(db(), code))
    db().commit()
    return out


@bp.get("/api/mp/code.png")
@member_required
@bp.input(ChannelQuery, location="query", arg_name="query")
@bp.doc(summary="My exclusive code as a PNG (403 partner_frozen, code_revoked or code_inactive when it does not "
                "bind)", security=MEMBER_AUTH, responses=ok("my code as a PNG image", content_type="image/png"))
def mp_my_code_png(query):
    code = codes.active_personal_code(db(), current_member_id())
    channel = query["channel"]
    if channel == "oa_qr":
        png = codes.oa_qr_png(db(), official_account(), code)
    elif channel == "mini_code":
        png = codes.mini_code_png(db(), mini_program(), code)
    else:
        png = codes.share_qr_png(db(), runtime().settings.public_base_url, code)
    db().commit()
    return Response(png, mimetype="image/png", headers={"Cache-Control": "private, max-age=3600"})


@bp.get("/api/mp/referrals")
@role_required("partner", "clerk")
@bp.input(PageQuery, location="query", arg_name="query")
@bp.doc(summary="My direct referrals and second-level count", security=MEMBER_AUTH,
        responses=ok("my direct referrals (names masked) and counts", ReferralsOut))
def mp_direct_referrals(query):
    return views.direct_referrals_of(db(), current_member_id(), query["limit"], query["before_id"])


@bp.get("/api/mp/staff/figures")
@role_required("clerk")
@bp.input(DaysQuery, location="query", arg_name="query")
@bp.doc(summary="A clerk's own new customers and first orders", security=MEMBER_AUTH,
        responses=ok("my figures over `days`", ClerkFiguresOut))
def mp_staff_figures(query):
    return stores_report.staff_figures(db(), current_member_id(), utcnow() - timedelta(days=query["days"]))


@bp.get("/api/mp/store/figures")
@role_required("store_manager")
@bp.input(DaysQuery, location="query", arg_name="query")
@bp.doc(summary="Per-clerk figures of the manager's own store", security=MEMBER_AUTH,
        responses=ok("each clerk's figures over `days`", StoreFiguresOut))
def mp_store_figures(query):
    assignment = current_assignment(db(), current_member_id())
    if assignment is None or assignment.position != "manager":
        raise Forbidden("You are not managing a store.", code="not_a_manager")
    since = utcnow() - timedelta(days=query["days"])
    return {"store_id": assignment.store_id, "clerks": stores_report.store_figures(db(), assignment.store_id, since)}


@bp.get("/s/<scene>")
@bp.doc(summary="Share link: lands in WeChat OAuth carrying the scene", responses=redirects("to sign-in"))
def share_link(scene: str):
    if not scene.isalnum() or len(scene) > 32:
        scene = ""
    return redirect(url_for("member_identity.h5_oauth_start", scope="snsapi_userinfo", share=scene or None,
                            next="/h5/me"))
