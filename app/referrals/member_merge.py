"""When two members turn out to be one person, the survivor takes over the partner standing, codes, store job
and a remembered first-purchase touch. Touch and binding history stays on the old id (it happened to it)."""
from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.members.merge import register_merge_hook
from app.referrals.codes import PERSONAL_KINDS, retire_duplicates
from app.referrals.models import Partner, PendingReferral, ReferralCode, StaffAssignment

_RANK = {"active": 3, "frozen": 2, "revoked": 1}


def move_referral_standing(session: Session, kept_id: int, merged_id: int) -> None:
    merged_partner = session.get(Partner, merged_id)
    if merged_partner is not None:
        kept_partner = session.get(Partner, kept_id)
        if kept_partner is None:
            session.add(Partner(member_id=kept_id, status=merged_partner.status, source=merged_partner.source,
                                since=merged_partner.since))
        elif merged_partner.status == "frozen" or _RANK[merged_partner.status] > _RANK[kept_partner.status]:
            # A freeze on either account holds the person; otherwise the better standing wins.
            kept_partner.status = merged_partner.status if merged_partner.status == "frozen" or \
                kept_partner.status != "frozen" else kept_partner.status
        session.delete(merged_partner)
    # One active personal code per member: when both had one, the survivor's stays and the merged member's
    # forwards to it (its scene keeps binding, now to the survivor).
    personal = session.execute(select(ReferralCode.id, ReferralCode.owner_id).where(
        ReferralCode.owner_id.in_((kept_id, merged_id)), ReferralCode.kind.in_(PERSONAL_KINDS),
        ReferralCode.status == "active").order_by(ReferralCode.owner_id != kept_id, ReferralCode.id)).all()
    if len(personal) > 1:
        retire_duplicates(session, personal[0].id, [row.id for row in personal[1:]])
    session.execute(update(ReferralCode).where(ReferralCode.owner_id == merged_id).values(owner_id=kept_id))
    session.execute(update(ReferralCode).where(ReferralCode.referrer_id == merged_id).values(referrer_id=kept_id))
    has_job = session.query(StaffAssignment.id).filter(StaffAssignment.member_id == kept_id,
                                                       StaffAssignment.ended_at.is_(None)).first()
    if not has_job:
        session.execute(update(StaffAssignment).where(StaffAssignment.member_id == merged_id,
                                                      StaffAssignment.ended_at.is_(None)).values(member_id=kept_id))
    pending = session.get(PendingReferral, merged_id)
    if pending is not None:
        if session.get(PendingReferral, kept_id) is None:
            session.add(PendingReferral(member_id=kept_id, code_id=pending.code_id, channel=pending.channel,
                                        touched_at=pending.touched_at))
        session.delete(pending)
    session.flush()


register_merge_hook(move_referral_standing)
