"""Who is calling: members (mini-program bearer token or H5 session cookie) and operators (bearer token).

Every member-facing handler reads the caller from here, never from an id in the URL or body, so member A
cannot reach member B's data by changing an id."""
from __future__ import annotations

from functools import wraps

from flask import g, request, session

from app.api.web import db, runtime
from app.errors import Forbidden, Unauthorized
from app.identity import tokens
from app.members.models import Operator
from app.members.service import get_member, roles_of


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


_OTHER = {"member": "operator", "operator": "member"}


def _verify(kind: str, token: str) -> dict:
    """The token's claims for `kind`. A valid token of the other kind is a signed-in caller at the wrong door:
    403 `operator_required` (a member's token on /api/admin) or `member_required` (an operator's on /api/mp),
    not 401, which says to sign in again."""
    secret = runtime().settings.secret_key
    try:
        return tokens.verify(secret, kind, token)
    except Unauthorized:
        if tokens.signed_as(secret, _OTHER[kind], token):
            raise Forbidden(f"This needs a{'n' if kind == 'operator' else ''} {kind}'s sign-in; "
                            f"a{'n' if kind == 'member' else ''} {_OTHER[kind]}'s token cannot call it.",
                            code="operator_required" if kind == "operator" else "member_required") from None
        raise


def _claimed_member_id() -> int:
    """The member id the caller's credential names (bearer token or H5 session cookie), checked by signature
    alone. It may name a member merged away since the token was signed."""
    token = _bearer()
    if token:
        claims = _verify("member", token)
        g.api_session_id = claims.get("sid")
        return claims["sub"]
    if session.get("member_id"):
        g.api_session_id = None
        return session["member_id"]
    raise Unauthorized("Sign in first.", code="auth_required")


def _load_member() -> int:
    member = get_member(db(), _claimed_member_id())  # follows merges: an old token keeps working for the survivor
    g.member_id = member.id
    return member.id


def current_member_id() -> int:
    if "member_id" not in g:
        _load_member()
    return g.member_id


def signed_member_id() -> int:
    """The signed-in member without the database, for reads served from Redis alone: the id the credential
    names. Such a read follows a merge through app.identity.merged's mark in its own Redis call; every other
    member endpoint uses current_member_id, which follows it in the database."""
    if "member_id" in g:
        return g.member_id
    if "signed_member_id" not in g:
        g.signed_member_id = _claimed_member_id()
    return g.signed_member_id


def current_operator_id() -> int:
    if "operator_id" not in g:
        token = _bearer()
        if not token:
            raise Unauthorized("Operator sign-in required.", code="auth_required")
        g.operator_id = _verify("operator", token)["sub"]
        op = db().get(Operator, g.operator_id)
        if op is None or op.disabled:
            raise Unauthorized("This operator account is disabled.", code="operator_disabled")
    return g.operator_id


def operator_actor() -> str:
    return f"operator:{current_operator_id()}"


def _signed_in_first(check):
    """A view decorator that runs `check` (which raises 401/403) before the view."""
    def decorate(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            check()
            return fn(*args, **kwargs)

        return wrapper

    return decorate


member_required = _signed_in_first(current_member_id)
# member_required without the database: for reads served from Redis alone (see signed_member_id)
member_signed = _signed_in_first(signed_member_id)


def role_required(*roles: str):
    """Member must hold at least one of roles (e.g. role_required("partner"))."""

    def decorate(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            if not roles_of(db(), current_member_id()) & set(roles):
                raise Forbidden(f"This needs the {' or '.join(roles)} role.", code="role_required")
            return fn(*args, **kwargs)

        return wrapper

    return decorate


operator_required = _signed_in_first(current_operator_id)


# OpenAPI security scheme names used in @bp.doc(security=...)
MEMBER_AUTH = "MemberBearer"
OPERATOR_AUTH = "OperatorBearer"
