"""Operator sign-in, member lookup and role management."""
from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Integer, List, String
from apiflask.validators import Length, OneOf
from flask import request

from app.api.auth import OPERATOR_AUTH, operator_actor, operator_required
from app.api.member_identity import MemberOut
from app.api.responses import ok
from app.api.web import db, runtime
from app.audit.service import record
from app.errors import Conflict
from app.identity.operators import sign_in
from app.members.models import ROLES
from app.members.service import get_member, grant_role, identities_of, profile, revoke_role

bp = APIBlueprint("admin_identity", __name__, tag="admin")


class LoginIn(Schema):
    username = String(required=True, validate=Length(1, 64))
    password = String(required=True, validate=Length(1, 256))


class RoleIn(Schema):
    role = String(required=True, validate=OneOf([r for r in ROLES if r != "consumer"]))


class OperatorTokenOut(Schema):
    access_token = String()
    token_type = String()
    expires_in = Integer()
    operator_id = Integer()


class AdminMemberOut(MemberOut):
    channels = List(String(), metadata={"description": "how WeChat knows the member: unionid, mini_openid, "
                                                      "oa_openid (kinds only)"})
    status = String()


@bp.post("/api/admin/login")
@bp.input(LoginIn, arg_name="body")
@bp.doc(summary="Operator sign-in", responses=ok("an operator access token (8 hours)", OperatorTokenOut))
def admin_login(body):
    rt = runtime()
    return sign_in(db(), rt.settings.secret_key, body["username"], body["password"], rt.redis,
                   request.remote_addr or "")


@bp.get("/api/admin/members/<int:member_id>")
@operator_required
@bp.doc(summary="Any member's profile, with which channels they are known by", security=OPERATOR_AUTH,
        responses=ok("the member", AdminMemberOut))
def admin_member(member_id: int):
    member = get_member(db(), member_id)
    data = profile(db(), member)
    data["channels"] = sorted(identities_of(db(), member.id))  # kinds only: openids are not for display
    data["status"] = member.status
    return data


@bp.post("/api/admin/members/<int:member_id>/roles")
@operator_required
@bp.input(RoleIn, arg_name="body")
@bp.output(MemberOut, description="the member with the role")
@bp.doc(summary="Grant a role", security=OPERATOR_AUTH,
        responses={409: "`role_already_held`: the member has this role already"})
def admin_grant_role(member_id: int, body):
    member = get_member(db(), member_id)
    if not grant_role(db(), member.id, body["role"]):
        raise Conflict("The member already has this role.", code="role_already_held", details={"role": body["role"]})
    record(db(), operator_actor(), "member.role_granted", "member", member.id, role=body["role"])
    data = profile(db(), member)
    db().commit()
    return data


@bp.delete("/api/admin/members/<int:member_id>/roles/<role>")
@operator_required
@bp.output(MemberOut, description="the member without the role")
@bp.doc(summary="Revoke a role", security=OPERATOR_AUTH,
        responses={409: "`role_not_held`: the member does not have this role", 422: "`role_invalid`: no such role, "
                   "or `consumer` (everyone is one)"})
def admin_revoke_role(member_id: int, role: str):
    member = get_member(db(), member_id)
    if not revoke_role(db(), member.id, role):
        raise Conflict("The member does not have this role.", code="role_not_held", details={"role": role})
    record(db(), operator_actor(), "member.role_revoked", "member", member.id, role=role)
    data = profile(db(), member)
    db().commit()
    return data
