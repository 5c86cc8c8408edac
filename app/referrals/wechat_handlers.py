"""Service-account events that are referral touches (registered with wechat.registry on first dispatch)."""
from __future__ import annotations

import os

from wechat.registry import register_push_handler

from app.referrals import events, inbox
from app.referrals.settings import cached_welcome


def _create_time(message) -> int | None:
    try:
        return int(message.time)
    except (TypeError, ValueError):
        return None


def _stream_mode() -> bool:
    return os.environ.get("REFERRAL_TOUCH_MODE", "inline") == "stream"


def _follow(session, message, scene, subscribed_now):
    if scene and _stream_mode():
        from app.runtime import get_runtime

        inbox.accept(get_runtime().redis, message.source, scene, subscribed_now, _create_time(message))
        return cached_welcome(session) if subscribed_now else None
    return events.on_follow_or_scan(session, openid=message.source, scene=scene, subscribed_now=subscribed_now,
                                    create_time=_create_time(message))


def _subscribe(session, message):
    return _follow(session, message, None, True)


def _subscribe_scan(session, message):
    return _follow(session, message, message.scene_id, True)


def _scan(session, message):
    return _follow(session, message, message.scene_id, False)


def _unsubscribe(session, message):
    events.on_unsubscribe(session, openid=message.source)


register_push_handler("subscribe", _subscribe)
register_push_handler("subscribe_scan", _subscribe_scan)
register_push_handler("scan", _scan)
register_push_handler("unsubscribe", _unsubscribe)
