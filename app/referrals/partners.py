"""Becoming a partner (推广员), by the operator's policy; freezing and revoking."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import utcnow
from app.events import record as record_event
from app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.members.service import get_member, grant_role, revoke_role
from app.referrals.models import Partner, PartnerApplication
from app.referrals.saved_rules import get_rules


def partner_status(session: Session, member_id: int | None) -> str | None:
    if member_id is None:
        return None
    return session.scalar(select(Partner.status).where(Partner.member_id == member_id))


def make_partner(session: Session, member_id: int, source: str) -> Partner:
    member = get_member(session, member_id)
    partner = session.get(Partner, member.id, with_for_update=True)
    became = partner is None or partner.status == "revoked"
    if partner is None:
        partner = Partner(member_id=member.id, source=source, status="active")
        session.add(partner)
    elif partner.status == "revoked":
        partner.status, partner.source, partner.since = "active", source, utcnow()
    grant_role(session, member.id, "partner")
    session.flush()
    if became:
        record_event(session, "partner.activated", member_id=member.id, source=source)
    return partner


def request_partnership(session: Session, member_id: int, note: str = "", spent_fen: int = 0) -> dict:
    """What happens when a member taps "become a partner", by policy."""
    rules = get_rules(session)
    status = partner_status(session, member_id)
    if status == "active":
        return {"status": "active"}
    if status == "frozen":
        raise Forbidden("Your partner account is frozen; contact the merchant.", code="partner_frozen")
    if rules.partner_policy == "everyone":
        make_partner(session, member_id, "everyone")
        return {"status": "active"}
    if rules.partner_policy == "spend":
        if spent_fen >= rules.partner_spend_threshold_fen:
            make_partner(session, member_id, "spend")
            return {"status": "active"}
        raise Forbidden("Spend a little more to become a partner.", code="partner_spend_required",
                        details={"threshold_fen": rules.partner_spend_threshold_fen, "spent_fen": spent_fen})
    if rules.partner_policy == "designated":
        raise Forbidden("Partners are appointed by the merchant.", code="partner_by_designation")
    try:
        with session.begin_nested():
            app = PartnerApplication(member_id=member_id, note=(note or "")[:500])
            session.add(app)
    except IntegrityError:
        raise Conflict("Your application is already being reviewed.", code="application_pending") from None
    return {"status": "pending", "application_id": app.id}


def review_application(session: Session, application_id: int, approve: bool, reason: str = "") -> PartnerApplication:
    app = session.get(PartnerApplication, application_id, with_for_update=True)
    if app is None:
        raise NotFound("No such application.", code="application_not_found")
    if app.status != "pending":
        raise Conflict("This application was already decided.", code="application_decided")
    if not approve and not reason:
        raise ValidationFailed("Say why the application is rejected.", code="reason_required")
    app.status, app.reason, app.decided_at = ("approved" if approve else "rejected"), reason, utcnow()
    if approve:
        make_partner(session, app.member_id, "application")
    session.flush()
    return app


def set_partner_status(session: Session, member_id: int, status: str) -> Partner:
    """freeze (codes stop binding, role kept), unfreeze, or revoke (role removed)."""
    if status not in ("active", "frozen", "revoked"):
        raise ValidationFailed("status must be active, frozen or revoked.", code="status_invalid")
    partner = session.get(Partner, member_id, with_for_update=True)
    if partner is None:
        raise NotFound("This member is not a partner.", code="partner_not_found")
    partner.status = status
    if status == "revoked":
        revoke_role(session, member_id, "partner")
    else:
        grant_role(session, member_id, "partner")
    session.flush()
    return partner
