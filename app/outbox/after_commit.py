"""The one after-commit mechanism: outbox rows written in a transaction are handed to RQ right after the
outermost commit.

SQLAlchemy fires `after_commit` when a savepoint is released too, and `after_soft_rollback` when one is rolled
back; neither is the end of the real transaction. So each pending row remembers the (sub)transaction it was
written in: a savepoint rolled back forgets the rows written inside it (and inside its own savepoints), a
released one keeps them for its parent, and only the outermost commit hands them out. Rows still pending when
the process dies are handed out by the sweeper."""
from __future__ import annotations

import logging
from typing import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger(__name__)
_PENDING = "outbox.pending"
HANDOFF = "outbox.handoff"  # session.info key: fn(rows) that hands [(row_id, queue)] to RQ; set by the runtime

Handoff = Callable[[list[tuple[int, str]]], None]


def hand_after_commit(session: Session, row_id: int, queue: str) -> None:
    txn = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append((txn, row_id, queue))


def _within(txn: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while txn is not None:
        if txn is ancestor:
            return True
        txn = txn.parent
    return False


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released: its rows wait for the outermost commit
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    handoff: Handoff | None = session.info.get(HANDOFF)
    if handoff is None:
        log.debug("no handoff for this session; the sweeper will hand out %d outbox rows", len(pending))
        return
    try:
        handoff([(row_id, queue) for _txn, row_id, queue in pending])
    except Exception:  # a broken queue must not fail a committed request; the sweeper hands the rows out later
        log.exception("could not hand %d outbox rows to RQ; the sweeper will", len(pending))


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous: SessionTransaction) -> None:
    pending = session.info.get(_PENDING)
    if not pending:
        return
    if previous.parent is None:  # the whole transaction: nothing it wrote exists
        session.info.pop(_PENDING, None)
    else:
        session.info[_PENDING] = [p for p in pending if not _within(p[0], previous)]


@event.listens_for(Session, "after_transaction_end")
def _after_end(session: Session, txn: SessionTransaction) -> None:
    if txn.parent is None:  # committed (handed out above) or rolled back or closed: nothing may linger
        session.info.pop(_PENDING, None)
