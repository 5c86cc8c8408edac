"""Builders for the test world. Shared by every area's tests."""
from __future__ import annotations

import itertools

from app.members.models import Identity, Member
from app.members.service import grant_role

_seq = itertools.count(1)


def make_member(session, nickname: str | None = None, referrer: Member | None = None, roles=("consumer",),
                **identities) -> Member:
    n = next(_seq)
    member = Member(nickname=nickname or f"member{n}", referrer_id=referrer.id if referrer else None)
    session.add(member)
    session.flush()
    for role in roles:
        grant_role(session, member.id, role)
    for kind, value in identities.items():
        session.add(Identity(member_id=member.id, kind=kind, value=value))
    session.flush()
    return member


def make_partner(session, nickname: str | None = None, referrer: Member | None = None, **identities) -> Member:
    return make_member(session, nickname, referrer, roles=("consumer", "partner"), **identities)
