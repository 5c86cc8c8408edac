"""Sign-in for members: mini-program login/refresh/phone, and service-account web OAuth for H5 pages."""
from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Dict, Integer, List, String
from apiflask.validators import Length, OneOf
from flask import g, redirect, request, session

from app.api.auth import MEMBER_AUTH, current_member_id, member_required
from app.api.responses import OkOut, ok, redirects
from app.api.web import db, runtime
from app.api.wechat_clients import mini_program, official_account
from app.boards.badges import badges_of
from app.identity import miniapp, oauth
from app.members.service import get_member, profile
from app.referrals.touches import on_h5_landing

bp = APIBlueprint("member_identity", __name__, tag="identity")


class CodeIn(Schema):
    code = String(required=True, validate=Length(1, 256))


class RefreshIn(Schema):
    refresh_token = String(required=True, validate=Length(1, 256))


class TokensOut(Schema):
    access_token = String()
    refresh_token = String()
    token_type = String()
    expires_in = Integer()
    member_id = Integer()


class MemberOut(Schema):
    id = Integer()
    nickname = String()
    avatar_url = String()
    phone = String(allow_none=True, metadata={"description": "masked, e.g. 138****0000"})
    roles = List(String())
    referrer_id = Integer(allow_none=True)
    created_at = String()
    badges = List(Dict(), metadata={"description": "badges earned, earliest first: {code, name, earned_at}"})


class OAuthStartIn(Schema):
    scope = String(load_default="snsapi_base", validate=OneOf(oauth.SCOPES))
    next = String(load_default="/h5/me", validate=Length(max=512))
    share = String(load_default=None, allow_none=True, validate=Length(max=64))


class OAuthCallbackIn(Schema):
    code = String(load_default=None, validate=Length(max=256))
    state = String(load_default=None, validate=Length(max=128))


@bp.post("/api/mp/login")
@bp.input(CodeIn, arg_name="body")
@bp.output(TokensOut, description="an access token (30 minutes) and a refresh token")
@bp.doc(summary="Mini-program login with a wx.login code")
def mp_login(body):
    _member, issued = miniapp.login(db(), mini_program(), runtime().settings.secret_key, body["code"])
    db().commit()
    return issued


@bp.post("/api/mp/token/refresh")
@bp.input(RefreshIn, arg_name="body")
@bp.output(TokensOut, description="a new access token and refresh token; the old refresh token is spent")
@bp.doc(summary="Rotate a refresh token into a new token pair")
def mp_refresh(body):
    try:
        issued = miniapp.refresh(db(), runtime().settings.secret_key, body["refresh_token"])
    except miniapp.RefreshReused:
        db().commit()  # keep the revocation: a replayed token means the login is compromised
        raise
    db().commit()
    return issued


@bp.post("/api/mp/logout")
@member_required
@bp.doc(summary="Revoke this login (all its refresh tokens)", security=MEMBER_AUTH,
        responses=ok("signed out: `{\"ok\": true}`", OkOut))
def mp_logout():
    miniapp.logout(db(), current_member_id(), g.get("api_session_id"))
    db().commit()
    return {"ok": True}


@bp.post("/api/mp/phone")
@member_required
@bp.input(CodeIn, arg_name="body")
@bp.output(MemberOut, description="my profile with the (masked) phone number")
@bp.doc(summary="Bind the phone number from a getPhoneNumber code", security=MEMBER_AUTH)
def mp_bind_phone(body):
    s = runtime().settings
    member = miniapp.bind_phone(db(), mini_program(), s.secret_key, current_member_id(), body["code"])
    data = profile(db(), member)
    db().commit()
    return data


@bp.get("/api/mp/me")
@member_required
@bp.output(MemberOut, description="my profile")
@bp.doc(summary="The signed-in member's profile", security=MEMBER_AUTH)
def me():
    member = get_member(db(), current_member_id())
    return {**profile(db(), member), "badges": badges_of(db(), [member.id])[member.id]}


@bp.get("/h5/oauth/start")
@bp.input(OAuthStartIn, location="query", arg_name="query")
@bp.doc(summary="Start service-account web OAuth (302 to WeChat)", responses=redirects("to WeChat's authorize page"))
def h5_oauth_start(query):
    rt = runtime()
    url, state = oauth.begin(rt.redis, official_account(), f"{rt.settings.public_base_url}/h5/oauth/callback",
                             query["scope"], query["next"], query["share"])
    session["oauth_state"] = state
    return redirect(url)


@bp.get("/h5/oauth/callback")
@bp.input(OAuthCallbackIn, location="query", arg_name="query")
@bp.doc(summary="WeChat redirects here with code and state", responses=redirects("signed in; to the next page"))
def h5_oauth_callback(query):
    rt = runtime()
    context = oauth.consume_state(rt.redis, query["state"], session.pop("oauth_state", None))
    member = oauth.complete(db(), official_account(), query["code"], context["scope"])
    if context.get("share"):
        on_h5_landing(db(), member.id, context["share"], request.remote_addr, request.user_agent.string)
    db().commit()
    session.clear()
    session["member_id"] = member.id
    return redirect(context["next"])


@bp.get("/h5/me")
@member_required
@bp.output(MemberOut, description="my profile")
@bp.doc(summary="The signed-in member's profile (H5 session)")
def h5_me():
    return profile(db(), get_member(db(), current_member_id()))
