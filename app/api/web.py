"""Helpers for thin handlers: the request's database session and the runtime."""
from __future__ import annotations

from functools import wraps

from flask import current_app, g, request
from sqlalchemy.orm import Session
from werkzeug.local import LocalProxy

from app.runtime import Runtime


def runtime() -> Runtime:
    return current_app.extensions["liebian"]


def db() -> Session:
    """The request's one session. Handlers commit it once, at the end; teardown closes it."""
    s = g.get("db_session")
    if s is None:
        s = g.db_session = runtime().sessions()
    return s


# The request's session, opened only when something uses it: for hot paths that touch the database only now and
# then (a board read needs it for names once in a while; a stream-mode scan never), where opening and closing an
# unused session is a tenth of the request.
lazy_db = LocalProxy(db)


def opened_db() -> Session | None:
    """The request's session if anything opened it, else None."""
    return g.get("db_session")


def allow_body(limit: int):
    """Raise this view's body limit above the app's MAX_BODY_BYTES (uploads), before the body is parsed."""

    def decorate(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            request.max_content_length = limit
            return fn(*args, **kwargs)

        return wrapper

    return decorate
