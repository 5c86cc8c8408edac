"""Launch-day mode: scan events go into a Redis stream and are bound in batches by a consumer process.

With REFERRAL_TOUCH_MODE=stream the WeChat callback only verifies, dedupes, appends the event and replies (well
inside WeChat's 5 seconds, whatever the database is doing); `python -m workers.touch_consumer` drains the stream
with a consumer group: an event is acknowledged only after its batch committed, a consumer that dies leaves its
events pending for another to claim, and touches' event keys make re-processing a no-op."""
from __future__ import annotations

import json
import logging
import socket
import time

from app.referrals.binding import IncomingTouch, process_touches
from app.referrals.touches import queue_follower_lookups, wechat_touch

log = logging.getLogger(__name__)
STREAM = "liebian:touches"
GROUP = "binders"
CLAIM_IDLE_MS = 30_000


MAXLEN = 5_000_000


def accept(redis, openid: str, scene: str, subscribed_now: bool, create_time: int | None) -> None:
    redis.xadd(STREAM, {"e": json.dumps([openid, scene, subscribed_now, create_time])}, maxlen=MAXLEN,
               approximate=True)


# Claim WeChat's delivery and append the event in one atomic call: a retry finds the claim and appends nothing.
_ACCEPT_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[3])
  return 1
end
return 0
"""
_scripts: dict = {}


def accept_once(redis, delivery_key: str, ttl_s: int, openid: str, scene: str, subscribed_now: bool,
                create_time: int | None) -> bool:
    """accept() for a delivery nobody claimed yet: True if this call claimed it (and queued the event), False for
    WeChat's retry of a delivery already taken."""
    script = _scripts.get(id(redis))
    if script is None or script[0] is not redis:
        script = _scripts[id(redis)] = (redis, redis.register_script(_ACCEPT_ONCE))
    return bool(script[1](keys=[delivery_key, STREAM], args=[
        ttl_s, MAXLEN, json.dumps([openid, scene, subscribed_now, create_time])]))


def _ensure_group(redis) -> None:
    try:
        redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except Exception as exc:  # BUSYGROUP: already there
        if "BUSYGROUP" not in str(exc):
            raise


def _with_group(redis, command):
    """Run a consumer-group command, creating the group (and stream) the first time it is missing."""
    try:
        return command()
    except Exception as exc:  # NOGROUP: no stream or no group yet
        if "NOGROUP" not in str(exc):
            raise
    _ensure_group(redis)
    return command()


def _read_new(redis, consumer: str, count: int, block_ms: int | None) -> list:
    got = _with_group(redis, lambda: redis.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=count, block=block_ms))
    return got[0][1] if got else []


def drain_once(rt, consumer: str | None = None, count: int = 500, block_ms: int = 1000, linger_ms: int = 0) -> int:
    """Process one batch (claimed stale entries first, then new ones). Returns how many events were handled.

    linger_ms: when a read returns fewer than `count` new events, wait this long for more before binding, so a
    steady trickle is bound in batches of a useful size (the per-batch cost is ~20 times one event's)."""
    consumer = consumer or f"{socket.gethostname()}-{id(rt)}"
    claimed = _with_group(rt.redis, lambda: rt.redis.xautoclaim(STREAM, GROUP, consumer, min_idle_time=CLAIM_IDLE_MS,
                                                                start_id="0-0", count=count))
    entries = claimed[1] if claimed and len(claimed) > 1 else []
    if not entries:
        entries = _read_new(rt.redis, consumer, count, block_ms)
        if entries and len(entries) < count and linger_ms > 0:
            time.sleep(linger_ms / 1000)
            entries += _read_new(rt.redis, consumer, count - len(entries), None)
    entries = [(eid, fields) for eid, fields in entries if fields]
    if not entries:
        return 0
    touches: list[IncomingTouch] = []
    for _eid, fields in entries:
        openid, scene, subscribed_now, create_time = json.loads(fields[b"e"])
        touches.append(wechat_touch(openid, scene, subscribed_now, create_time))
    with rt.session() as s:
        process_touches(s, touches)
        queue_follower_lookups(s, touches)
    rt.redis.xack(STREAM, GROUP, *[eid for eid, _ in entries])
    return len(entries)


def backlog(redis) -> int:
    try:
        info = redis.xinfo_groups(STREAM)
    except Exception:
        return 0
    return sum(int(g.get("lag") or 0) + int(g.get("pending") or 0) for g in info)
