"""Recording events and delivering them to subscribers."""
from __future__ import annotations

import json

from sqlalchemy import insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import json_param, utcnow
from app.events.models import DomainEvent, EventReceipt
from app.events.registry import EVENT_NAMES, Event, subscriber_named, subscribers_of
from app.outbox import emit_many, job
from app.outbox.after_commit import hand_after_commit

DELIVER = "events.deliver"


def record(session: Session, name: str, **data) -> int:
    """Record one event in the current transaction; returns its id."""
    return record_many(session, [(name, data)])[0]


def record_many(session: Session, events: list[tuple[str, dict]]) -> list[int]:
    """Record events (name, data) in one statement each for the events and their deliveries; returns the ids
    in order. Data must be JSON: ids, integer fen, short strings."""
    if not events:
        return []
    for name, _data in events:
        if name not in EVENT_NAMES:
            raise ValueError(f"unknown event {name!r}")
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        return _record_many_pg(session, events, now)
    rows = [{"name": name, "data": data, "occurred_at": now} for name, data in events]
    table = DomainEvent.__table__
    ids = list(session.scalars(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)) \
        if len(rows) > 1 else [session.execute(insert(table).values(rows[0]).returning(table.c.id)).scalar_one()]
    _deliver(session, [(name, event_id) for (name, _d), event_id in zip(events, ids, strict=True)])
    return ids


# PostgreSQL: the events and their deliveries in one round trip, parameters as two JSON documents (the order
# paths record a batch's events at once; per-row parameter binding cost more than the statement). Ids come from
# the sequence in insertion order, which follows `ord`.
_RECORD_PG = text("""
    WITH ev AS (
        INSERT INTO domain_events (name, data, occurred_at)
        SELECT r.name, r.data, CAST(:now AS timestamptz)
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(ord int, name text, data jsonb)
        ORDER BY r.ord
        RETURNING id, name),
    subs AS (
        SELECT s.event, s.sub, s.queue
        FROM jsonb_to_recordset(CAST(:subs AS jsonb)) AS s(event text, sub text, queue text)),
    ob AS (
        INSERT INTO outbox_messages (func, args, queue, dedupe_key, attempts, failures, available_at, enqueued_at,
                                     done_at, dead, last_error, created_at)
        SELECT :deliver, jsonb_build_array(s.sub, ev.id), s.queue, 'ev:' || ev.id || ':' || s.sub, 1, 0,
               CAST(:now AS timestamptz), CAST(:now AS timestamptz), NULL, false, '', CAST(:now AS timestamptz)
        FROM ev JOIN subs s ON s.event = ev.name
        ON CONFLICT (dedupe_key) WHERE done_at IS NULL DO NOTHING
        RETURNING id, queue)
    SELECT (SELECT array_agg(id ORDER BY id) FROM ev) AS event_ids,
           (SELECT jsonb_agg(jsonb_build_array(id, queue)) FROM ob) AS deliveries
""")


def _record_many_pg(session: Session, events: list[tuple[str, dict]], now) -> list[int]:
    subs = [{"event": name, "sub": s.name, "queue": s.queue} for name in {n for n, _d in events}
            for s in subscribers_of(name)]
    row = session.execute(_RECORD_PG, {
        "now": now, "deliver": DELIVER, "subs": json_param(subs),
        "rows": json_param([{"ord": i, "name": name, "data": data} for i, (name, data) in enumerate(events)])}).one()
    for row_id, queue in row.deliveries or []:
        hand_after_commit(session, row_id, queue)
    return list(row.event_ids)


def deliver_recorded(session: Session, name: str, event_ids: list[int]) -> None:
    """Queue the deliveries of events a set-based statement inserted itself (e.g. maturation's one statement)."""
    _deliver(session, [(name, event_id) for event_id in event_ids])


def _deliver(session: Session, events: list[tuple[str, int]]) -> None:
    deliveries = [(DELIVER, [sub.name, event_id], f"ev:{event_id}:{sub.name}", sub.queue)
                  for name, event_id in events for sub in subscribers_of(name)]
    for queue in {d[3] for d in deliveries}:
        emit_many(session, [d[:3] for d in deliveries if d[3] == queue], queue=queue)


def load_event(session: Session, event_id: int) -> Event | None:
    row = session.get(DomainEvent, event_id)
    if row is None:
        return None
    data = json.loads(row.data) if isinstance(row.data, str) else row.data
    return Event(row.id, row.name, data, row.occurred_at)


def first_receipt(session: Session, subscriber: str, event_id: int) -> bool:
    """Claim (subscriber, event) in the subscriber's transaction: True the first time only. A concurrent second
    delivery waits on the key until the first commits, then gets False."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(EventReceipt.__table__).values(subscriber=subscriber, event_id=event_id,
                                                         applied_at=utcnow()).on_conflict_do_nothing()
    return session.execute(stmt.returning(EventReceipt.event_id)).first() is not None


def receipts_of(session: Session, event_id: int) -> list[str]:
    return list(session.scalars(select(EventReceipt.subscriber).where(EventReceipt.event_id == event_id)))


@job(DELIVER)
def deliver(rt, subscriber_name: str, event_id: int):
    """The outbox job behind every delivery: run one subscriber for one event. An event that is not there (its
    transaction rolled back after all) is nothing to deliver."""
    sub = subscriber_named(subscriber_name)
    if sub is None:
        raise LookupError(f"no subscriber named {subscriber_name!r}")  # retried: a deploy may be half way
    with rt.session() as s:
        event = load_event(s, int(event_id))
    if event is None:
        return "no such event"
    return sub.fn(rt, event)
