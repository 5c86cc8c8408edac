"""Stores and their staff. A clerk's code binds customers to the clerk and records the store."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import NotFound, ValidationFailed
from app.members.service import get_member, grant_role, revoke_role
from app.referrals.models import StaffAssignment, Store

POSITIONS = {"clerk": "clerk", "manager": "store_manager"}


def create_store(session: Session, name: str) -> Store:
    name = " ".join((name or "").split())  # surrounding and repeated whitespace is not part of a name
    if not name:
        raise ValidationFailed("Give the store a name.", code="store_name_required")
    if len(name) > 128:
        raise ValidationFailed("A store needs a name of at most 128 characters.", code="store_invalid")
    store = Store(name=name)
    session.add(store)
    session.flush()
    return store


def get_store(session: Session, store_id: int) -> Store:
    store = session.get(Store, store_id)
    if store is None:
        raise NotFound("No such store.", code="store_not_found")
    return store


def current_assignment(session: Session, member_id: int | None) -> StaffAssignment | None:
    if member_id is None:
        return None
    return session.scalar(select(StaffAssignment).where(StaffAssignment.member_id == member_id,
                                                        StaffAssignment.ended_at.is_(None)))


def assign_staff(session: Session, member_id: int, store_id: int, position: str) -> StaffAssignment:
    """Put a member on a store's staff, ending any current assignment (history is kept)."""
    if position not in POSITIONS:
        raise ValidationFailed("position must be clerk or manager.", code="position_invalid")
    member = get_member(session, member_id)
    get_store(session, store_id)
    current = current_assignment(session, member.id)
    if current is not None:
        if current.store_id == store_id and current.position == position:
            return current
        current.ended_at = utcnow()
        revoke_role(session, member.id, POSITIONS[current.position])
        session.flush()
    assignment = StaffAssignment(member_id=member.id, store_id=store_id, position=position)
    session.add(assignment)
    grant_role(session, member.id, POSITIONS[position])
    session.flush()
    return assignment


def end_assignment(session: Session, member_id: int) -> None:
    current = current_assignment(session, member_id)
    if current is not None:
        current.ended_at = utcnow()
        revoke_role(session, member_id, POSITIONS[current.position])
        session.flush()
