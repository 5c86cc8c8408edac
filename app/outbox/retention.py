"""Finished outbox rows go after OUTBOX_KEEP_DAYS. Rows given up on (dead) stay for operators; live rows are
work. Walked by id from the oldest (ids follow creation time), one chunk per transaction."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.outbox.models import OutboxMessage


def prune_done(session: Session, *, keep_days: int, now: datetime, after: int = 0,
               chunk: int = 2000) -> tuple[int, int | None]:
    """Delete the finished rows among the `chunk` rows after id `after` that were created and finished before
    `keep_days` ago. Returns (rows deleted, the id to continue after, or None when the rest is newer)."""
    cutoff = now - timedelta(days=keep_days)
    m = OutboxMessage
    rows = session.execute(select(m.id, m.created_at, m.done_at, m.dead).where(m.id > after)
                           .order_by(m.id).limit(chunk)).all()
    old = [r for r in rows if r.created_at < cutoff]
    gone = [r.id for r in old if r.done_at is not None and r.done_at < cutoff and not r.dead]
    if gone:
        session.execute(delete(m).where(m.id.in_(gone)))
    done_walking = len(rows) < chunk or len(old) < len(rows)
    return len(gone), None if done_walking else rows[-1].id
