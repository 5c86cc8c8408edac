"""A transactional outbox for RQ jobs, reusable by any domain.

    from workers.outbox import emit, RetryLater
    emit(session, "workers.jobs_payouts.pay_withdrawal", withdrawal.id, queue="payouts", key=f"payout:{id}")

`emit` writes a row in the caller's transaction, so the job exists if and only if the state change committed.
After the commit the row is handed to RQ (`run_message(id)` runs the job function and marks the row done).
RQ is at-least-once at best and a SIGKILLed worker's job is simply gone, so `sweep()` — run by
`python -m workers.scheduler`, outside RQ — hands again to RQ every row that is not done: delayed
(`RetryLater`), failed (backoff), or lost by RQ — its job gone from Redis (crash between commit and enqueue,
Redis lost) or started longer than the lease ago without finishing (its worker died). Job functions must therefore be idempotent and safe to run twice at once.

`key` deduplicates live rows: while a row with that key is not done, emitting it again is a no-op (a partial
unique index), so re-driving something already queued costs nothing."""
from __future__ import annotations

import importlib
import logging
import os
import random
from datetime import timedelta

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from app.db import utcnow
from app.outbox.models import OutboxMessage
from app.runtime import get_runtime

log = logging.getLogger(__name__)
_PENDING = "outbox.pending_ids"


def lease_seconds() -> float:
    """A row handed to RQ longer ago than this without finishing is handed out again."""
    return float(os.environ.get("OUTBOX_LEASE_SECONDS", "60"))


MAX_FAILURES = int(os.environ.get("OUTBOX_MAX_FAILURES", "25"))


def batch_size() -> int:
    """Rows handed to RQ together (one commit's or one sweep's rows of a queue) share one RQ job of up to this
    many rows (`run_messages`), so RQ's own per-job work is paid once per batch. 1 = one job per row."""
    return max(1, int(os.environ.get("OUTBOX_BATCH", "8")))


class RetryLater(Exception):
    """Raised by a job that cannot finish now (unknown outcome, busy, rate limited): run it again in `delay` s.
    Not counted as a failure."""

    def __init__(self, delay: float, why: str = ""):
        super().__init__(why or f"retry in {delay:.1f}s")
        self.delay = max(0.0, float(delay))


