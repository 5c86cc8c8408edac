"""Service-account web OAuth for the H5 pages.

`state` is a random alphanumeric nonce (WeChat allows only [a-zA-Z0-9], ≤128 bytes) whose context lives in
Redis for 10 minutes and is consumed atomically (GETDEL): replayed, forged and expired states all find
nothing. The nonce is also set in the browser's cookie, so a state issued to someone else's browser is refused."""
from __future__ import annotations

import json
import secrets
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from app.errors import DomainError, Forbidden, UpstreamError, ValidationFailed
from app.identity.linking import attach_identity
from app.members.models import Member
from app.members.service import find_or_create_by_identity
from wechat.errors import WeChatError

STATE_TTL = 600
SCOPES = ("snsapi_base", "snsapi_userinfo")
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


class OAuthStateInvalid(Forbidden):
    code = "oauth_state_invalid"


def safe_next(next_path: str | None) -> str:
    """Only same-site relative paths: an open redirect would hand the session to another site."""
    if not next_path or not next_path.startswith("/") or next_path.startswith("//") or urlsplit(next_path).netloc:
        return "/h5/me"
    return next_path


def begin(redis, oa_client, redirect_uri: str, scope: str, next_path: str | None, share: str | None) -> tuple[str, str]:
    """Returns (authorize_url, state). The caller also stores state in the browser's session cookie."""
    if scope not in SCOPES:
        raise ValidationFailed("scope must be snsapi_base or snsapi_userinfo.", code="oauth_scope_invalid")
    state = "".join(secrets.choice(_ALNUM) for _ in range(32))
    redis.set(f"oauth:state:{state}", json.dumps({"next": safe_next(next_path), "scope": scope, "share": share}),
              ex=STATE_TTL)
    return oa_client.oauth_authorize_url(redirect_uri, scope, state), state


def consume_state(redis, state: str | None, cookie_state: str | None) -> dict:
    if not state or not state.isalnum() or len(state) > 128:
        raise OAuthStateInvalid("The sign-in link is not valid; please start again.")
    raw = redis.getdel(f"oauth:state:{state}")
    if raw is None:
        raise OAuthStateInvalid("The sign-in link has expired or was already used; please start again.")
    if cookie_state != state:
        raise OAuthStateInvalid("This sign-in was started in another browser; please start again.")
    return json.loads(raw)


def complete(session: Session, oa_client, code: str | None, scope: str) -> Member:
    """Exchange the one-time code and return the member. No member is created on any failure."""
    if not code:
        raise ValidationFailed("WeChat did not send an authorisation code (consent refused?).",
                               code="oauth_code_missing")
    try:
        token = oa_client.oauth_exchange(code)
        if token.get("is_snapshotuser") in (1, "1", True):
            raise Forbidden("Open the page from WeChat to continue (snapshot preview users cannot sign in).",
                            code="snapshot_user")
        info = oa_client.oauth_userinfo(token["access_token"], token["openid"]) if scope == "snsapi_userinfo" else {}
    except WeChatError as exc:
        raise _as_upstream(exc) from exc
    member, _ = find_or_create_by_identity(
        session, "oa_openid", token["openid"], nickname=info.get("nickname"), avatar_url=info.get("headimgurl")
    )
    if info:
        member.nickname = info.get("nickname") or member.nickname
        member.avatar_url = info.get("headimgurl") or member.avatar_url
    unionid = token.get("unionid") or info.get("unionid")
    if unionid:
        member = attach_identity(session, member.id, "unionid", unionid)
    return member


def _as_upstream(exc) -> DomainError:
    if exc.errcode in (40029, 40163, 41008):
        return ValidationFailed("The sign-in code is invalid or was already used; please start again.",
                                code="oauth_code_invalid", details={"errcode": exc.errcode})
    return UpstreamError("WeChat could not complete the sign-in; please try again.", code="wechat_error",
                         details={"errcode": exc.errcode})
