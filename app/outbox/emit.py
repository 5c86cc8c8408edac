"""Writing outbox rows in the caller's transaction."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import json_param, utcnow
from app.outbox.after_commit import hand_after_commit
from app.outbox.jobs import resolve_job
from app.outbox.models import OutboxMessage


class RetryLater(Exception):
    """Raised by a job that cannot finish now (unknown outcome, busy, rate limited): run it again in `delay` s.
    Not counted as a failure."""

    def __init__(self, delay: float, why: str = ""):
        super().__init__(why or f"retry in {delay:.1f}s")
        self.delay = max(0.0, float(delay))


def _insert(session: Session):
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(OutboxMessage.__table__)


def emit(session: Session, job: str, *args, queue: str | None = None, key: str | None = None,
         delay: float = 0.0) -> int | None:
    """Write a job in the current transaction; it is handed to RQ after the outermost commit (or by the sweeper).

    Returns the row id, or None when a live row with the same key exists already."""
    ids = emit_many(session, [(job, list(args), key)], queue=queue, delay=delay)
    return ids[0] if ids else None


# PostgreSQL: the rows as one JSON parameter. Bound row by row, a batch of hundreds (the binder queues a follower
# lookup per new member) cost ~50 µs of client CPU per row in building and converting the statement; this text is
# the same for every batch. Rows come back in the order given (`ord`).
_EMIT_PG = text("""
    INSERT INTO outbox_messages (func, args, queue, dedupe_key, attempts, failures, available_at, enqueued_at,
                                 done_at, dead, last_error, created_at)
    SELECT r.func, r.args, r.queue, r.key, :attempts, 0, CAST(:available_at AS timestamptz),
           CAST(:enqueued_at AS timestamptz), NULL, false, '', CAST(:now AS timestamptz)
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(ord int, func text, args jsonb, queue text, key text)
    ORDER BY r.ord
    ON CONFLICT (dedupe_key) WHERE done_at IS NULL DO NOTHING
    RETURNING id, queue
""")


def emit_many(session: Session, rows: list[tuple[str, list, str | None]], *, queue: str | None = None,
              delay: float = 0.0) -> list[int]:
    """Write several jobs (name, args, dedupe key) in one statement. Returns the ids of the rows written (rows
    whose key is live already are skipped). `queue` overrides each job's registered queue."""
    if not rows:
        return []
    now = utcnow()
    immediate = delay <= 0
    queues = {name: queue or resolve_job(name).queue for name, _a, _k in rows}
    available_at, enqueued_at, attempts = now + timedelta(seconds=max(delay, 0)), now if immediate else None, \
        1 if immediate else 0
    if session.get_bind().dialect.name == "postgresql":
        written = session.execute(_EMIT_PG, {
            "now": now, "available_at": available_at, "enqueued_at": enqueued_at, "attempts": attempts,
            "rows": json_param([{"ord": i, "func": name, "args": list(args), "queue": queues[name], "key": key}
                                for i, (name, args, key) in enumerate(rows)])}).all()
    else:
        values = [{"func": name, "args": list(args), "queue": queues[name], "dedupe_key": key, "attempts": attempts,
                   "failures": 0, "available_at": available_at, "enqueued_at": enqueued_at, "done_at": None,
                   "dead": False, "last_error": "", "created_at": now} for name, args, key in rows]
        stmt = _insert(session).on_conflict_do_nothing(index_elements=["dedupe_key"],
                                                       index_where=text("done_at IS NULL"))
        table = OutboxMessage.__table__
        written = session.execute(stmt.returning(table.c.id, table.c.queue), values).all() if len(values) > 1 else \
            session.execute(stmt.values(values[0]).returning(table.c.id, table.c.queue)).all()
    if immediate:
        for row_id, q in written:
            hand_after_commit(session, row_id, q)
    return [row_id for row_id, _q in written]


def outbox_stats(session: Session) -> dict:
    """Rows not done yet, rows given up on (dead: a job that failed OUTBOX_MAX_FAILURES times), and rows waiting
    for their time (retries, delayed jobs)."""
    row = session.execute(text(
        "SELECT SUM(CASE WHEN done_at IS NULL THEN 1 ELSE 0 END), SUM(CASE WHEN dead THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN done_at IS NULL AND enqueued_at IS NULL THEN 1 ELSE 0 END) FROM outbox_messages")).one()
    return {"live": int(row[0] or 0), "dead": int(row[1] or 0), "waiting": int(row[2] or 0)}
