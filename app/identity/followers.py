"""Service-account followers: learning who they are (their unionid) after WeChat's callback has been answered.

A follower arrives as an `oa_openid`; the same person in the mini-program is a `mini_openid`. Only the unionid
proves they are one person. WeChat gives it for a follower through `cgi-bin/user/info`, but the callback that
sees the follow must answer WeChat within 5 seconds and must not wait for another WeChat call. So whoever
handles a follow or scan (`app/referrals/touches.py`, inline or draining the scan stream) calls
`queue_unionid_lookups` in its own transaction: one `identity.link_follower` outbox row per follower whose
member has no unionid yet (deduplicated per member). After the commit a worker runs the job
(`app/identity/jobs.py`): it asks WeChat and calls `link_follower`, which attaches the unionid with
`attach_identity` — the audited merge with the mini-program member of the same person, or a `merge_refused`
risk flag for an operator when the two accounts cannot be merged automatically."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.identity.linking import attach_identity
from app.members.merge import MergeRefused
from app.members.models import Identity
from app.members.service import find_by_identity
from app.outbox import emit_many

JOB = "identity.link_follower"


def queue_unionid_lookups(session: Session, members_by_openid: dict[str, int]) -> int:
    """Queue a user-info lookup for every follower (openid -> member id) whose member has no unionid yet.
    Returns how many were queued (a lookup already waiting for the member is not queued twice)."""
    if not members_by_openid:
        return 0
    linked = set(session.scalars(select(Identity.member_id).where(
        Identity.kind == "unionid", Identity.member_id.in_(set(members_by_openid.values())))))
    rows = [(JOB, [openid], f"follower-unionid:{member_id}")
            for openid, member_id in sorted(members_by_openid.items()) if member_id not in linked]
    return len(emit_many(session, rows))


def needs_unionid(session: Session, openid: str) -> bool:
    """Is there a follower with this openid whose member has no unionid yet?"""
    member = find_by_identity(session, "oa_openid", openid)
    if member is None:
        return False
    return session.scalar(select(Identity.id).where(Identity.member_id == member.id,
                                                    Identity.kind == "unionid")) is None


def link_follower(session: Session, openid: str, unionid: str) -> str:
    """Attach the unionid WeChat gave for this follower. Returns what happened: linked (no other member had
    it) | merged (the mini-program member of the same person was merged with the follower) | merge_refused |
    unknown_follower. A refused merge leaves its risk flag and audit entry in the session for the caller to
    commit."""
    member = find_by_identity(session, "oa_openid", openid)
    if member is None:
        return "unknown_follower"
    holder = session.scalar(select(Identity.member_id).where(Identity.kind == "unionid", Identity.value == unionid))
    try:
        attach_identity(session, member.id, "unionid", unionid)
    except MergeRefused:
        return "merge_refused"
    return "linked" if holder is None or holder == member.id else "merged"
