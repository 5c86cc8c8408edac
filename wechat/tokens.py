"""access_token for the service account and the mini-program, shared by every process through Redis.

Fetched with `cgi-bin/stable_token` (not `cgi-bin/token`, whose every call invalidates the previous token
after 5 minutes), cached in Redis until shortly before expiry, and refreshed under a Redis lock so that N
concurrent callers cause one fetch. A token WeChat rejects (40001/42001) is refreshed single-flight too:
whoever holds the lock first refreshes, the others find a different token in the cache and use it."""
from __future__ import annotations

import json
import secrets
import time

import redis as redis_lib
import requests

from wechat.errors import WeChatError

TOKEN_REJECTED = {40001, 40014, 42001}
REFRESH_MARGIN = 300  # seconds before WeChat's expiry that we stop handing a token out


class RedisLock:
    """SET NX PX lock with an owner token. (fakeredis has no Lua, so release uses WATCH/MULTI.)"""

    def __init__(self, redis: redis_lib.Redis, name: str, ttl_ms: int = 15000):
        self.redis, self.name, self.ttl_ms = redis, name, ttl_ms
        self.owner = secrets.token_hex(8)

    def acquire(self, wait_seconds: float) -> bool:
        deadline = time.monotonic() + wait_seconds
        while True:
            if self.redis.set(self.name, self.owner, nx=True, px=self.ttl_ms):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def release(self) -> None:
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(self.name)
                if pipe.get(self.name) == self.owner.encode():
                    pipe.multi()
                    pipe.delete(self.name)
                    pipe.execute()
                else:
                    pipe.unwatch()
            except redis_lib.WatchError:
                pass


class AccessTokens:
    def __init__(self, redis: redis_lib.Redis, api_base: str, appid: str, secret: str, *,
                 http: requests.Session | None = None, timeout: float = 5.0):
        self.redis = redis
        self.url = api_base.rstrip("/") + "/cgi-bin/stable_token"
        self.appid, self.secret = appid, secret
        self.http = http or requests.Session()
        self.timeout = timeout
        self.key = f"wechat:access_token:{appid}"
        self.lock_key = f"wechat:access_token_lock:{appid}"
        self.fetches = 0  # per instance, for tests and metrics

    def get(self) -> str:
        cached = self.redis.get(self.key)
        if cached:
            return cached.decode()
        return self._refresh(rejected=None)

    def refresh_after_rejection(self, rejected: str) -> str:
        """WeChat said `rejected` is invalid or expired: replace it once, whoever many callers saw it."""
        return self._refresh(rejected=rejected)

    def _refresh(self, rejected: str | None) -> str:
        lock = RedisLock(self.redis, self.lock_key)
        if not lock.acquire(wait_seconds=self.timeout * 3):
            raise WeChatError(-1, "timed out waiting for the access_token refresh lock")
        try:
            cached = self.redis.get(self.key)
            if cached and cached.decode() != rejected:
                return cached.decode()  # another caller refreshed while we waited
            token, expires_in = self._fetch(force=False)
            if rejected is not None and token == rejected:
                # stable_token keeps answering with the token WeChat just refused: only force_refresh replaces it
                token, expires_in = self._fetch(force=True)
            ttl = expires_in - REFRESH_MARGIN if expires_in > 2 * REFRESH_MARGIN else max(expires_in // 2, 1)
            self.redis.set(self.key, token, ex=ttl)
            return token
        finally:
            lock.release()

    def _fetch(self, force: bool) -> tuple[str, int]:
        self.fetches += 1
        body = {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret,
                "force_refresh": force}
        try:
            res = self.http.post(self.url, data=json.dumps(body), timeout=self.timeout,
                                 headers={"Content-Type": "application/json"})
            data = res.json()
        except (requests.RequestException, ValueError) as exc:
            raise WeChatError(-1, f"stable_token unreachable: {exc}") from exc
        if data.get("errcode"):
            raise WeChatError(data["errcode"], data.get("errmsg", ""))
        return data["access_token"], int(data.get("expires_in", 7200))
