"""The withdrawal state machine: a pure table, tested without a database.

One vocabulary, WeChat's (ACCEPTED ... CANCELLED) plus ours around it:
REVIEWING (waiting for an operator) -> APPROVED (payout queued) -> SUBMITTING (out_bill_no sent at least once,
outcome not yet known) -> WeChat's intermediate states -> SUCCESS | FAIL | CANCELLED. REJECTED is an operator's
no. Final states never change again: a late or contradictory report (SUCCESS then FAIL) is refused."""
from __future__ import annotations

from enum import Enum

from app.errors import IllegalTransition

REVIEWING, APPROVED, SUBMITTING = "REVIEWING", "APPROVED", "SUBMITTING"
ACCEPTED, PROCESSING, WAIT_USER_CONFIRM = "ACCEPTED", "PROCESSING", "WAIT_USER_CONFIRM"
TRANSFERING, CANCELING = "TRANSFERING", "CANCELING"
SUCCESS, FAIL, CANCELLED, REJECTED = "SUCCESS", "FAIL", "CANCELLED", "REJECTED"

STATES = (REVIEWING, APPROVED, SUBMITTING, ACCEPTED, PROCESSING, WAIT_USER_CONFIRM, TRANSFERING, CANCELING,
          SUCCESS, FAIL, CANCELLED, REJECTED)
FINAL = frozenset({SUCCESS, FAIL, CANCELLED, REJECTED})
# Money goes back to `available` in these final states.
RETURNED = frozenset({FAIL, CANCELLED, REJECTED})
WECHAT_STATES = frozenset({ACCEPTED, PROCESSING, WAIT_USER_CONFIRM, TRANSFERING, CANCELING, SUCCESS, FAIL, CANCELLED})
# A bill may exist at WeChat: the reconciliation job queries these.
IN_FLIGHT = frozenset({SUBMITTING, ACCEPTED, PROCESSING, WAIT_USER_CONFIRM, TRANSFERING, CANCELING})

# How far along a withdrawal is. A report that is not further along than what we know is stale (WeChat's
# notifications and our own query answers may arrive in any order) and changes nothing.
_PROGRESS = {REVIEWING: 0, APPROVED: 1, SUBMITTING: 2, ACCEPTED: 3, PROCESSING: 4, WAIT_USER_CONFIRM: 5,
             TRANSFERING: 6, CANCELING: 6, SUCCESS: 9, FAIL: 9, CANCELLED: 9, REJECTED: 9}

# Our own moves (operators, members, the payout worker before WeChat knows the bill).
_LOCAL = {
    "approve": ({REVIEWING}, APPROVED),
    "reject": ({REVIEWING}, REJECTED),
    "cancel": ({REVIEWING, APPROVED}, CANCELLED),  # before any bill exists: nothing to ask WeChat
    "submit": ({APPROVED, SUBMITTING}, SUBMITTING),
    "refused": ({APPROVED, SUBMITTING}, FAIL),  # WeChat definitely rejected the bill: it never existed
}


def _illegal(current: str, wanted: str, why: str) -> IllegalTransition:
    return IllegalTransition(current, wanted, f"{current} -> {wanted}: {why}")


class Move(str, Enum):
    APPLY = "apply"  # change the state
    SAME = "same"  # already there: a duplicate, nothing to do
    STALE = "stale"  # older news than what we know: nothing to do


def local(current: str, action: str) -> str:
    """The state after one of our own actions, or IllegalTransition."""
    if action not in _LOCAL:
        raise ValueError(f"unknown action {action!r}")
    allowed, target = _LOCAL[action]
    if current not in allowed:
        raise _illegal(current, target, f"cannot {action} a {current} withdrawal")
    return target


def reported(current: str, wechat_state: str) -> Move:
    """What to do with a bill state WeChat reported (answer to create/query, or a notification).

    Idempotent and order-insensitive: the same report twice is SAME, an older report is STALE; a final state
    never changes (SUCCESS -> FAIL raises, so does anything after REJECTED, which never had a bill)."""
    if wechat_state not in WECHAT_STATES:
        raise ValueError(f"not a WeChat bill state: {wechat_state!r}")
    if current == wechat_state:
        return Move.SAME
    if current in FINAL:
        raise _illegal(current, wechat_state, "a final withdrawal never changes")
    if current in (REVIEWING,):
        raise _illegal(current, wechat_state, "no bill was ever sent for this withdrawal")
    if _PROGRESS[wechat_state] <= _PROGRESS[current]:
        return Move.STALE
    return Move.APPLY


def is_final(state: str) -> bool:
    return state in FINAL
