"""Exclusive codes: one opaque scene per code, rendered as a service-account QR, a mini-program code and a
share link. Images are fetched from WeChat once and cached; permanent QRs are rationed against WeChat's
lifetime quota of 100,000 per account."""
from __future__ import annotations

import io
import secrets
from datetime import datetime, timedelta

import qrcode
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Forbidden, NotFound, UpstreamError, ValidationFailed
from app.members.service import get_member, roles_of
from app.referrals.models import CodeImage, ReferralCode
from app.referrals.partners import partner_status
from app.referrals.saved_rules import get_rules, locked_rules_row
from app.referrals.stores import current_assignment, get_store
from wechat.errors import WeChatError

_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no look-alikes
SCENE_LENGTH = 12  # ~70 bits: not guessable, and well inside the mini-program's 32-character limit
MINI_PAGE = "pages/index/index"


def new_scene() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(SCENE_LENGTH))


def _insert_code(session: Session, **values) -> ReferralCode:
    for _ in range(5):
        try:
            with session.begin_nested():
                code = ReferralCode(scene=new_scene(), **values)
                session.add(code)
                session.flush()
            return code
        except IntegrityError:
            continue  # a scene collision (astronomically rare) or a racing creation of the same personal code
    raise RuntimeError("could not allocate a unique scene")


def ensure_personal_code(session: Session, member_id: int) -> ReferralCode:
    """The member's own active code, created on first request. Partners and store clerks only."""
    member = get_member(session, member_id)
    existing = session.scalar(select(ReferralCode).where(ReferralCode.owner_id == member.id,
                                                         ReferralCode.kind.in_(("partner", "clerk")),
                                                         ReferralCode.status == "active")
                              .order_by(ReferralCode.id))
    if existing is not None:
        return existing
    if partner_status(session, member.id) == "active":
        kind = "partner"
    elif current_assignment(session, member.id) is not None and "clerk" in roles_of(session, member.id):
        kind = "clerk"
    elif partner_status(session, member.id) == "frozen":
        raise Forbidden("Your partner account is frozen.", code="partner_frozen")
    else:
        raise Forbidden("Only partners and store clerks have exclusive codes.", code="not_a_partner")
    return _insert_code(session, kind=kind, owner_id=member.id, referrer_id=member.id)


def create_campaign_code(session: Session, *, label: str, referrer_id: int | None = None,
                         store_id: int | None = None, team_id: int | None = None) -> ReferralCode:
    """An operator's code for a counter or a flyer, attributed to a clerk/partner, a store, or a team.

    A team's code is made by `app.teams.service.create_team_code`, which checks the team and resolves its
    captain; `team_id` here only labels the code."""
    if referrer_id is None and store_id is None and team_id is None:
        raise ValidationFailed("Attribute the code to a clerk, a store or a team.", code="attribution_required")
    if referrer_id is not None:
        get_member(session, referrer_id)
    if store_id is not None:
        get_store(session, store_id)
    return _insert_code(session, kind="campaign", owner_id=None, referrer_id=referrer_id, store_id=store_id,
                        team_id=team_id, label=(label or "")[:128])


def get_code(session: Session, code_id: int) -> ReferralCode:
    code = session.get(ReferralCode, code_id)
    if code is None:
        raise NotFound("No such code.", code="code_not_found")
    return code


def revoke_code(session: Session, code_id: int) -> ReferralCode:
    code = get_code(session, code_id)
    if code.status != "revoked":
        code.status, code.revoked_at = "revoked", utcnow()
        session.flush()
    return code


def share_url(base_url: str, code: ReferralCode) -> str:
    return f"{base_url}/s/{code.scene}"


def poster_qr_payload(session: Session, member_id: int, public_base_url: str) -> tuple[str, str]:
    """What a poster's code box shows: ("text", the member's share link), drawn as a QR by the poster renderer."""
    return "text", share_url(public_base_url, ensure_personal_code(session, member_id))


def _cached(session: Session, code_id: int, channel: str, source_ref: str = "") -> bytes | None:
    img = session.get(CodeImage, (code_id, channel))
    return img.png if img is not None and img.source_ref == source_ref else None


