"""Merging two members proven to be one person (same unionid or same verified phone).

The older member survives. Identities, roles, downline and the referrer move to it; other domains move their
rows through registered merge hooks (orders, commissions, ledger balances...). A merge that would join two
different referrers or create a referral cycle is refused and flagged for an operator."""
from __future__ import annotations

import logging
from typing import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.audit.service import record
from app.errors import Conflict
from app.events import record as record_event
from app.fraud.service import raise_flag
from app.members.models import Identity, Member, MemberMerge, MemberRole
from app.modules import load_plugins

log = logging.getLogger(__name__)
MergeHook = Callable[[Session, int, int], None]
_hooks: list[MergeHook] = []


def register_merge_hook(fn: MergeHook) -> MergeHook:
    """fn(session, kept_id, merged_id) moves a domain's rows from merged to kept, inside the merge transaction.

    Domains register from `app/<domain>/member_merge.py`, imported before the first merge."""
    if fn not in _hooks:
        _hooks.append(fn)
    return fn


class MergeRefused(Conflict):
    code = "merge_refused"


def upline(session: Session, member_id: int, limit: int = 64) -> list[int]:
    chain, current = [], session.get(Member, member_id)
    while current is not None and current.referrer_id is not None and len(chain) < limit:
        chain.append(current.referrer_id)
        current = session.get(Member, current.referrer_id)
    return chain


def merge_members(session: Session, a_id: int, b_id: int, evidence: str) -> Member:
    """Merge a and b; returns the survivor. Idempotent: merging an already merged pair returns the survivor."""
    if a_id == b_id:
        return session.get(Member, a_id)
    # Lock both rows in id order so two concurrent merges of the same pair serialise instead of deadlocking.
    rows = session.scalars(
        select(Member).where(Member.id.in_([a_id, b_id])).order_by(Member.id).with_for_update()
    ).all()
    kept, merged = rows[0], rows[1]
    if merged.status == "merged":
        return session.get(Member, merged.merged_into_id)

    refusal = _refusal(session, kept, merged)
    if refusal:
        raise_flag(session, kept.id, "merge_refused", other_member_id=merged.id, reason=refusal, evidence=evidence)
        record(session, "system", "member.merge_refused", "member", kept.id, other=merged.id, reason=refusal)
        raise MergeRefused(
            "These accounts look like one person but cannot be merged automatically; an operator will review.",
            details={"reason": refusal},
        )

    if kept.referrer_id is None and merged.referrer_id is not None:
        kept.referrer_id, kept.bound_at = merged.referrer_id, merged.bound_at
    merged.referrer_id = None
    session.flush()
    session.execute(update(Member).where(Member.referrer_id == merged.id).values(referrer_id=kept.id))
    session.execute(update(Identity).where(Identity.member_id == merged.id).values(member_id=kept.id))
    have = set(session.scalars(select(MemberRole.role).where(MemberRole.member_id == kept.id)))
    for role in session.scalars(select(MemberRole).where(MemberRole.member_id == merged.id)).all():
        if role.role not in have:
            session.add(MemberRole(member_id=kept.id, role=role.role))
        session.delete(role)
    kept.nickname = kept.nickname or merged.nickname
    kept.avatar_url = kept.avatar_url or merged.avatar_url
    if kept.phone_enc is None and merged.phone_enc is not None:
        kept.phone_enc, kept.phone_masked = merged.phone_enc, merged.phone_masked
    if kept.real_name_enc is None and merged.real_name_enc is not None:
        kept.real_name_enc = merged.real_name_enc
    load_plugins()  # every package's member_merge module registers its hook
    for hook in _hooks:
        hook(session, kept.id, merged.id)
    merged.status, merged.merged_into_id = "merged", kept.id
    session.add(MemberMerge(kept_id=kept.id, merged_id=merged.id, evidence=evidence))
    record(session, "system", "member.merged", "member", kept.id, merged_id=merged.id, evidence=evidence)
    record_event(session, "member.merged", kept_id=kept.id, merged_id=merged.id)
    session.flush()
    return kept


def _refusal(session: Session, kept: Member, merged: Member) -> str | None:
    if kept.referrer_id and merged.referrer_id and kept.referrer_id != merged.referrer_id:
        return "different_referrers"
    if kept.id in upline(session, merged.id) or merged.id in upline(session, kept.id):
        return "referral_cycle"
    return None
