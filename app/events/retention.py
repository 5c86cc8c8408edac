"""Old events go: a domain event and its receipts are deleted EVENTS_KEEP_DAYS after it happened, once none of
its deliveries is still to run or was given up on (an operator may still want to see or re-drive those). No
subscriber can see the event again after that: deliveries are only made when it is recorded. The scheduler
runs `events.prune` (app/events/jobs.py) every RETENTION_SECONDS, which also prunes the finished outbox
rows."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from app.events.models import DomainEvent, EventReceipt
from app.events.service import DELIVER
from app.outbox.models import OutboxMessage


def held_events(session: Session) -> set[int]:
    """Events with a delivery not finished or given up on."""
    m = OutboxMessage
    return {int(args[1]) for args, in session.execute(
        select(m.args).where(m.func == DELIVER, or_(m.done_at.is_(None), m.dead)))}


def prune_events(session: Session, *, keep_days: int, now: datetime, after: int = 0, chunk: int = 2000,
                 held: set[int] | None = None) -> tuple[int, int | None]:
    """Delete the events (and receipts) among the `chunk` events after id `after` that happened before
    `keep_days` ago and are not held. Returns (events deleted, the id to continue after, or None)."""
    cutoff = now - timedelta(days=keep_days)
    held = held_events(session) if held is None else held
    rows = session.execute(select(DomainEvent.id, DomainEvent.occurred_at).where(DomainEvent.id > after)
                           .order_by(DomainEvent.id).limit(chunk)).all()
    old = [r for r in rows if r.occurred_at < cutoff]
    gone = [r.id for r in old if r.id not in held]
    if gone:
        session.execute(delete(EventReceipt).where(EventReceipt.event_id.in_(gone)))
        session.execute(delete(DomainEvent).where(DomainEvent.id.in_(gone)))
    done_walking = len(rows) < chunk or len(old) < len(rows)
    return len(gone), None if done_walking else rows[-1].id
