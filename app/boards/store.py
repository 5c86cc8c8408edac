"""The boards in Redis: one sorted set per board, period and league, integer scores.

Applying credits is one Lua call for all of them (one round trip): each claims its dedupe key (SET NX), then
ZINCRBYs every key it counts on and sets their expiry; a replay finds the key taken and changes nothing. A member
whose score falls to 0 (a full refund) leaves the board. Reading is one Lua call too: the top N (unless shared
from the short cache) and the caller's score, competition rank (1 + how many score higher) and the board's size.
Scripts are called by their SHA1 (EVALSHA), sent whole only when the server does not have them yet."""
from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from redis import Redis
from redis.connection import AbstractConnection
from redis.exceptions import NoScriptError, ResponseError

from app.boards.periods import PERIODS, expires_at, local, period_id
from app.config import BoardSettings

PREFIX = "lb"
REBUILDING = f"{PREFIX}:rebuilding"  # while set, credits wait (the subscriber retries later)

# KEYS: the rebuild flag, then for each credit its dedupe key and the board keys it counts on.
# ARGV: dedupe seconds, now, how many credits, then for each: subject, amount, how many keys, each key's expire-at
# (0: never). Returns one result per credit: 1 applied, 0 already applied, -1 a rebuild is running.
_APPLY = """
local ttl, now, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
if redis.call('EXISTS', KEYS[1]) == 1 then
  for c = 1, n do out[c] = -1 end
  return out
end
local k, a = 2, 4
for c = 1, n do
  local subject, amount, nkeys = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  a = a + 3
  if redis.call('SET', KEYS[k], '1', 'NX', 'EX', ttl) then
    for i = 1, nkeys do
      local e = tonumber(ARGV[a + i - 1])
      if e == 0 or e > now then
        local score = redis.call('ZINCRBY', KEYS[k + i], amount, subject)
        if tonumber(score) == 0 then redis.call('ZREM', KEYS[k + i], subject) end
        if e > 0 then redis.call('EXPIREAT', KEYS[k + i], e) end
      end
    end
    out[c] = 1
  else
    out[c] = 0
  end
  k = k + 1 + nkeys
  a = a + nkeys
end
return out
"""

# KEYS: the board, then optionally a key that may hold the id the caller now lives on as (a merged member's
# token: app.identity.merged). ARGV: the caller's id ('' for none), how many of the top to return.
# Returns {top (id, score, ...), size, the caller's id as followed, [score, competition rank]}.
_READ = """
local out = {}
local n = tonumber(ARGV[2])
if n > 0 then out[1] = redis.call('ZREVRANGE', KEYS[1], 0, n - 1, 'WITHSCORES') else out[1] = {} end
out[2] = redis.call('ZCARD', KEYS[1])
local who = ARGV[1]
if who ~= '' and KEYS[2] then
  local moved = redis.call('GET', KEYS[2])
  if moved then who = moved end
end
out[3] = who
if who ~= '' then
  local score = redis.call('ZSCORE', KEYS[1], who)
  if score then
    out[4] = score
    out[5] = redis.call('ZCOUNT', KEYS[1], '(' .. score, '+inf') + 1
  end
end
return out
"""


class _Script:
    """A Lua script called by its SHA1; on NOSCRIPT (a restarted or flushed server) sent whole once, which also
    loads it again. One round trip either way (redis-py's Script in a pipeline asks SCRIPT EXISTS first)."""

    def __init__(self, source: str):
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, r: Redis, keys: list, args: list):
        try:
            return r.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            pass
        except ResponseError as exc:  # some clients (fakeredis) do not raise the subclass
            if not str(exc).startswith("NOSCRIPT"):
                raise
        return r.eval(self.source, len(keys), *keys, *args)


class _Held(threading.local):
    client: Redis | None = None
    pid: int = 0
    conn: AbstractConnection | None = None


_held = _Held()


def _held_connection(r: Redis) -> AbstractConnection | None:
    """This thread's own connection to `r`'s server, made once and kept (not from the pool, so nothing leaks
    when the thread ends). The pool's checkout polls the socket (a system call), takes a lock and wraps the call
    in retries: on a launch-day crowd that is a third of a board read's Redis cost. None for an in-process
    server (fakeredis), which keeps its own pool."""
    if _held.client is r and _held.pid == os.getpid():
        return _held.conn
    if _held.conn is not None and _held.pid == os.getpid():
        _held.conn.disconnect()  # another client now (a new runtime): close this one's socket
    pool = r.connection_pool
    conn = None
    if pool.connection_class.__module__.startswith("redis."):
        conn = pool.connection_class(**pool.connection_kwargs)
    _held.client, _held.pid, _held.conn = r, os.getpid(), conn
    return conn


def _drop_held() -> None:
    conn, _held.conn, _held.client = _held.conn, None, None
    if conn is not None:
        conn.disconnect()


def _call_read(script: _Script, r: Redis, keys: list, args: list):
    """`script` on this thread's held connection; on any failure the connection is dropped and the call goes
    through the client (its pool and retries), which also reloads the script after NOSCRIPT."""
    conn = _held_connection(r)
    if conn is not None:
        try:
            conn.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
            return conn.read_response()
        except ResponseError:
            pass  # the reply was read in full (NOSCRIPT, a wrong type): the connection stays usable
        except Exception:
            _drop_held()  # a reply may be half read: never reuse this socket
        except BaseException:
            _drop_held()
            raise
    return script(r, keys, args)


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
    return list(day_targets(credit.subject_kind, credit.metric, credit.league, local(credit.at).date(), cfg))


