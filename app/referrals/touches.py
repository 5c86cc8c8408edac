"""Referral touches arriving from WeChat and the mini-program (follow, scan, launch, H5 landing), as plain calls
(the HTTP shells adapt)."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy.orm import Session

from app.db import utcnow
from app.identity.followers import queue_unionid_lookups
from app.members.service import find_or_create_by_identity
from app.referrals.binding import IncomingTouch, TouchResult, process_touches, touch
from app.referrals.models import Touch
from app.referrals.saved_rules import get_rules


def wechat_touch(openid: str, scene: str, subscribed_now: bool, create_time: int | None) -> IncomingTouch:
    at = datetime.fromtimestamp(create_time, timezone.utc) if create_time else utcnow()
    return IncomingTouch(channel="oa_subscribe" if subscribed_now else "oa_scan", scene=scene, at=at, openid=openid,
                         new_follower=subscribed_now,
                         event_key=f"{openid}:{create_time}:{'subscribe' if subscribed_now else 'scan'}")


def queue_follower_lookups(session: Session, processed: list[IncomingTouch]) -> int:
    """After `process_touches` (inline or draining the scan stream): queue a unionid lookup for every follower
    whose member has no unionid yet (`app/identity/followers.py`). The lookup calls WeChat from a worker after
    the commit, never while WeChat waits for the callback's answer."""
    return queue_unionid_lookups(session, {e.openid: e.member_id for e in processed if e.openid and e.member_id})


def on_follow_or_scan(session: Session, *, openid: str, scene: str | None, subscribed_now: bool,
                      create_time: int | None = None) -> str | None:
    """Service-account subscribe (with or without a qrscene_) or SCAN. Returns the welcome reply (text or news)."""
    if scene:
        incoming = [wechat_touch(openid, scene, subscribed_now, create_time)]
        process_touches(session, incoming)
        queue_follower_lookups(session, incoming)
    else:
        member, _ = find_or_create_by_identity(session, "oa_openid", openid)
        queue_unionid_lookups(session, {openid: member.id})
    return get_rules(session).welcome_reply() if subscribed_now else None


def on_unsubscribe(session: Session, *, openid: str) -> None:
    member, _ = find_or_create_by_identity(session, "oa_openid", openid)
    session.add(Touch(member_id=member.id, channel="oa_unsubscribe", outcome="unsubscribed"))
    session.flush()


def on_mini_launch(session: Session, member_id: int, scene: str, ip: str | None = None,
                   user_agent: str | None = None) -> TouchResult:
    return touch(session, scene=scene, member_id=member_id, channel="mini_launch", ip=ip, user_agent=user_agent)


def on_h5_landing(session: Session, member_id: int, scene: str, ip: str | None = None,
                  user_agent: str | None = None) -> TouchResult:
    return touch(session, scene=scene, member_id=member_id, channel="h5_landing", ip=ip, user_agent=user_agent)
