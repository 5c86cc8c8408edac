"""Console operators: merchant staff who sign in with a password, not through WeChat."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.errors import Conflict, Unauthorized, ValidationFailed
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


def sign_in(session: Session, secret: str, username: str, password: str) -> dict:
    op = session.scalar(select(Operator).where(Operator.username == username))
    # Same answer for unknown user and wrong password, so usernames cannot be probed.
    if op is None or op.disabled or not check_password_hash(op.password_hash, password or ""):
        raise Unauthorized("Wrong username or password.", code="login_failed")
    return {"access_token": tokens.issue(secret, "operator", op.id), "token_type": "Bearer",
            "expires_in": tokens.OPERATOR_TTL, "operator_id": op.id}
