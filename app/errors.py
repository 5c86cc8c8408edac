"""Domain errors: every failure a user can cause has a stable code, a human message and an HTTP status.

`IllegalTransition` is not one of them: a state machine refusing a move is a bug or a contradicting report, and
the caller decides what it means (a 409 for an operator's stale click, a refused WeChat report, ...)."""
from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: dict | None = None,
                 status: int | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.details = details or {}


class ValidationFailed(DomainError):
    status = 422
    code = "validation_error"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"


class UpstreamError(DomainError):
    """WeChat (or another upstream) refused or failed; the message says what the user can do."""

    status = 502
    code = "upstream_error"


class IllegalTransition(Exception):
    """A state machine (commissions, withdrawals) refused to move from `state` by `move` (an action or the state
    wanted). The message says which machine and why."""

    def __init__(self, state: str, move: str, message: str):
        super().__init__(message)
        self.state, self.move = state, move
