"""Operators: binding rules, partners, stores and staff, campaign codes and their statistics."""
from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Dict, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from sqlalchemy import select

from app.api.auth import OPERATOR_AUTH, operator_actor, operator_required
from app.api.member_referrals import ClerkFiguresOut
from app.api.responses import list_of, ok
from app.api.fields import Fen, Int, Text
from app.api.web import db
from app.audit.service import record
from app.referrals import codes, partners, stores, views
from app.referrals.models import PartnerApplication
from app.referrals.saved_rules import get_rules, update_rules
from app.reports import stores as stores_report
from app.teams import service as teams
from app.db import utcnow

bp = APIBlueprint("admin_referrals", __name__, tag="admin")


class NewsArticleIn(Schema):
    title = Text(required=True, validate=Length(1, 64))
    description = String(load_default="", validate=Length(max=120))
    pic_url = String(load_default="", validate=Length(max=512))
    url = Text(required=True, validate=Length(1, 512))


class RulesIn(Schema):
    who = String(validate=OneOf(("any_unbound", "new_only")))
    when = String(validate=OneOf(("first_touch", "first_purchase")))
    duration = String(validate=OneOf(("permanent", "protection", "last_touch")))
    protection_days = Int(validate=Range(0, 3650))
    new_member_hours = Int(validate=Range(0, 24 * 365))
    partner_policy = String(validate=OneOf(("everyone", "application", "spend", "designated")))
    partner_spend_threshold_fen = Fen(validate=Range(0))
    welcome_text = String(validate=Length(max=600))
    welcome_news = List(Nested(NewsArticleIn), validate=Length(max=8),
                        metadata={"description": "A news (图文) welcome instead of the text; [] for the text again"})
    permanent_qr_budget = Int(validate=Range(0, 100_000))
    temp_qr_days = Int(validate=Range(1, 30))
    temp_qr_renew_days = Int(validate=Range(0, 29))


class CampaignIn(Schema):
    label = Text(required=True, validate=Length(1, 128))
    referrer_id = Int(load_default=None, allow_none=True)
    store_id = Int(load_default=None, allow_none=True)
    team_id = Int(load_default=None, allow_none=True)


class StoreIn(Schema):
    name = Text(required=True, validate=Length(1, 128))


class StaffIn(Schema):
    member_id = Int(required=True)
    position = String(required=True, validate=OneOf(("clerk", "manager")))


class PartnerStatusIn(Schema):
    status = String(required=True, validate=OneOf(("active", "frozen", "revoked")))


class DecisionIn(Schema):
    approve = Boolean(required=True)
    reason = String(load_default="", validate=Length(max=500))


class DaysQuery(Schema):
    days = Integer(load_default=30, validate=Range(1, 366))


class RulesOut(RulesIn):
    """The saved rules: every field of the change, always present."""


class CodeOut(Schema):
    id = Integer()
    scene = String()
    kind = String()
    label = String(allow_none=True)
    status = String()
    referrer_id = Integer(allow_none=True)
    store_id = Integer(allow_none=True)
    team_id = Integer(allow_none=True)
    oa_permanent = Boolean()
    created_at = String()


class CodeStatsOut(Schema):
    code_id = Integer()
    days = Integer()
    totals = Dict(metadata={"description": "scans, follows, binds (counts) and conversion (binds / scans)"})
    by_day = List(Dict(), metadata={"description": "one object per day: date and the same counts"})


class StoreOut(Schema):
    id = Integer()
    name = String()


class StaffOut(Schema):
    member_id = Integer()
    store_id = Integer()
    position = String()
    started_at = String()


class AdminStoreFiguresOut(Schema):
    store_id = Integer()
    clerks = List(Nested(ClerkFiguresOut))


class PartnerOut(Schema):
    member_id = Integer()
    status = String(metadata={"description": "active, frozen or revoked"})


class ApplicationOut(Schema):
    id = Integer()
    member_id = Integer()
    note = String()
    created_at = String()


class DecisionOut(Schema):
    id = Integer()
    status = String(metadata={"description": "approved or rejected"})
    reason = String(allow_none=True)


def _code(code) -> dict:
    return {"id": code.id, "scene": code.scene, "kind": code.kind, "label": code.label, "status": code.status,
            "referrer_id": code.referrer_id, "store_id": code.store_id, "team_id": code.team_id,
            "oa_permanent": code.oa_permanent, "created_at": code.created_at.isoformat()}


@bp.get("/api/admin/referral-rules")
@operator_required
@bp.doc(summary="Current binding and partner rules", security=OPERATOR_AUTH, responses=ok("the rules", RulesOut))
def get_referral_rules():
    return get_rules(db()).to_dict()


@bp.patch("/api/admin/referral-rules")
@operator_required
@bp.input(RulesIn, arg_name="body")
@bp.doc(summary="Change binding and partner rules", security=OPERATOR_AUTH,
        responses=ok("the rules as saved", RulesOut))
def patch_referral_rules(body):
    rules = update_rules(db(), body)
    record(db(), operator_actor(), "referral_rules.updated", "settings", 1, changes=body)
    db().commit()
    return rules.to_dict()


