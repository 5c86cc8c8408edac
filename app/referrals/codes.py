"""Exclusive codes: one opaque scene per code, rendered as a service-account QR, a mini-program code and a
share link. Images are fetched from WeChat once and cached; permanent QRs are rationed against WeChat's
lifetime quota of 100,000 per account."""
from __future__ import annotations

import io
import secrets
from datetime import datetime, timedelta

import qrcode
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Forbidden, NotFound, UpstreamError, ValidationFailed
from app.members.service import get_member, roles_of
from app.referrals.models import CodeImage, ReferralCode
from app.referrals.partners import partner_status
from app.referrals.rules import code_standing as rules_code_standing
from app.referrals.saved_rules import get_rules, locked_rules_row
from app.referrals.stores import current_assignment, get_store
from wechat.errors import WeChatError

_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no look-alikes
SCENE_LENGTH = 12  # ~70 bits: not guessable, and well inside the mini-program's 32-character limit
MINI_PAGE = "pages/index/index"


def new_scene() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(SCENE_LENGTH))


PERSONAL_KINDS = ("partner", "clerk")


def _insert(session: Session, model):
    """INSERT with ON CONFLICT support on either database (PostgreSQL in production, SQLite embedded)."""
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(model)


def _insert_code(session: Session, **values) -> ReferralCode:
    for _ in range(5):
        try:
            with session.begin_nested():
                code = ReferralCode(scene=new_scene(), **values)
                session.add(code)
                session.flush()
            return code
        except IntegrityError:
            continue  # a scene collision (astronomically rare)
    raise RuntimeError("could not allocate a unique scene")


def _personal_code(session: Session, member_id: int) -> ReferralCode | None:
    return session.scalar(select(ReferralCode).where(ReferralCode.owner_id == member_id,
                                                     ReferralCode.kind.in_(PERSONAL_KINDS),
                                                     ReferralCode.status == "active"))


def _personal_kind(session: Session, member_id: int) -> str:
    """Which personal code the member may have now, or why none."""
    status = partner_status(session, member_id)
    if status == "active":
        return "partner"
    if current_assignment(session, member_id) is not None and "clerk" in roles_of(session, member_id):
        return "clerk"
    if status == "frozen":
        raise Forbidden("Your partner account is frozen.", code="partner_frozen")
    raise Forbidden("Only partners and store clerks have exclusive codes.", code="not_a_partner")


def ensure_personal_code(session: Session, member_id: int) -> ReferralCode:
    """The member's own active code, created on first request. Partners and store clerks only.

    Created once whatever the timing: the member's first requests and the poster pre-render all come here, and
    racing creators INSERT ... ON CONFLICT DO NOTHING against the one-active-personal-code index
    (`uq_referral_codes_personal`), so every one of them returns the row that won. A member whose code exists
    gets it whatever their standing now; `code_standing` says whether it binds."""
    member = get_member(session, member_id)
    existing = _personal_code(session, member.id)
    if existing is not None:
        return existing
    kind = _personal_kind(session, member.id)
    for _ in range(5):
        # Waits for a racing creator's transaction, then inserts nothing; a scene collision inserts nothing too.
        session.execute(_insert(session, ReferralCode).values(
            scene=new_scene(), kind=kind, owner_id=member.id, referrer_id=member.id, store_id=None, team_id=None,
            label="", status="active", oa_permanent=False, created_at=utcnow()).on_conflict_do_nothing())
        code = _personal_code(session, member.id)
        if code is not None:
            return code
    raise RuntimeError("could not allocate a unique scene")


def code_standing(session: Session, code: ReferralCode) -> str:
    """active | frozen | revoked | inactive: whether a scan of the code binds now (`rules.code_standing`, the
    rule `binding` applies), with the reason when it does not."""
    partner = partner_status(session, code.referrer_id)
    on_staff = code.referrer_id is not None and current_assignment(session, code.referrer_id) is not None
    return rules_code_standing(code.kind, code.status, partner, on_staff, code.referrer_id is not None)


