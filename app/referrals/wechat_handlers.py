"""Service-account events that are referral touches (registered with wechat.registry on first dispatch).

Handlers are `fn(session, message, rt)`: the callback's session, the verified push, the process's runtime."""
from __future__ import annotations

from app.referrals import inbox, touches
from app.referrals.saved_rules import cached_welcome
from wechat import push
from wechat.registry import register_push_handler


def _create_time(message) -> int | None:
    try:
        return int(message.time)
    except (TypeError, ValueError):
        return None


def _stream_mode(rt) -> bool:
    return rt.settings.touch.mode == "stream"


def _follow(session, message, rt, scene, subscribed_now):
    claimed = getattr(message, "delivery_claimed", True)  # False: the callback left the dedupe to us
    if scene and _stream_mode(rt):
        redis = rt.redis
        if claimed:
            inbox.accept(redis, message.source, scene, subscribed_now, _create_time(message))
        elif not inbox.accept_once(redis, push.delivery_key(message), push.DEDUPE_SECONDS, message.source, scene,
                                   subscribed_now, _create_time(message)):
            return None  # WeChat's retry of a delivery already queued
        return cached_welcome(session) if subscribed_now else None
    if not claimed:
        if not push.claim_delivery(rt.redis, message):
            return None
        message.delivery_claimed = True  # so a failure below releases it for WeChat's retry
    return touches.on_follow_or_scan(session, openid=message.source, scene=scene, subscribed_now=subscribed_now,
                                    create_time=_create_time(message))


def _subscribe(session, message, rt):
    return _follow(session, message, rt, None, True)


def _subscribe_scan(session, message, rt):
    return _follow(session, message, rt, message.scene_id, True)


def _scan(session, message, rt):
    return _follow(session, message, rt, message.scene_id, False)


def _unsubscribe(session, message, rt):
    touches.on_unsubscribe(session, openid=message.source)


register_push_handler("subscribe", _subscribe)
# In stream mode a scan's dedupe claim and its XADD are one atomic Redis call (inbox.accept_once).
register_push_handler("subscribe_scan", _subscribe_scan, claims_delivery=_stream_mode)
register_push_handler("scan", _scan, claims_delivery=_stream_mode)
register_push_handler("unsubscribe", _unsubscribe)
