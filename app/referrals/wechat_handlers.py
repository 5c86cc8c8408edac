"""Service-account events that are referral touches (registered with wechat.registry on first dispatch)."""
from __future__ import annotations

from wechat.registry import register_push_handler

from app.referrals import events


def _subscribe(session, message):
    return events.on_follow_or_scan(session, openid=message.source, scene=None, subscribed_now=True)


def _subscribe_scan(session, message):
    return events.on_follow_or_scan(session, openid=message.source, scene=message.scene_id, subscribed_now=True)


def _scan(session, message):
    return events.on_follow_or_scan(session, openid=message.source, scene=message.scene_id, subscribed_now=False)


def _unsubscribe(session, message):
    events.on_unsubscribe(session, openid=message.source)


register_push_handler("subscribe", _subscribe)
register_push_handler("subscribe_scan", _subscribe_scan)
register_push_handler("scan", _scan)
register_push_handler("unsubscribe", _unsubscribe)