def require_active(session: Session, code: ReferralCode) -> ReferralCode:
    """The code if it binds; else a 403 saying why, so no image or poster is made of a code that does not bind."""
    standing = code_standing(session, code)
    if standing == "frozen":
        raise Forbidden("This partner account is frozen: its code and posters are paused.", code="partner_frozen")
    if standing == "revoked":
        raise Forbidden("This code was revoked.", code="code_revoked")
    if standing == "inactive":
        raise Forbidden("This code no longer binds anyone.", code="code_inactive")
    return code


def active_personal_code(session: Session, member_id: int) -> ReferralCode:
    """The member's personal code, for making images and posters of it: refused (403) unless it binds."""
    return require_active(session, ensure_personal_code(session, member_id))


def retire_duplicates(session: Session, keep_id: int, duplicate_ids) -> int:
    """Revoke duplicate personal codes in favour of `keep_id`; their scenes go on binding as it (`binding`).
    Codes that forwarded to a duplicate forward to `keep_id` from now on. Returns how many were retired."""
    ids = [i for i in duplicate_ids if i != keep_id]
    if not ids:
        return 0
    session.execute(update(ReferralCode).where(ReferralCode.replaced_by_id.in_(ids)).values(replaced_by_id=keep_id))
    done = session.execute(update(ReferralCode).where(ReferralCode.id.in_(ids), ReferralCode.status == "active")
                           .values(status="revoked", revoked_at=utcnow(), replaced_by_id=keep_id)).rowcount
    session.flush()
    return done


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
    """What a poster's code box shows: ("text", the member's share link), drawn as a QR by the poster renderer.
    Refused (403) when the member's code does not bind: no poster is made of a frozen or revoked code."""
    return "text", share_url(public_base_url, active_personal_code(session, member_id))


def _cached(session: Session, code_id: int, channel: str, source_ref: str = "") -> bytes | None:
    row = session.execute(select(CodeImage.png, CodeImage.source_ref)
                          .where(CodeImage.code_id == code_id, CodeImage.channel == channel)).first()
    return row.png if row is not None and row.source_ref == source_ref else None


def _store_image(session: Session, code_id: int, channel: str, png: bytes, source_ref: str = "") -> bytes:
    """Upsert: racing first requests for the same image both store it, the last one wins (they are equal)."""
    stmt = _insert(session, CodeImage).values(code_id=code_id, channel=channel, png=png, source_ref=source_ref,
                                              created_at=utcnow())
    session.execute(stmt.on_conflict_do_update(
        index_elements=["code_id", "channel"],
        set_={"png": stmt.excluded.png, "source_ref": stmt.excluded.source_ref,
              "created_at": stmt.excluded.created_at}))
    return png


def share_qr_png(session: Session, base_url: str, code: ReferralCode) -> bytes:
    require_active(session, code)
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

    def fresh() -> bool:
        return bool(code.oa_ticket) and (code.oa_permanent or (
            code.oa_expires_at is not None and code.oa_expires_at - now > timedelta(days=rules.temp_qr_renew_days)))

    if fresh():
        return code
    rules_row = locked_rules_row(session)  # serialises quota accounting and ticket creation across processes
    session.refresh(code)
    if fresh():  # a racing request made the ticket while we waited
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
    require_active(session, code)
    ensure_oa_ticket(session, oa_client, code)
    cached = _cached(session, code.id, "oa_qr", code.oa_ticket)
    if cached is not None:
        return cached
    png = _wechat(lambda: oa_client.fetch_qr_png(code.oa_ticket), "QR code")
    return _store_image(session, code.id, "oa_qr", png, code.oa_ticket)


def mini_code_png(session: Session, mini_client, code: ReferralCode, page: str = MINI_PAGE) -> bytes:
    require_active(session, code)
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
