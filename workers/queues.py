"""RQ queues and after-commit enqueueing. Jobs are named by import path and take ids only."""
from __future__ import annotations

import logging

from rq import Queue, Retry
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.runtime import get_runtime

log = logging.getLogger(__name__)
QUEUES = ("payouts", "default", "posters", "notifications")


def get_queue(name: str = "default") -> Queue:
    rt = get_runtime()
    # Embedded mode: jobs run inline, in this process, right when enqueued (after the commit).
    return Queue(name, connection=rt.redis, is_async=not rt.inline_jobs)


def enqueue(func: str, *args, queue: str = "default", job_id: str | None = None, retry: Retry | None = None):
    return get_queue(queue).enqueue(func, *args, job_id=job_id, retry=retry)


def enqueue_after_commit(session: Session, func: str, *args, queue: str = "default", job_id: str | None = None) -> None:
    """Enqueue once the session's transaction commits; nothing is enqueued if it rolls back.

    SQLAlchemy also fires after_commit when a savepoint is released, so the hook waits for the outermost
    commit. For work that must never be lost use the outbox instead: this hook does not survive a crash
    between commit and enqueue."""
    session.info.setdefault(_PENDING, []).append((func, args, queue, job_id))
    if not event.contains(session, "after_commit", _enqueue_pending):
        event.listen(session, "after_commit", _enqueue_pending)
        event.listen(session, "after_soft_rollback", _drop_pending)


_PENDING = "liebian_jobs_after_commit"


def _enqueue_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released; the real commit is still to come
    for func, args, queue, job_id in session.info.pop(_PENDING, []):
        try:
            enqueue(func, *args, queue=queue, job_id=job_id)
        except Exception:  # a broken queue must not turn a committed request into an error
            log.exception("enqueue of %s%r failed after commit", func, args)


def _drop_pending(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:  # the whole transaction rolled back
        session.info.pop(_PENDING, None)
