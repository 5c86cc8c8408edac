"""Console operators: merchant staff who sign in with a password, not through WeChat."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.audit.service import record
from app.errors import Conflict, NotFound, RateLimited, Unauthorized, ValidationFailed
from app.identity import tokens
from app.members.models import Operator


MIN_PASSWORD = 8


def create_operator(session: Session, username: str, password: str, *, actor: str | None = None) -> Operator:
    if not username or len(password or "") < MIN_PASSWORD:
        raise ValidationFailed("A username and a password of at least 8 characters are required.",
                               code="operator_invalid")
    if session.scalar(select(Operator).where(Operator.username == username)):
        raise Conflict("That username is taken.", code="operator_exists")
    op = Operator(username=username, password_hash=generate_password_hash(password))
    session.add(op)
    session.flush()
    if actor:
        record(session, actor, "operator.create", "operator", op.id, username=username)
    return op


def list_operators(session: Session) -> list[Operator]:
    return list(session.scalars(select(Operator).order_by(Operator.id)))


def operator_named(session: Session, username: str, *, for_update: bool = False) -> Operator:
    stmt = select(Operator).where(Operator.username == username)
    op = session.scalar(stmt.with_for_update() if for_update else stmt)
    if op is None:
        raise NotFound(f"No operator is named {username!r}.", code="operator_not_found")
    return op


def set_disabled(session: Session, username: str, disabled: bool, *, actor: str) -> Operator:
    """Disable (sign-in refused, and every token already issued: checked on each request) or enable again."""
    op = operator_named(session, username, for_update=True)
    if op.disabled != disabled:
        op.disabled = disabled
        session.flush()
        record(session, actor, "operator.disable" if disabled else "operator.enable", "operator", op.id)
    return op


def reset_password(session: Session, username: str, password: str, *, actor: str, redis=None) -> Operator:
    """A new password; also lifts the sign-in lockout of that username (see `sign_in`)."""
    if len(password or "") < MIN_PASSWORD:
        raise ValidationFailed("The password needs at least 8 characters.", code="password_too_short")
    op = operator_named(session, username, for_update=True)
    op.password_hash = generate_password_hash(password)
    session.flush()
    record(session, actor, "operator.reset_password", "operator", op.id)
    if redis is not None:
        redis.delete(_user_key(username))
    return op


def _user_key(username: str) -> str:
    return f"oplogin:user:{username}"


# Hashed once so an unknown username costs the same time as a wrong password.
_DUMMY_HASH = generate_password_hash("liebian-no-such-operator")
MAX_FAILURES, WINDOW_SECONDS = 5, 15 * 60


def sign_in(session: Session, secret: str, username: str, password: str, redis=None, ip: str = "") -> dict:
    """Operators approve payouts: five failures per username or per IP lock sign-in for 15 minutes."""
    keys = [_user_key(username), f"oplogin:ip:{ip}"]
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
