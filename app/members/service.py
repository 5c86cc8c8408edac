"""Members and their channel identities: lookup, creation under races, roles."""
from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import NotFound, ValidationFailed
from app.members.models import IDENTITY_KINDS, ROLES, Identity, Member, MemberRole


def get_member(session: Session, member_id: int, *, share_lock: bool = False) -> Member:
    """The live member for an id, following merges (an old id keeps working after a merge).

    `share_lock`: each row on the way is read fresh and share-locked until the transaction ends. A merge locks
    both members' rows for update first, so the two take turns: a merge under way finishes and is then followed;
    one that starts later waits for this transaction (whatever it records for the member is then there for the
    merge's subscribers to move)."""
    lock = {"read": True} if share_lock else None
    member = session.get(Member, member_id, with_for_update=lock)
    seen = 0
    while member is not None and member.status == "merged" and seen < 8:
        member = session.get(Member, member.merged_into_id, with_for_update=lock)
        seen += 1
    if member is None:
        raise NotFound("No such member.", code="member_not_found")
    return member


def find_by_identity(session: Session, kind: str, value: str) -> Member | None:
    ident = session.scalar(select(Identity).where(Identity.kind == kind, Identity.value == value))
    return get_member(session, ident.member_id) if ident else None


def find_or_create_by_identity(session: Session, kind: str, value: str, **profile) -> tuple[Member, bool]:
    """The member behind an identity, creating one on first sight. Returns (member, created).

    Two requests for the same new openid may race: the unique (kind, value) constraint lets one win, and
    the loser reads the winner's member instead of failing."""
    if kind not in IDENTITY_KINDS or not value:
        raise ValidationFailed("Unknown identity.", code="identity_invalid")
    existing = find_by_identity(session, kind, value)
    if existing:
        return existing, False
    try:
        with session.begin_nested():
            member = Member(nickname=profile.get("nickname") or "", avatar_url=profile.get("avatar_url") or "")
            session.add(member)
            session.flush()
            session.add(Identity(member_id=member.id, kind=kind, value=value))
            session.flush()
    except IntegrityError:
        existing = find_by_identity(session, kind, value)
        if existing is None:
            raise
        return existing, False
    grant_role(session, member.id, "consumer")
    return member, True


def identities_of(session: Session, member_id: int) -> dict[str, str]:
    rows = session.scalars(select(Identity).where(Identity.member_id == member_id))
    return {i.kind: i.value for i in rows}


def roles_of(session: Session, member_id: int) -> set[str]:
    return set(session.scalars(select(MemberRole.role).where(MemberRole.member_id == member_id)))


def grant_role(session: Session, member_id: int, role: str) -> bool:
    """Add a role; False when the member had it already."""
    if role not in ROLES:
        raise ValidationFailed(f"Unknown role {role!r}.", code="role_invalid", details={"roles": list(ROLES)})
    if session.get(MemberRole, (member_id, role)):
        return False
    session.add(MemberRole(member_id=member_id, role=role))
    session.flush()
    return True


def revoke_role(session: Session, member_id: int, role: str) -> bool:
    """Remove a role; False when the member did not have it."""
    if role not in ROLES:
        raise ValidationFailed(f"Unknown role {role!r}.", code="role_invalid", details={"roles": list(ROLES)})
    if role == "consumer":
        raise ValidationFailed("Everyone is a consumer; that role cannot be removed.", code="role_invalid")
    result = session.execute(delete(MemberRole).where(MemberRole.member_id == member_id, MemberRole.role == role))
    return result.rowcount > 0


def profile(session: Session, member: Member) -> dict:
    return {
        "id": member.id,
        "nickname": member.nickname,
        "avatar_url": member.avatar_url,
        "phone": member.phone_masked,
        "roles": sorted(roles_of(session, member.id)),
        "referrer_id": member.referrer_id,
        "created_at": member.created_at.isoformat(),
    }
