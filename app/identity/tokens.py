"""Bearer tokens: short-lived signed access tokens for members and operators.

Stateless on purpose (a read per request would cost more than it protects); refresh tokens are the
stateful, rotating part (app.identity.miniapp).

A token's signature is checked once per process: the claims and signing time of tokens already verified are kept
(keyed by the whole token, secret and kind), and only the age is checked again on each use, so a mini-program
polling a board does not pay for the HMAC and the base64 and JSON decoding on every request."""
from __future__ import annotations

import threading
import time
from functools import lru_cache

from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.errors import Unauthorized

MEMBER_TTL = 30 * 60
OPERATOR_TTL = 8 * 3600
VERIFIED_MAX = 50_000  # tokens remembered per process (about 15 MB at most); past it the memory starts afresh

_verified: dict[tuple[str, str, str], tuple[dict, int]] = {}
_verified_lock = threading.Lock()


@lru_cache(maxsize=16)
def _serializer(secret: str, kind: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=f"liebian-{kind}-access")


def issue(secret: str, kind: str, subject_id: int, session_id: int | None = None) -> str:
    return _serializer(secret, kind).dumps({"sub": subject_id, "sid": session_id})


def _expired() -> Unauthorized:
    return Unauthorized("Your session has expired; refresh it or sign in again.", code="token_expired")


def verify(secret: str, kind: str, token: str) -> dict:
    """The token's claims; 401 `token_invalid` for a bad signature, `token_expired` past its kind's lifetime."""
    ttl = MEMBER_TTL if kind == "member" else OPERATOR_TTL
    key = (secret, kind, token)
    known = _verified.get(key)
    if known is None:
        try:
            claims, signed_at = _serializer(secret, kind).loads(token, return_timestamp=True)
        except BadSignature as exc:
            raise Unauthorized("The access token is not valid.", code="token_invalid") from exc
        known = (claims, int(signed_at.timestamp()))
        with _verified_lock:
            if len(_verified) >= VERIFIED_MAX:
                _verified.clear()
            _verified[key] = known
    age = int(time.time()) - known[1]
    if age > ttl or age < 0:  # as itsdangerous' max_age: expired, or signed in the future
        raise _expired()
    return dict(known[0])


def signed_as(secret: str, kind: str, token: str) -> bool:
    """Whether `token` was signed for `kind` at any time (expired or not): tells a member's token sent to an
    operator endpoint (403: the wrong kind of caller) from a forged one (401)."""
    try:
        _serializer(secret, kind).loads(token)
    except BadSignature:
        return False
    return True