def _store_image(session: Session, code_id: int, channel: str, png: bytes, source_ref: str = "") -> bytes:
    img = session.get(CodeImage, (code_id, channel))
    if img is None:
        session.add(CodeImage(code_id=code_id, channel=channel, png=png, source_ref=source_ref))
    else:
        img.png, img.source_ref, img.created_at = png, source_ref, utcnow()
    session.flush()
    return png


def share_qr_png(session: Session, base_url: str, code: ReferralCode) -> bytes:
    url = share_url(base_url, code)
    cached = _cached(session, code.id, "share_qr", url)
    if cached is not None:
        return cached
    buf = io.BytesIO()
    qrcode.make(url, border=2, box_size=8).save(buf, format="PNG")
    return _store_image(session, code.id, "share_qr", buf.getvalue(), url)


def _wechat(call, what: str):
    try:
        return call()
    except WeChatError as exc:
        raise UpstreamError(f"WeChat refused to make the {what}; try again later.", code="wechat_error",
                            details={"errcode": exc.errcode, "errmsg": exc.errmsg}) from exc


def ensure_oa_ticket(session: Session, oa_client, code: ReferralCode, now: datetime | None = None) -> ReferralCode:
    """A service-account QR ticket for the code: permanent while the budget lasts, else 30-day, renewed early."""
    now = now or utcnow()
    rules = get_rules(session)
    if code.oa_ticket and (code.oa_permanent or (code.oa_expires_at and
                                                 code.oa_expires_at - now > timedelta(days=rules.temp_qr_renew_days))):
        return code
    rules_row = locked_rules_row(session)  # serialises quota accounting across processes
    session.refresh(code)
    if code.oa_ticket and code.oa_permanent:
        return code
    if not code.oa_ticket and rules_row.permanent_qr_used < rules.permanent_qr_budget:
        answer = _wechat(lambda: oa_client.create_qr(code.scene, permanent=True, expire_seconds=None), "QR code")
        rules_row.permanent_qr_used += 1
        code.oa_permanent, code.oa_expires_at = True, None
    else:
        seconds = rules.temp_qr_days * 86400
        answer = _wechat(lambda: oa_client.create_qr(code.scene, permanent=False, expire_seconds=seconds), "QR code")
        code.oa_permanent = False
        code.oa_expires_at = now + timedelta(seconds=int(answer.get("expire_seconds") or seconds))
    code.oa_ticket, code.oa_url = answer["ticket"], answer.get("url")
    session.flush()
    return code


def oa_qr_png(session: Session, oa_client, code: ReferralCode) -> bytes:
    if code.status != "active":
        raise Forbidden("This code was revoked.", code="code_revoked")
    ensure_oa_ticket(session, oa_client, code)
    cached = _cached(session, code.id, "oa_qr", code.oa_ticket)
    if cached is not None:
        return cached
    png = _wechat(lambda: oa_client.fetch_qr_png(code.oa_ticket), "QR code")
    return _store_image(session, code.id, "oa_qr", png, code.oa_ticket)


def mini_code_png(session: Session, mini_client, code: ReferralCode, page: str = MINI_PAGE) -> bytes:
    if code.status != "active":
        raise Forbidden("This code was revoked.", code="code_revoked")
    cached = _cached(session, code.id, "mini_code", page)
    if cached is not None:
        return cached
    png = _wechat(lambda: mini_client.get_unlimited_wxacode(code.scene, page, width=430, check_path=False),
                  "mini-program code")
    return _store_image(session, code.id, "mini_code", png, page)


def renew_expiring_qr_codes(session: Session, oa_client, now: datetime | None = None) -> int:
    """Scheduled: re-issue temporary QR tickets that expire within the renewal window."""
    now = now or utcnow()
    rules = get_rules(session)
    due = session.scalars(select(ReferralCode).where(
        ReferralCode.status == "active", ReferralCode.oa_permanent.is_(False), ReferralCode.oa_ticket.is_not(None),
        ReferralCode.oa_expires_at < now + timedelta(days=rules.temp_qr_renew_days))).all()
    for code in due:
        code.oa_ticket = None  # forces a fresh ticket
        session.flush()
        ensure_oa_ticket(session, oa_client, code, now)
    return len(due)
