"""WeChat Pay allows a merchant 100 requests/s: one limiter in Redis shared by every worker process.

GCRA (generic cell rate algorithm) in one Lua script, timed by Redis' own clock so workers on several machines
agree: each request pushes a "theoretical arrival time" forward by 1/rate; a request that would push it more
than `burst` intervals ahead of now waits. The embedded default's in-process Redis (fakeredis) runs the same
script with its Lua engine (lupa)."""
from __future__ import annotations

import time

_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait > 0 then return wait end
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', math.floor((tat + interval - now) / 1000) + 1000)
return 0
"""


class RateLimiter:
    def __init__(self, redis, key: str, rate_per_s: float, burst: int = 1):
        self.redis, self.key = redis, key
        self.interval_us = int(1_000_000 / rate_per_s)
        self.tolerance_us = self.interval_us * max(burst - 1, 0)
        self._script = redis.register_script(_GCRA)

    def try_acquire(self) -> float:
        """0 when a request may go now (and it is counted), else the seconds to wait before trying again."""
        wait_us = int(self._script(keys=[self.key], args=[self.interval_us, self.tolerance_us]))
        return wait_us / 1_000_000

    def acquire(self, max_wait: float = 30.0) -> None:
        deadline = time.monotonic() + max_wait
        while True:
            wait = self.try_acquire()
            if wait <= 0:
                return
            if time.monotonic() + wait > deadline:
                raise TimeoutError("rate limiter: waited too long")
            time.sleep(wait)
