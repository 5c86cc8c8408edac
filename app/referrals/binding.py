"""Touches and binding: who referred whom.

members.referrer_id is written only here, with conditional UPDATEs (compare-and-set on the current referrer), so
concurrent touches for one person bind exactly one referrer whatever the timing: the database decides, not luck."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.db import utcnow
from app.members.models import Member
from app.referrals.models import Binding, PendingReferral, ReferralCode, Touch
from app.referrals.rules import BindingRules, decide
from app.referrals.settings import get_rules
from app.referrals.stores import current_assignment

log = logging.getLogger(__name__)
CHANNELS = ("oa_subscribe", "oa_scan", "oa_unsubscribe", "mini_launch", "h5_landing")


@dataclass(frozen=True)
class TouchResult:
    outcome: str  # bound | rebound | pending | already_bound | protected | not_new | self | cycle | ...
    referrer_id: int | None = None
    code_id: int | None = None

    @property
    def bound(self) -> bool:
        return self.outcome in ("bound", "rebound")


def code_by_scene(session: Session, scene: str | None) -> ReferralCode | None:
    if not scene or len(scene) > 32:
        return None
    return session.scalar(select(ReferralCode).where(ReferralCode.scene == scene))


def code_can_bind(session: Session, code: ReferralCode) -> bool:
    """A revoked code, or one whose partner is frozen/revoked or whose clerk left, binds nobody."""
    from app.referrals.partners import partner_status

    if code.status != "active":
        return False
    if code.kind == "partner":
        return partner_status(session, code.referrer_id) == "active"
    if code.kind == "clerk":
        return current_assignment(session, code.referrer_id) is not None
    return True


def touch(session: Session, *, scene: str | None, member_id: int, channel: str, new_follower: bool = False,
          ip: str | None = None, user_agent: str | None = None, now: datetime | None = None) -> TouchResult:
    """Record a touch and apply the binding rules. Always logs, even when nothing binds."""
    now = now or utcnow()
    code = code_by_scene(session, scene)
    result = _evaluate(session, code, member_id, channel, now)
    session.add(Touch(code_id=code.id if code else None, scene=(scene or "")[:64], member_id=member_id,
                      channel=channel, new_follower=new_follower, outcome=result.outcome, ip=ip,
                      user_agent=(user_agent or "")[:256] or None, created_at=now))
    session.flush()
    return result


def _evaluate(session: Session, code: ReferralCode | None, member_id: int, channel: str, now: datetime) -> TouchResult:
    if code is None:
        return TouchResult("unknown_code")
    if not code_can_bind(session, code):
        return TouchResult("code_inactive", code_id=code.id)
    if code.referrer_id is None:  # store-only campaign code: counted, binds to no person
        return TouchResult("counted", code_id=code.id)
    if code.referrer_id == member_id:
        return TouchResult("self", code.referrer_id, code.id)
    rules = get_rules(session)
    if rules.when == "first_purchase":
        return _remember_for_purchase(session, rules, code, member_id, channel, now)
    return _bind(session, rules, code, member_id, channel, now)


def _bind(session: Session, rules: BindingRules, code: ReferralCode, member_id: int, channel: str,
          now: datetime) -> TouchResult:
    for attempt in range(3):
        try:
            with session.begin_nested():
                return _bind_once(session, rules, code, member_id, channel, now)
        except _Cycle:
            return TouchResult("cycle", code.referrer_id, code.id)
        except OperationalError as exc:
            # Two people binding under each other at the same instant deadlock on the upline locks;
            # PostgreSQL aborts one, which retries and then sees the cycle.
            if "deadlock" not in str(exc).lower() or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _bind_once(session: Session, rules: BindingRules, code: ReferralCode, member_id: int, channel: str,
               now: datetime) -> TouchResult:
    referrer_id = code.referrer_id
    member = session.execute(select(Member.referrer_id, Member.bound_at, Member.created_at)
                             .where(Member.id == member_id)).one()
    action = decide(rules, current_referrer_id=member.referrer_id, bound_at=member.bound_at,
                    candidate_referrer_id=referrer_id, member_is_new=_is_new(session, rules, member_id,
                                                                             member.created_at, now), now=now)
    if action not in ("bind", "rebind"):
        return TouchResult(action, member.referrer_id, code.id)

    # Compare-and-set: only if the referrer is still what we read. A racing touch that got there first makes
    # this match zero rows, and we report what it bound instead.
    changed = session.execute(
        update(Member)
        .where(Member.id == member_id,
               Member.referrer_id.is_(None) if member.referrer_id is None else Member.referrer_id == member.referrer_id)
        .values(referrer_id=referrer_id, bound_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        current = session.scalar(select(Member.referrer_id).where(Member.id == member_id))
        return TouchResult("already_bound", current, code.id)
    if _creates_cycle(session, member_id, referrer_id):
        raise _Cycle()
    session.add(Binding(member_id=member_id, referrer_id=referrer_id, previous_referrer_id=member.referrer_id,
                        code_id=code.id, store_id=_store_of(session, code),
                        channel=channel, kind="bind" if action == "bind" else "rebind", created_at=now))
    session.flush()
    _expire_member(session, member_id)
    return TouchResult("bound" if action == "bind" else "rebound", referrer_id, code.id)


def _store_of(session: Session, code: ReferralCode) -> int | None:
    """The store a binding is credited to: a campaign's store, else the clerk's store at this moment
    (a clerk who moves keeps one code; customers won before the move stay with the old store)."""
    if code.kind == "partner":
        return None
    if code.store_id is not None:
        return code.store_id
    assignment = current_assignment(session, code.referrer_id)
    return assignment.store_id if assignment else None


class _Cycle(Exception):
    pass


def _expire_member(session: Session, member_id: int) -> None:
    """The conditional UPDATE bypassed the ORM; a Member already loaded in this session must re-read."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Member) and obj.id == member_id:
            session.expire(obj)