def _insert(session: Session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(OutboxMessage.__table__)


def emit(session: Session, func: str, *args, queue: str = "default", key: str | None = None,
         delay: float = 0.0) -> int | None:
    """Write a job in the current transaction; it is handed to RQ after the commit (or by the sweeper).

    Returns the row id, or None when a live row with the same key exists already."""
    now = utcnow()
    immediate = delay <= 0
    stmt = _insert(session).values(
        func=func, args=list(args), queue=queue, dedupe_key=key, attempts=1 if immediate else 0, failures=0,
        available_at=now + timedelta(seconds=max(delay, 0)), enqueued_at=now if immediate else None,
        done_at=None, dead=False, last_error="", created_at=now)
    if key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedupe_key"], index_where=text("done_at IS NULL"))
    row_id = session.execute(stmt.returning(OutboxMessage.__table__.c.id)).scalar()
    if row_id is not None and immediate:
        _after_commit(session).append((row_id, queue, 1))
    return row_id


def _after_commit(session: Session) -> list:
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []

        @event.listens_for(session, "after_commit")
        def _drain(_session):
            batch = list(pending)
            pending.clear()
            hand_many(batch)

        @event.listens_for(session, "after_soft_rollback")
        def _forget(_session, _previous):
            pending.clear()

    return pending


def hand_to_rq(row_id: int, queue: str, attempt: int) -> None:
    """Enqueue `run_message(row_id)`. A failure here loses nothing: the sweeper hands the row out again."""
    from workers.queues import get_queue

    try:
        get_queue(queue).enqueue("workers.outbox.run_message", row_id, job_id=_job_id(row_id, attempt),
                                 result_ttl=0, failure_ttl=86400, job_timeout=600)
    except Exception:
        log.exception("could not enqueue outbox message %s; the sweeper will", row_id)


_engines: dict = {}


def _marker_engine(rt):
    """PostgreSQL: a small autocommit pool per process for the job's own bookkeeping (read the row, mark it
    done): one round trip each, and no WAL flush wait — losing a done marker in a database crash only means
    the (idempotent) job runs once more. None elsewhere."""
    if rt.engine.dialect.name != "postgresql":
        return None
    key = (os.getpid(), id(rt.engine))
    engine = _engines.get(key)
    if engine is None:
        from sqlalchemy import create_engine

        engine = _engines[key] = create_engine(
            rt.engine.url, pool_size=2, max_overflow=4, isolation_level="AUTOCOMMIT",
            connect_args={"options": "-c synchronous_commit=off"})
    return engine


def _alias(row_id: int, attempt: int) -> str:
    """Redis key naming the batch job that carries this row's attempt (for the sweeper's `_lost`)."""
    return f"outbox:batch:{row_id}-{attempt}"


def hand_many(items) -> None:
    """Hand (row_id, queue, attempt) rows to RQ: per queue, in batch jobs of up to `batch_size()` rows."""
    by_queue: dict[str, list[tuple[int, int]]] = {}
    for row_id, queue, attempt in items:
        by_queue.setdefault(queue, []).append((row_id, attempt))
    size = batch_size()
    for queue, rows in by_queue.items():
        for i in range(0, len(rows), size):
            chunk = rows[i:i + size]
            if len(chunk) == 1:
                hand_to_rq(chunk[0][0], queue, chunk[0][1])
            else:
                hand_batch(queue, chunk)


def hand_batch(queue: str, chunk: list[tuple[int, int]]) -> None:
    """One RQ job `run_messages` for several rows. Each row's attempt first names the batch job in Redis, so the
    sweeper judges every row by the batch job's fate (gone, failed, started too long ago) exactly as it judges a
    single job. A failure here loses nothing: the sweeper hands the rows out again."""
    import secrets

    from workers.queues import get_queue

    rt = get_runtime()
    row_ids, attempts = [r for r, _ in chunk], [a for _, a in chunk]
    job_id = f"outbox-batch-{row_ids[0]}-{attempts[0]}-{secrets.token_hex(4)}"
    try:
        if not rt.inline_jobs:
            pipe = rt.redis.pipeline(transaction=False)
            for row_id, attempt in chunk:
                pipe.set(_alias(row_id, attempt), job_id, ex=86400)
            pipe.execute()
        get_queue(queue).enqueue("workers.outbox.run_messages", queue, row_ids, attempts, job_id=job_id,
                                 result_ttl=0, failure_ttl=86400, job_timeout=600)
    except Exception:
        log.exception("could not enqueue outbox messages %s; the sweeper will", row_ids)


def run_messages(queue: str, row_ids: list[int], attempts: list[int]) -> str:
    """The RQ job for a batch: each row's job in turn. The rows are read in one query and the finished ones
    marked done in one statement at the end (a worker killed before that only makes those idempotent jobs run
    once more). Rows not reached within half the lease are handed to RQ again as a new batch (before the
    sweeper would think this job's worker died)."""
    import time

    rt = get_runtime()
    t0, budget = time.monotonic(), lease_seconds() / 2
    rows = {r.id: r for r in _read(rt, row_ids)}
    finished: list[int] = []
    try:
        for i, row_id in enumerate(row_ids):
            if i and time.monotonic() - t0 > budget:
                hand_batch(queue, list(zip(row_ids[i:], attempts[i:])))
                return f"ran {i} of {len(row_ids)}; handed the rest on"
            row = rows.get(row_id)
            if row is not None and row.done_at is None and _run(rt, row)[0]:
                finished.append(row_id)
        return f"ran {len(row_ids)}"
    finally:
        _mark_done(rt, finished)


def run_message(row_id: int):
    """The RQ job: run the row's function, then mark it done (or reschedule it)."""
    rt = get_runtime()
    rows = _read(rt, [row_id])
    if not rows or rows[0].done_at is not None:
        return "done already"
    ok, result = _run(rt, rows[0])
    if ok:
        _mark_done(rt, [row_id])
    return result


def _read(rt, row_ids: list[int]) -> list:
    from sqlalchemy import bindparam

    q = text("SELECT id, func, args, failures, done_at FROM outbox_messages WHERE id IN :ids").bindparams(
        bindparam("ids", expanding=True))
    with (_marker_engine(rt) or rt.engine).connect() as conn:
        return conn.execute(q, {"ids": [int(i) for i in row_ids]}).all()


def _mark_done(rt, row_ids: list[int]) -> None:
    """Losing these markers in a database crash only means the (idempotent) jobs run once more."""
    if not row_ids:
        return
    from sqlalchemy import bindparam

    done = text("UPDATE outbox_messages SET done_at = :now WHERE id IN :ids AND done_at IS NULL").bindparams(
        bindparam("ids", expanding=True))
    marker = _marker_engine(rt)
    if marker is not None:
        with marker.connect() as conn:
            conn.execute(done, {"now": utcnow(), "ids": list(row_ids)})
    else:
        with rt.engine.begin() as conn:
            conn.execute(done, {"now": utcnow(), "ids": list(row_ids)})


def _run(rt, row) -> tuple[bool, object]:
    """Run one row's function. (True, result) when it finished; (False, why) when rescheduled or dead."""
    row_id, func, args, failures = row.id, row.func, list(row.args or []), row.failures
    if isinstance(row.args, str):  # SQLite returns JSON text through a plain text() query
        import json

        args = json.loads(row.args)
    module, _, name = func.rpartition(".")
    try:
        result = getattr(importlib.import_module(module), name)(*args)
    except RetryLater as later:
        _reschedule(row_id, later.delay, str(later), failed=False)
        return False, f"retry in {later.delay:.1f}s"
    except Exception as exc:  # the outbox owns retries; RQ's failed registry would only hide it
        log.exception("outbox job %s%r failed", func, tuple(args))
        if failures + 1 >= MAX_FAILURES:
            with rt.session() as s:
                s.execute(text("UPDATE outbox_messages SET done_at = :now, dead = true, failures = failures + 1, "
                               "last_error = :err WHERE id = :id AND done_at IS NULL"),
                          {"now": utcnow(), "err": repr(exc)[:500], "id": row_id})
            return False, "dead"
        delay = min(2 ** failures, 300) * (0.5 + random.random())
        _reschedule(row_id, delay, repr(exc), failed=True)
        return False, "failed"
    return True, result


def _reschedule(row_id: int, delay: float, why: str, *, failed: bool) -> None:
    with get_runtime().session() as s:
        s.execute(text("UPDATE outbox_messages SET enqueued_at = NULL, available_at = :at, last_error = :err"
                       + (", failures = failures + 1" if failed else "") +
                       " WHERE id = :id AND done_at IS NULL"),
                  {"at": utcnow() + timedelta(seconds=delay), "err": why[:500], "id": row_id})


def _job_id(row_id: int, attempt: int) -> str:
    return f"outbox-{row_id}-{attempt}"


def _parse_rq_time(raw: bytes | None):
    from datetime import datetime, timezone

    if not raw:
        return None
    text_ = raw.decode().rstrip("Z")
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(text_, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None


def _lost(rt, rows, now, lease: float) -> list[int]:
    """Of rows handed to RQ, those RQ will not finish: job gone (Redis lost, enqueue failed), failed/stopped,
    finished without the row marked done, started longer than the lease ago (its worker died), or marked
    queued but no longer in its queue for longer than the lease (a worker died between dequeuing it and
    starting it: RQ parks it in `<queue>:intermediate` until its own maintenance, minutes later). A job still
    waiting in its queue is left alone however long the queue: handing it out again would only flood it."""
    if rt.inline_jobs:
        return [r[0] for r in rows if r[3] < now - timedelta(seconds=lease)]
    pipe = rt.redis.pipeline(transaction=False)
    for row_id, _queue, attempt, _at in rows:
        pipe.hmget(f"rq:job:{_job_id(row_id, attempt)}", "status", "started_at")
        pipe.get(_alias(row_id, attempt))
    answers = pipe.execute()
    job_ids = [_job_id(row_id, attempt) for row_id, _queue, attempt, _at in rows]
    statuses = answers[0::2]
    in_batch = [(i, alias.decode()) for i, (st, alias) in enumerate(zip(statuses, answers[1::2]))
                if st[0] is None and alias]
    if in_batch:  # the row went out in a batch job: judge it by that job
        pipe = rt.redis.pipeline(transaction=False)
        for _i, batch_id in in_batch:
            pipe.hmget(f"rq:job:{batch_id}", "status", "started_at")
        for (i, batch_id), st in zip(in_batch, pipe.execute()):
            statuses[i], job_ids[i] = st, batch_id
    waiting: dict[str, set[bytes]] = {}
    lost = []
    for (row_id, queue, attempt, handed_at), (status, started), job_id in zip(rows, statuses, job_ids):
        status = status.decode() if status else None
        stale = handed_at < now - timedelta(seconds=lease)
        if status in ("scheduled", "deferred"):
            continue
        if status == "queued":
            if queue not in waiting:
                waiting[queue] = set(rt.redis.lrange(f"rq:queue:{queue}", 0, -1))
            if job_id.encode() in waiting[queue] or not stale:
                continue
        elif status == "started":
            began = _parse_rq_time(started)
            if began is not None and began > now - timedelta(seconds=lease):
                continue
        lost.append(row_id)
    return lost


def sweep(limit: int = 1000, lease: float | None = None, grace: float = 2.0) -> int:
    """Hand to RQ every row that needs it: never handed out or delayed and now due; or handed out but lost by
    RQ (see `_lost`). Safe to run from several schedulers at once (rows are claimed with SKIP LOCKED)."""
    rt = get_runtime()
    now = utcnow()
    lease = lease if lease is not None else lease_seconds()
    with rt.session() as s:
        lock = " FOR UPDATE SKIP LOCKED" if s.get_bind().dialect.name == "postgresql" else ""
        due = s.execute(text(
            "SELECT id FROM outbox_messages WHERE done_at IS NULL AND enqueued_at IS NULL AND available_at <= :now"
            f" ORDER BY available_at LIMIT :lim{lock}"), {"now": now, "lim": limit}).scalars().all()
        handed = s.execute(text(
            "SELECT id, queue, attempts, enqueued_at FROM outbox_messages WHERE done_at IS NULL"
            f" AND enqueued_at < :old ORDER BY enqueued_at LIMIT :lim{lock}"),
            {"old": now - timedelta(seconds=min(grace, lease)), "lim": limit}).all()
        ids = list(due) + _lost(rt, handed, now, lease)
        rows = s.execute(text(
            "UPDATE outbox_messages SET enqueued_at = :now, attempts = attempts + 1 WHERE id = ANY(:ids) "
            "RETURNING id, queue, attempts") if s.get_bind().dialect.name == "postgresql" else text(
            "UPDATE outbox_messages SET enqueued_at = :now, attempts = attempts + 1 WHERE id IN "
            f"({','.join(str(int(i)) for i in ids) or 'NULL'}) RETURNING id, queue, attempts"),
            {"now": now, "ids": ids}).all() if ids else []
    hand_many(sorted(rows))
    if rows:
        log.info("outbox sweep handed %d messages to RQ (%d due, %d lost by RQ)", len(rows), len(due),
                 len(rows) - len(due))
    return len(rows)


def stats() -> dict:
    with get_runtime().session() as s:
        row = s.execute(text(
            "SELECT COUNT(*) FILTER (WHERE done_at IS NULL), COUNT(*) FILTER (WHERE dead), "
            "COUNT(*) FILTER (WHERE done_at IS NULL AND enqueued_at IS NULL) FROM outbox_messages")).one() \
            if s.get_bind().dialect.name == "postgresql" else s.execute(text(
                "SELECT SUM(done_at IS NULL), SUM(dead), SUM(done_at IS NULL AND enqueued_at IS NULL) "
                "FROM outbox_messages")).one()
    return {"live": int(row[0] or 0), "dead": int(row[1] or 0), "waiting": int(row[2] or 0)}
