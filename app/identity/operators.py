"""Console operators: merchant staff who sign in with a password, not through WeChat."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.errors import Conflict, RateLimited, Unauthorized, ValidationFailed
from app.identity import tokens
from app.members.models import Operator


def create_operator(session: Session, username: str, password: str) -> Operator:
    if not username or len(password or "") < 8:
        raise ValidationFailed("A username and a password of at least 8 characters are required.",
                               code="operator_invalid")
    if session.scalar(select(Operator).where(Operator.username == username)):
        raise Conflict("That username is taken.", code="operator_exists")
    op = Operator(username=username, password_hash=generate_password_hash(password))
    session.add(op)
    session.flush()
    return op


# Hashed once so an unknown username costs the same time as a wrong password.
_DUMMY_HASH = generate_password_hash("liebian-no-such-operator")
MAX_FAILURES, WINDOW_SECONDS = 5, 15 * 60


def sign_in(session: Session, secret: str, username: str, password: str, redis=None, ip: str = "") -> dict:
    """Operators approve payouts: five failures per username or per IP lock sign-in for 15 minutes."""
    keys = [f"oplogin:user:{username}", f"oplogin:ip:{ip}"]
    if redis is not None and any(int(redis.get(k) or 0) >= MAX_FAILURES for k in keys):
        raise RateLimited("Too many failed sign-ins; try again in 15 minutes.", code="login_locked")
    op = session.scalar(select(Operator).where(Operator.username == username))
    ok = check_password_hash(op.password_hash if op else _DUMMY_HASH, password or "")
    # Same answer for unknown user and wrong password, so usernames cannot be probed.
    if op is None or op.disabled or not ok:
        if redis is not None:
            pipe = redis.pipeline()
            for k in keys:
                pipe.incr(k)
                pipe.expire(k, WINDOW_SECONDS)
            pipe.execute()
        raise Unauthorized("Wrong username or password.", code="login_failed")
    if redis is not None:
        redis.delete(keys[0])
    return {"access_token": tokens.issue(secret, "operator", op.id), "token_type": "Bearer",
            "expires_in": tokens.OPERATOR_TTL, "operator_id": op.id}