def _creates_cycle(session: Session, member_id: int, referrer_id: int) -> bool:
    """Walk up from the new referrer, locking each ancestor row, looking for the member itself.

    The locks make two people who bind under each other at the same moment serialise (or deadlock, which
    PostgreSQL breaks), so a cycle can never commit."""
    current, depth = referrer_id, 0
    while current is not None and depth < 256:
        if current == member_id:
            return True
        current = session.scalar(select(Member.referrer_id).where(Member.id == current).with_for_update())
        depth += 1
    return False


def _is_new(session: Session, rules: BindingRules, member_id: int, created_at: datetime, now: datetime) -> bool:
    if rules.who != "new_only":
        return True
    earlier = session.scalar(select(exists().where(Touch.member_id == member_id, Touch.code_id.is_not(None))))
    return not earlier and now - created_at <= timedelta(hours=rules.new_member_hours)


def _remember_for_purchase(session: Session, rules: BindingRules, code: ReferralCode, member_id: int,
                           channel: str, now: datetime) -> TouchResult:
    current = session.scalar(select(Member.referrer_id).where(Member.id == member_id))
    if current is not None and rules.duration == "permanent":
        return TouchResult("already_bound", current, code.id)
    pending = session.get(PendingReferral, member_id, with_for_update=True)
    if pending is None:
        session.add(PendingReferral(member_id=member_id, code_id=code.id, channel=channel, touched_at=now))
    elif rules.duration == "last_touch":
        pending.code_id, pending.channel, pending.touched_at = code.id, channel, now
    session.flush()
    return TouchResult("pending", code.referrer_id, code.id)


def confirm_pending_referral(session: Session, member_id: int, now: datetime | None = None) -> TouchResult | None:
    """Called when the member's first order is paid: a remembered touch binds now."""
    now = now or utcnow()
    pending = session.get(PendingReferral, member_id, with_for_update=True)
    if pending is None:
        return None
    code = session.get(ReferralCode, pending.code_id)
    session.delete(pending)
    session.flush()
    if code is None or not code_can_bind(session, code) or code.referrer_id in (None, member_id):
        return TouchResult("code_inactive", code_id=pending.code_id)
    return _bind(session, get_rules(session), code, member_id, pending.channel, now)


def upline_two(session: Session, member_id: int) -> tuple[int | None, int | None]:
    """The level-1 and level-2 referrers: the most commission ever flows up (3+ levels is illegal in China)."""
    l1 = session.scalar(select(Member.referrer_id).where(Member.id == member_id))
    l2 = session.scalar(select(Member.referrer_id).where(Member.id == l1)) if l1 else None
    return l1, l2
