"""The boards in Redis: one sorted set per board, period and league, integer scores.

Applying a credit is one Lua call: claim the credit's dedupe key (SET NX), then ZINCRBY every key it counts on
and set their expiry; a replay finds the key taken and changes nothing. A member whose score falls to 0 (a
full refund) leaves the board. Reading is one Lua call too: the top N (unless shared from the short cache)
and the caller's score, competition rank (1 + how many score higher) and the board's size."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from redis import Redis

from app.boards.periods import PERIODS, expires_at, local, period_id
from app.config import BoardSettings

PREFIX = "lb"
REBUILDING = f"{PREFIX}:rebuilding"  # while set, credits wait (the subscriber retries later)

_APPLY = """
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[1])) then return 0 end
local now = tonumber(ARGV[4])
for i = 3, #KEYS do
  local e = tonumber(ARGV[2 + i])
  if e == 0 or e > now then
    local score = redis.call('ZINCRBY', KEYS[i], ARGV[3], ARGV[2])
    if tonumber(score) == 0 then redis.call('ZREM', KEYS[i], ARGV[2]) end
    if e > 0 then redis.call('EXPIREAT', KEYS[i], e) end
  end
end
return 1
"""

_READ = """
local out = {}
local n = tonumber(ARGV[2])
if n > 0 then out[1] = redis.call('ZREVRANGE', KEYS[1], 0, n - 1, 'WITHSCORES') else out[1] = {} end
out[2] = redis.call('ZCARD', KEYS[1])
if ARGV[1] ~= '' then
  local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if score then
    out[3] = score
    out[4] = redis.call('ZCOUNT', KEYS[1], '(' .. score, '+inf') + 1
  end
end
return out
"""


def board_key(kind: str, metric: str, period: str, league: str = "") -> str:
    key = f"{PREFIX}:{kind}:{metric}:{period}"
    return f"{key}:L:{league}" if league else key


def dedupe_key(credit_id: int) -> str:
    return f"{PREFIX}:applied:{credit_id}"


@dataclass(frozen=True)
class Credit:
    id: int
    subject_kind: str
    subject_id: int
    metric: str
    amount: int
    league: str
    at: object  # datetime


def targets(credit, cfg: BoardSettings) -> list[tuple[str, int]]:
    """[(key, expire-at or 0)] of every board a credit counts on: each period, with and without its league."""
    day = local(credit.at).date()
    out = []
    for kind in PERIODS:
        period = period_id(kind, day)
        exp = expires_at(kind, day, cfg.keep_days, cfg.keep_weeks, cfg.keep_months) or 0
        out.append((board_key(credit.subject_kind, credit.metric, period), exp))
        if credit.league:
            out.append((board_key(credit.subject_kind, credit.metric, period, credit.league), exp))
    return out


def apply_credits(r: Redis, credits: Iterable, cfg: BoardSettings, now: float | None = None) -> list[int]:
    """Apply credits once each, in one round trip: [1 applied | 0 already applied | -1 a rebuild is running]."""
    now = int(now if now is not None else time.time())
    script = r.register_script(_APPLY)
    pipe = r.pipeline(transaction=False)
    for c in credits:
        keys = targets(c, cfg)
        script(keys=[REBUILDING, dedupe_key(c.id)] + [k for k, _ in keys],
               args=[cfg.dedupe_days * 86400, str(c.subject_id), c.amount, now] + [e for _, e in keys],
               client=pipe)
    return [int(x) for x in pipe.execute()]


@dataclass(frozen=True)
class Standing:
    top: list[tuple[int, int]]  # (subject id, score), best first
    size: int
    score: int | None
    rank: int | None


_top_cache: dict[tuple[str, int], tuple[float, object]] = {}
_cache_lock = threading.Lock()


def read(r: Redis, key: str, n: int, me: int | None, *, cache_seconds: float = 0.0,
         decorate: Callable[[list[tuple[int, int]]], object] | None = None) -> tuple[Standing, object]:
    """The board's top n and `me`'s standing in one round trip. The top n (decorated with names by
    `decorate`) is shared between callers for `cache_seconds`; then only the standing is read."""
    cached = None
    if cache_seconds > 0:
        with _cache_lock:
            hit = _top_cache.get((key, n))
        if hit is not None and hit[0] > time.monotonic():
            cached = hit[1]
    want = 0 if cached is not None else n
    raw = r.register_script(_READ)(keys=[key], args=["" if me is None else str(me), want])
    pairs = raw[0]
    top = [(int(pairs[i]), int(float(pairs[i + 1]))) for i in range(0, len(pairs), 2)]
    score = int(float(raw[2])) if len(raw) > 2 else None
    rank = int(raw[3]) if len(raw) > 3 else None
    if cached is None:
        decorated = decorate(top) if decorate else top
        if cache_seconds > 0:
            with _cache_lock:
                if len(_top_cache) > 10000:
                    _top_cache.clear()
                _top_cache[(key, n)] = (time.monotonic() + cache_seconds, (top, decorated))
        cached = (top, decorated)
    return Standing(cached[0], int(raw[1]), score, rank), cached[1]


def clear_cache() -> None:
    with _cache_lock:
        _top_cache.clear()
