"""Mini-program login: wx.login code → code2session → our own tokens.

The WeChat session_key never leaves the server; it is stored encrypted with the login. Refresh tokens rotate
on each use and are stored only as hashes; presenting an already-rotated one revokes the whole login family
(a stolen token replayed after the owner refreshed is detected)."""
from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.crypto import blind_index, encrypt, mask_phone, sha256_hex
from app.db import utcnow
from app.errors import Unauthorized, UpstreamError, ValidationFailed
from app.identity import tokens
from app.identity.linking import attach_identity
from app.members.models import ApiSession, Member
from app.members.service import find_or_create_by_identity, get_member
from wechat.errors import WeChatError

REFRESH_TTL = timedelta(days=30)


class RefreshReused(Unauthorized):
    """The family has been revoked in this session: the caller must commit before answering."""

    code = "refresh_reused"


def _tokens(secret: str, api_session: ApiSession, refresh: str) -> dict:
    return {
        "access_token": tokens.issue(secret, "member", api_session.member_id, api_session.id),
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": tokens.MEMBER_TTL,
        "member_id": api_session.member_id,
    }


def _new_session(session: Session, member_id: int, family: str, session_key_enc: str | None) -> tuple[ApiSession, str]:
    refresh = secrets.token_urlsafe(32)
    row = ApiSession(member_id=member_id, family=family, refresh_hash=sha256_hex(refresh),
                     session_key_enc=session_key_enc, expires_at=utcnow() + REFRESH_TTL)
    session.add(row)
    session.flush()
    return row, refresh


def login(session: Session, mini_client, secret: str, js_code: str) -> tuple[Member, dict]:
    if not js_code or len(js_code) > 256:
        raise ValidationFailed("code is required.", code="login_code_missing")
    try:
        answer = mini_client.code_to_session(js_code)
    except WeChatError as exc:
        if exc.errcode in (40029, 40163):
            raise ValidationFailed("The login code is invalid or expired; call wx.login again.",
                                   code="login_code_invalid", details={"errcode": exc.errcode}) from exc
        if exc.errcode == 45011:
            raise UpstreamError("Too many logins; try again in a minute.", code="rate_limited", status=429) from exc
        raise UpstreamError("WeChat could not complete the login.", details={"errcode": exc.errcode}) from exc
    member, _ = find_or_create_by_identity(session, "mini_openid", answer["openid"])
    if answer.get("unionid"):
        member = attach_identity(session, member.id, "unionid", answer["unionid"])
    row, refresh = _new_session(session, member.id, uuid.uuid4().hex, encrypt(secret, answer["session_key"]))
    return member, _tokens(secret, row, refresh)


def refresh(session: Session, secret: str, refresh_token: str) -> dict:
    row = session.scalar(select(ApiSession).where(ApiSession.refresh_hash == sha256_hex(refresh_token or ""))
                         .with_for_update())
    if row is None:
        raise Unauthorized("Unknown refresh token; sign in again.", code="refresh_invalid")
    if row.revoked_at is not None or row.rotated_at is not None:
        if row.rotated_at is not None:
            revoke_family(session, row.family)
        raise RefreshReused("This refresh token was already used; sign in again.")
    if row.expires_at <= utcnow():
        raise Unauthorized("Your login has expired; sign in again.", code="refresh_expired")
    row.rotated_at = utcnow()
    member = get_member(session, row.member_id)
    new_row, new_refresh = _new_session(session, member.id, row.family, row.session_key_enc)
    return _tokens(secret, new_row, new_refresh)


def revoke_family(session: Session, family: str) -> None:
    session.execute(update(ApiSession).where(ApiSession.family == family, ApiSession.revoked_at.is_(None))
                    .values(revoked_at=utcnow()))


def logout(session: Session, member_id: int, api_session_id: int | None) -> None:
    if api_session_id is None:
        return
    row = session.get(ApiSession, api_session_id)
    if row is not None and row.member_id == member_id:
        revoke_family(session, row.family)


def bind_phone(session: Session, mini_client, secret: str, member_id: int, phone_code: str) -> Member:
    """getuserphonenumber flow: the phone is verified by WeChat, so it is proof of person (may merge)."""
    if not phone_code:
        raise ValidationFailed("code is required.", code="phone_code_missing")
    try:
        info = mini_client.get_phone_number(phone_code)
    except WeChatError as exc:
        raise ValidationFailed("The phone authorisation is invalid or expired; ask the user again.",
                               code="phone_code_invalid", details={"errcode": exc.errcode}) from exc
    phone = info.get("purePhoneNumber") or info.get("phoneNumber")
    if info.get("countryCode") and info["countryCode"] != "86":
        phone = f"+{info['countryCode']}{phone}"
    member = attach_identity(session, member_id, "phone", blind_index(secret, phone))
    member.phone_enc, member.phone_masked = encrypt(secret, phone), mask_phone(phone)
    session.flush()
    return member