@lru_cache(maxsize=4096)
def day_targets(subject_kind: str, metric: str, league: str, day,
                cfg: BoardSettings) -> tuple[tuple[str, int], ...]:
    """The boards a credit of one kind, metric and league on one Shanghai day counts on (cached: the credits of
    a day share them)."""
    out = []
    for kind in PERIODS:
        period = period_id(kind, day)
        exp = expires_at(kind, day, cfg.keep_days, cfg.keep_weeks, cfg.keep_months) or 0
        out.append((board_key(subject_kind, metric, period), exp))
        if league:
            out.append((board_key(subject_kind, metric, period, league), exp))
    return tuple(out)


@lru_cache(maxsize=4096)
def _packed(subject_kind: str, metric: str, league: str, day, cfg: BoardSettings) -> tuple[list, list]:
    """day_targets as the script's arguments, already bytes: [key, ...], [how many, expire-at, ...]."""
    where = day_targets(subject_kind, metric, league, day, cfg)
    return [k.encode() for k, _ in where], [str(len(where)).encode()] + [str(e).encode() for _, e in where]


_apply_script = _Script(_APPLY)


def apply_credits(r: Redis, credits: Iterable, cfg: BoardSettings, now: float | None = None) -> list[int]:
    """Apply credits once each, in one round trip: [1 applied | 0 already applied | -1 a rebuild is running]."""
    now = int(now if now is not None else time.time())
    keys, args, n = [REBUILDING], [cfg.dedupe_days * 86400, now, 0], 0
    for c in credits:
        where, exps = _packed(c.subject_kind, c.metric, c.league, local(c.at).date(), cfg)
        keys.append(dedupe_key(c.id))
        keys += where
        args += (str(c.subject_id).encode(), str(c.amount).encode())
        args += exps
        n += 1
    if not n:
        return []
    args[2] = n
    return [int(x) for x in _apply_script(r, keys, args)]


_MARK_APPLIED = """
for i = 1, #KEYS do redis.call('SET', KEYS[i], '1', 'EX', ARGV[1]) end
return #KEYS
"""
_mark_applied_script = _Script(_MARK_APPLIED)


def write_board(r: Redis, key: str, scores: dict[int, int], expire_at: int, chunk: int = 5000) -> None:
    """Replace a board with `scores` ({subject id: score}, zeros left out): written to a scratch key, then
    renamed over it (with its expiry, 0 for none), so readers see the old board or the new one."""
    items = [(b"%d" % v, b"%d" % s) for s, v in scores.items() if v != 0]
    tmp = f"{key}:rebuild"
    pipe = r.pipeline(transaction=False)
    pipe.delete(tmp)
    for i in range(0, len(items), chunk):
        pipe.execute_command("ZADD", tmp, *[x for pair in items[i:i + chunk] for x in pair])
        if i % (chunk * 20) == chunk * 19:
            pipe.execute()
    if items:
        if expire_at:
            pipe.expireat(tmp, expire_at)
        pipe.rename(tmp, key)
    else:
        pipe.delete(key)
    pipe.execute()


def mark_applied(r: Redis, credit_ids: list[int], ttl: int, chunk: int = 2000) -> None:
    """Set the dedupe keys of credits already counted (a rebuild): a replay of them then counts once."""
    for i in range(0, len(credit_ids), chunk):
        _mark_applied_script(r, [dedupe_key(c) for c in credit_ids[i:i + chunk]], [ttl])


@dataclass(frozen=True)
class Standing:
    top: list[tuple[int, int]]  # (subject id, score), best first
    size: int
    score: int | None
    rank: int | None
    subject: int | None = None  # whose standing this is: `me`, or the member `me` now lives on as


_read_script = _Script(_READ)
_top_cache: dict[tuple[str, int], tuple[float, object]] = {}
_cache_lock = threading.Lock()


def read(r: Redis, key: str, n: int, me: int | None, *, cache_seconds: float = 0.0,
         decorate: Callable[[list[tuple[int, int]]], object] | None = None,
         follow: str | None = None) -> tuple[Standing, object]:
    """The board's top n and `me`'s standing in one round trip. The top n (decorated with names by
    `decorate`) is shared between callers for `cache_seconds`; then only the standing is read. `follow`: a key
    that may hold the id `me` now lives on as, read in the same call; the standing is then that member's."""
    cached = None
    if cache_seconds > 0:
        with _cache_lock:
            hit = _top_cache.get((key, n))
        if hit is not None and hit[0] > time.monotonic():
            cached = hit[1]
    want = 0 if cached is not None else n
    keys = [key, follow] if follow and me is not None else [key]
    raw = _call_read(_read_script, r, keys, ["" if me is None else str(me), want])
    pairs = raw[0]
    top = [(int(pairs[i]), int(float(pairs[i + 1]))) for i in range(0, len(pairs), 2)]
    subject = int(raw[2]) if me is not None else None
    score = int(float(raw[3])) if len(raw) > 3 else None
    rank = int(raw[4]) if len(raw) > 4 else None
    if cached is None:
        decorated = decorate(top) if decorate else top
        if cache_seconds > 0:
            with _cache_lock:
                if len(_top_cache) > 10000:
                    _top_cache.clear()
                _top_cache[(key, n)] = (time.monotonic() + cache_seconds, (top, decorated))
        cached = (top, decorated)
    return Standing(cached[0], int(raw[1]), score, rank, subject), cached[1]


def clear_cache() -> None:
    with _cache_lock:
        _top_cache.clear()