@bp.post("/api/admin/codes")
@operator_required
@bp.input(CampaignIn, arg_name="body")
@bp.doc(summary="Create a campaign code attributed to a clerk, a store or a team", security=OPERATOR_AUTH,
        responses=ok("the new code", CodeOut, 201))
def create_campaign(body):
    fields = {k: v for k, v in body.items() if k != "team_id"}
    code = (teams.create_team_code(db(), body["team_id"], **fields) if body.get("team_id") is not None
            else codes.create_campaign_code(db(), **fields))
    record(db(), operator_actor(), "code.created", "code", code.id, **body)
    out = _code(code)
    db().commit()
    return out, 201


@bp.post("/api/admin/codes/<int:code_id>/revoke")
@operator_required
@bp.doc(summary="Revoke a code: it stops binding at once", security=OPERATOR_AUTH,
        responses=ok("the revoked code", CodeOut))
def revoke(code_id: int):
    code = codes.revoke_code(db(), code_id)
    record(db(), operator_actor(), "code.revoked", "code", code.id)
    out = _code(code)
    db().commit()
    return out


@bp.get("/api/admin/codes/<int:code_id>/stats")
@operator_required
@bp.input(DaysQuery, location="query", arg_name="query")
@bp.doc(summary="Scans, follows, binds and conversion by day", security=OPERATOR_AUTH,
        responses=ok("the code's figures over `days`", CodeStatsOut))
def code_stats(code_id: int, query):
    codes.get_code(db(), code_id)
    return views.code_stats(db(), code_id, query["days"])


@bp.post("/api/admin/stores")
@operator_required
@bp.input(StoreIn, arg_name="body")
@bp.doc(summary="Create a store", security=OPERATOR_AUTH, responses=ok("the new store", StoreOut, 201))
def create_store(body):
    store = stores.create_store(db(), body["name"])
    record(db(), operator_actor(), "store.created", "store", store.id, name=store.name)
    db().commit()
    return {"id": store.id, "name": store.name}, 201


@bp.post("/api/admin/stores/<int:store_id>/staff")
@operator_required
@bp.input(StaffIn, arg_name="body")
@bp.doc(summary="Assign a clerk or manager to a store (moving them from another keeps history)",
        security=OPERATOR_AUTH, responses=ok("the assignment", StaffOut))
def assign_staff(store_id: int, body):
    a = stores.assign_staff(db(), body["member_id"], store_id, body["position"])
    record(db(), operator_actor(), "staff.assigned", "member", a.member_id, store_id=store_id,
           position=body["position"])
    db().commit()
    return {"member_id": a.member_id, "store_id": a.store_id, "position": a.position,
            "started_at": a.started_at.isoformat()}


@bp.get("/api/admin/stores/<int:store_id>/figures")
@operator_required
@bp.input(DaysQuery, location="query", arg_name="query")
@bp.doc(summary="Per-clerk new customers and first orders of a store", security=OPERATOR_AUTH,
        responses=ok("each clerk's figures over `days`", AdminStoreFiguresOut))
def store_figures(store_id: int, query):
    from datetime import timedelta

    stores.get_store(db(), store_id)
    return {"store_id": store_id,
            "clerks": stores_report.store_figures(db(), store_id, utcnow() - timedelta(days=query["days"]))}


@bp.post("/api/admin/partners/<int:member_id>")
@operator_required
@bp.doc(summary="Designate a member as partner", security=OPERATOR_AUTH,
        responses=ok("the member's partnership", PartnerOut))
def designate_partner(member_id: int):
    p = partners.make_partner(db(), member_id, "designated")
    record(db(), operator_actor(), "partner.designated", "member", member_id)
    db().commit()
    return {"member_id": p.member_id, "status": p.status}


@bp.post("/api/admin/partners/<int:member_id>/status")
@operator_required
@bp.input(PartnerStatusIn, arg_name="body")
@bp.doc(summary="Freeze, unfreeze or revoke a partner", security=OPERATOR_AUTH,
        responses=ok("the partner's new status", PartnerOut))
def partner_status(member_id: int, body):
    p = partners.set_partner_status(db(), member_id, body["status"])
    record(db(), operator_actor(), f"partner.{body['status']}", "member", member_id)
    db().commit()
    return {"member_id": p.member_id, "status": p.status}


@bp.get("/api/admin/partner-applications")
@operator_required
@bp.doc(summary="Pending partner applications", security=OPERATOR_AUTH,
        responses=ok("the pending applications, oldest first", list_of(ApplicationOut)))
def list_applications():
    rows = db().scalars(select(PartnerApplication).where(PartnerApplication.status == "pending")
                        .order_by(PartnerApplication.id)).all()
    return {"items": [{"id": a.id, "member_id": a.member_id, "note": a.note, "created_at": a.created_at.isoformat()}
                      for a in rows]}


@bp.post("/api/admin/partner-applications/<int:application_id>")
@operator_required
@bp.input(DecisionIn, arg_name="body")
@bp.doc(summary="Approve or reject a partner application", security=OPERATOR_AUTH,
        responses=ok("the decision", DecisionOut))
def decide_application(application_id: int, body):
    a = partners.review_application(db(), application_id, body["approve"], body["reason"])
    record(db(), operator_actor(), "partner_application." + a.status, "member", a.member_id, reason=a.reason)
    db().commit()
    return {"id": a.id, "status": a.status, "reason": a.reason}
