"""Operator sign-in, member lookup and role management."""
from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import String
from apiflask.validators import Length, OneOf
from flask import request

from app.api.auth import OPERATOR_AUTH, operator_actor, operator_required
from app.api.member_identity import MemberOut
from app.api.web import db, runtime
from app.audit.service import record
from app.identity.operators import sign_in
from app.members.models import ROLES
from app.members.service import get_member, grant_role, identities_of, profile, revoke_role

bp = APIBlueprint("admin_identity", __name__, tag="admin")


class LoginIn(Schema):
    username = String(required=True, validate=Length(1, 64))
    password = String(required=True, validate=Length(1, 256))


class RoleIn(Schema):
    role = String(required=True, validate=OneOf([r for r in ROLES if r != "consumer"]))


@bp.post("/api/admin/login")
@bp.input(LoginIn, arg_name="body")
@bp.doc(summary="Operator sign-in")
def admin_login(body):
    rt = runtime()
    return sign_in(db(), rt.settings.secret_key, body["username"], body["password"], rt.redis,
                   request.remote_addr or "")


@bp.get("/api/admin/members/<int:member_id>")
@operator_required
@bp.doc(summary="Any member's profile, with which channels they are known by", security=OPERATOR_AUTH)
def admin_member(member_id: int):
    member = get_member(db(), member_id)
    data = profile(db(), member)
    data["channels"] = sorted(identities_of(db(), member.id))  # kinds only: openids are not for display
    data["status"] = member.status
    return data


@bp.post("/api/admin/members/<int:member_id>/roles")
@operator_required
@bp.input(RoleIn, arg_name="body")
@bp.output(MemberOut)
@bp.doc(summary="Grant a role", security=OPERATOR_AUTH)
def admin_grant_role(member_id: int, body):
    member = get_member(db(), member_id)
    if grant_role(db(), member.id, body["role"]):
        record(db(), operator_actor(), "member.role_granted", "member", member.id, role=body["role"])
    data = profile(db(), member)
    db().commit()
    return data


@bp.delete("/api/admin/members/<int:member_id>/roles/<role>")
@operator_required
@bp.output(MemberOut)
@bp.doc(summary="Revoke a role", security=OPERATOR_AUTH)
def admin_revoke_role(member_id: int, role: str):
    member = get_member(db(), member_id)
    if revoke_role(db(), member.id, role):
        record(db(), operator_actor(), "member.role_revoked", "member", member.id, role=role)
    data = profile(db(), member)
    db().commit()
    return data
