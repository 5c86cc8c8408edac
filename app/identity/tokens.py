"""Bearer tokens: short-lived signed access tokens for members and operators.

Stateless on purpose (a read per request would cost more than it protects); refresh tokens are the
stateful, rotating part (app.identity.miniapp)."""
from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from app.errors import Unauthorized

MEMBER_TTL = 30 * 60
OPERATOR_TTL = 8 * 3600


def _serializer(secret: str, kind: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=f"liebian-{kind}-access")


def issue(secret: str, kind: str, subject_id: int, session_id: int | None = None) -> str:
    return _serializer(secret, kind).dumps({"sub": subject_id, "sid": session_id})


def verify(secret: str, kind: str, token: str) -> dict:
    ttl = MEMBER_TTL if kind == "member" else OPERATOR_TTL
    try:
        return _serializer(secret, kind).loads(token, max_age=ttl)
    except SignatureExpired as exc:
        raise Unauthorized("Your session has expired; refresh it or sign in again.", code="token_expired") from exc
    except BadSignature as exc:
        raise Unauthorized("The access token is not valid.", code="token_invalid") from exc


def signed_as(secret: str, kind: str, token: str) -> bool:
    """Whether `token` was signed for `kind` at any time (expired or not): tells a member's token sent to an
    operator endpoint (403: the wrong kind of caller) from a forged one (401)."""
    try:
        _serializer(secret, kind).loads(token)
    except BadSignature:
        return False
    return True
