"""Shop webhook authentication: HMAC-SHA256 over "<timestamp>.<raw body>" with SHOP_WEBHOOK_SECRET.

Stale requests (clock difference over five minutes) and replays (a signature already seen) are refused. The
replay guard is a Redis SET NX with a TTL longer than the staleness window, so a captured request can never
be replayed: within the window Redis remembers it, after it the timestamp is stale."""
from __future__ import annotations

import hashlib
import hmac
import time

from app.errors import Conflict, Unauthorized

MAX_SKEW_SECONDS = 300
NONCE_TTL_SECONDS = 2 * MAX_SKEW_SECONDS + 60
TIMESTAMP_HEADER = "X-Liebian-Timestamp"
SIGNATURE_HEADER = "X-Liebian-Signature"


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """The signature a shop sends: hex HMAC-SHA256 of b"<timestamp>." + body."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float | None = None) -> str:
    """Check signature and freshness; returns the normalised signature (the replay key) or raises Unauthorized."""
    if not timestamp or not signature:
        raise Unauthorized(f"Missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}.", code="signature_missing")
    try:
        ts = int(timestamp)
    except ValueError:
        raise Unauthorized("The timestamp must be Unix seconds.", code="signature_invalid") from None
    now = time.time() if now is None else now
    if abs(now - ts) > MAX_SKEW_SECONDS:
        raise Unauthorized("The request is too old (or its clock is off by more than five minutes).",
                           code="signature_stale")
    given = signature.strip().lower().removeprefix("sha256=")
    if not given.isascii() or not hmac.compare_digest(given, sign(secret, ts, body)):
        raise Unauthorized("The signature does not match.", code="signature_invalid")
    return given


def refuse_if_processed(redis, signature: str) -> str:
    """A verbatim replay of a request we already applied is refused. The mark is written only after the commit
    (`remember_processed`): a worker that dies mid-request leaves none, so the shop's retry still goes through."""
    key = f"shop:webhook:sig:{signature}"
    if redis.exists(key):
        raise Conflict("This exact request was already received.", code="replayed")
    return key


def remember_processed(redis, key: str) -> None:
    redis.set(key, b"1", ex=NONCE_TTL_SECONDS)
