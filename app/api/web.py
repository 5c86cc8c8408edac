"""Helpers for thin handlers: the request's database session and the runtime."""
from __future__ import annotations

from flask import current_app, g
from sqlalchemy.orm import Session

from app.runtime import Runtime


def runtime() -> Runtime:
    return current_app.extensions["liebian"]


def db() -> Session:
    """The request's one session. Handlers commit it once, at the end; teardown closes it."""
    s = g.get("db_session")
    if s is None:
        s = g.db_session = runtime().sessions()
    return s
