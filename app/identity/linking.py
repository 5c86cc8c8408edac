"""Binding identities to members; unionid and verified phone are proof of one person and trigger merges."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict
from app.members.merge import merge_members
from app.members.models import Identity, Member
from app.members.service import get_member

PROOF_OF_PERSON = ("unionid", "phone")


def attach_identity(session: Session, member_id: int, kind: str, value: str) -> Member:
    """Give member this identity. If another member already holds a unionid/phone, the two are merged;
    returns the surviving member."""
    member = get_member(session, member_id)
    holder = session.scalar(select(Identity).where(Identity.kind == kind, Identity.value == value))
    if holder is None:
        if kind == "phone":
            # One verified phone per member: a new number replaces the old one's index.
            old = session.scalar(select(Identity).where(Identity.member_id == member.id, Identity.kind == "phone"))
            if old is not None:
                session.delete(old)
                session.flush()
        try:
            with session.begin_nested():
                session.add(Identity(member_id=member.id, kind=kind, value=value))
                session.flush()
            return member
        except IntegrityError:
            holder = session.scalar(select(Identity).where(Identity.kind == kind, Identity.value == value))
    other = get_member(session, holder.member_id)
    if other.id == member.id:
        return member
    if kind not in PROOF_OF_PERSON:
        raise Conflict("This WeChat account is already linked to another member.", code="identity_taken")
    return merge_members(session, member.id, other.id, evidence=kind)
