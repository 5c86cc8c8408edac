"""The outbox's runner: the RQ jobs that run outbox rows, and the sweeper (see app/outbox for writing rows).

After the outermost commit the rows are handed to RQ (`app.outbox.handoff`); `run_messages` runs each row's
named job and marks it done. RQ is at-least-once at best and a SIGKILLed worker's job is simply gone, so
`sweep()`, run by `python -m workers.scheduler` outside RQ, hands again to RQ every row that is not done:
delayed (`RetryLater`), failed (backoff), or lost by RQ: its job gone from Redis (crash between commit and
enqueue, Redis lost) or started longer than the lease ago without finishing (its worker died).

A row's `dedupe_key` deduplicates live rows: while a row with that key is not done, emitting it again is a
no-op (a partial unique index), so re-driving something already queued costs nothing."""
from __future__ import annotations

import json
import logging
import random
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import bindparam, create_engine, text

from app.db import UTCDateTime, utcnow
from app.health import record_periodic
from app.modules import load_plugins
from app.outbox import RetryLater, outbox_stats, resolve_job
from app.outbox.handoff import alias_key, job_id
from app.runtime import Runtime, get_runtime

log = logging.getLogger(__name__)




def _marker_engine(rt: Runtime):
    """PostgreSQL: a small autocommit pool per process for the runner's own bookkeeping (read the row, mark it
    done): one round trip each, and no WAL flush wait: losing a done marker in a database crash only means
    the (idempotent) job runs once more. None elsewhere."""
    if rt.engine.dialect.name != "postgresql":
        return None
    engine = rt.cache.get("outbox.marker_engine")
    if engine is None:
        engine = rt.cache["outbox.marker_engine"] = create_engine(
            rt.engine.url, pool_size=2, max_overflow=4, isolation_level="AUTOCOMMIT",
            connect_args={"options": "-c synchronous_commit=off"})
    return engine


def run_messages(queue: str, row_ids: list[int], attempts: list[int]) -> str:
    """The RQ job for handed-out rows: each row's job in turn. The rows are read in one query and the finished
    ones marked done in one statement at the end (a worker killed before that only makes those idempotent jobs
    run once more). Rows not reached within half the lease are handed to RQ again (before the sweeper would
    think this job's worker died)."""
    rt = get_runtime()
    load_plugins()
    t0, budget = time.monotonic(), rt.settings.outbox.lease_seconds / 2
    rows = {r.id: r for r in _read(rt, row_ids)}
    ran, finished = 0, []
    try:
        for i, row_id in enumerate(row_ids):
            if i and time.monotonic() - t0 > budget:
                rest = list(zip(row_ids[i:], attempts[i:], strict=True))
                if not rt.inline_jobs:  # they now belong to the new batch job, not to this one
                    rt.redis.delete(*(alias_key(r, a) for r, a in rest))
                rt.handoff.hand_batch(queue, rest)
                return f"ran {ran} of {len(row_ids)} rows ({len(finished)} done); handed {len(rest)} on"
            row = rows.get(row_id)
            if row is None or row.done_at is not None:
                continue  # done by an earlier delivery of the same row: nothing ran
            ran += 1
            if _run(rt, row)[0]:
                finished.append(row_id)
        return f"ran {ran} of {len(row_ids)} rows ({len(finished)} done)"
    finally:
        _mark_done(rt, finished)


def run_job(name: str, *args):
    """RQ entry point for a named job outside the outbox (the scheduler's periodic jobs). Its outcome is
    recorded for /healthz (a periodic job failing in a row degrades it)."""
    rt = get_runtime()
    try:
        result = resolve_job(name).fn(rt, *args)
    except Exception as exc:
        record_periodic(rt.redis, name, exc)
        raise
    record_periodic(rt.redis, name, None)
    return result


_READ = text("SELECT id, func, args, failures, done_at FROM outbox_messages WHERE id IN :ids").bindparams(
    bindparam("ids", expanding=True))
_DONE = text("UPDATE outbox_messages SET done_at = :now WHERE id IN :ids AND done_at IS NULL").bindparams(
    bindparam("ids", expanding=True))


def _read(rt: Runtime, row_ids: list[int]) -> list:
    with (_marker_engine(rt) or rt.engine).connect() as conn:
        return conn.execute(_READ, {"ids": [int(i) for i in row_ids]}).all()


def _mark_done(rt: Runtime, row_ids: list[int]) -> None:
    if not row_ids:
        return
    marker = _marker_engine(rt)
    with (marker.connect() if marker is not None else rt.engine.begin()) as conn:
        conn.execute(_DONE, {"now": utcnow(), "ids": list(row_ids)})


def _run(rt: Runtime, row) -> tuple[bool, object]:
    """Run one row's job. (True, result) when it finished; (False, why) when rescheduled or dead."""
    row_id, name, failures = row.id, row.func, row.failures
    args = json.loads(row.args) if isinstance(row.args, str) else list(row.args or [])  # SQLite: JSON as text
    try:
        result = resolve_job(name).fn(rt, *args)
    except RetryLater as later:
        _reschedule(rt, row_id, later.delay, str(later), failed=False)
        return False, f"retry in {later.delay:.1f}s"
    except Exception as exc:  # the outbox owns retries; RQ's failed registry would only hide it
        log.exception("outbox job %s%r failed", name, tuple(args))
        if failures + 1 >= rt.settings.outbox.max_failures:
            with rt.session() as s:
                s.execute(text("UPDATE outbox_messages SET done_at = :now, dead = true, failures = failures + 1, "
                               "last_error = :err WHERE id = :id AND done_at IS NULL"),
                          {"now": utcnow(), "err": repr(exc)[:500], "id": row_id})
            return False, "dead"
        delay = min(2 ** failures, 300) * (0.5 + random.random())
        _reschedule(rt, row_id, delay, repr(exc), failed=True)
        return False, "failed"
    return True, result


def _reschedule(rt: Runtime, row_id: int, delay: float, why: str, *, failed: bool) -> None:
    with rt.session() as s:
        s.execute(text("UPDATE outbox_messages SET enqueued_at = NULL, available_at = :at, last_error = :err"
                       + (", failures = failures + 1" if failed else "") +
                       " WHERE id = :id AND done_at IS NULL"),
                  {"at": utcnow() + timedelta(seconds=delay), "err": why[:500], "id": row_id})


def _parse_rq_time(raw: bytes | None):
    if not raw:
        return None
    text_ = raw.decode().rstrip("Z")
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(text_, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None


def _lost(rt: Runtime, rows, now, lease: float) -> list[int]:
    """Of rows handed to RQ, those RQ will not finish: job gone (Redis lost, enqueue failed), failed/stopped,
    finished without the row marked done, started longer than the lease ago (its worker died), or marked
    queued but no longer in its queue for longer than the lease (a worker died between dequeuing it and
    starting it: RQ parks it in `<queue>:intermediate` until its own maintenance, minutes later). A job still
    waiting in its queue is left alone however long the queue: handing it out again would only flood it."""
    if rt.inline_jobs:
        return [r[0] for r in rows if r[3] < now - timedelta(seconds=lease)]
    pipe = rt.redis.pipeline(transaction=False)
    for row_id, _queue, attempt, _at in rows:
        pipe.get(alias_key(row_id, attempt))
    job_ids = [a.decode() if a else job_id(r[0], r[2]) for a, r in zip(pipe.execute(), rows, strict=True)]
    pipe = rt.redis.pipeline(transaction=False)
    for batch_job in job_ids:
        pipe.hmget(f"rq:job:{batch_job}", "status", "started_at")
    statuses = pipe.execute()
    waiting: dict[str, set[bytes]] = {}
    lost = []
    for (row_id, queue, _attempt, handed_at), (status, started), batch_job in zip(rows, statuses, job_ids,
                                                                                     strict=True):
        status = status.decode() if status else None
        stale = handed_at < now - timedelta(seconds=lease)
        if status in ("scheduled", "deferred"):
            continue
        if status == "queued":
            if queue not in waiting:
                waiting[queue] = set(rt.redis.lrange(f"rq:queue:{queue}", 0, -1))
            if batch_job.encode() in waiting[queue] or not stale:
                continue
        elif status == "started":
            began = _parse_rq_time(started)
            if began is not None and began > now - timedelta(seconds=lease):
                continue
        lost.append(row_id)
    return lost


def sweep(rt: Runtime | None = None, limit: int = 1000, lease: float | None = None, grace: float = 2.0) -> int:
    """Hand to RQ every row that needs it: never handed out or delayed and now due; or handed out but lost by
    RQ (see `_lost`). Safe to run from several schedulers at once (rows are claimed with SKIP LOCKED)."""
    rt = rt or get_runtime()
    now = utcnow()
    lease = lease if lease is not None else rt.settings.outbox.lease_seconds
    with rt.session() as s:
        postgres = s.get_bind().dialect.name == "postgresql"
        lock = " FOR UPDATE SKIP LOCKED" if postgres else ""
        due = s.execute(text(
            "SELECT id FROM outbox_messages WHERE done_at IS NULL AND enqueued_at IS NULL AND available_at <= :now"
            f" ORDER BY available_at LIMIT :lim{lock}"), {"now": now, "lim": limit}).scalars().all()
        handed = s.execute(text(
            "SELECT id, queue, attempts, enqueued_at FROM outbox_messages WHERE done_at IS NULL"
            f" AND enqueued_at < :old ORDER BY enqueued_at LIMIT :lim{lock}").columns(enqueued_at=UTCDateTime()),
            {"old": now - timedelta(seconds=min(grace, lease)), "lim": limit}).all()  # typed: SQLite gives text
        ids = list(due) + _lost(rt, handed, now, lease)
        rows = s.execute(text(
            "UPDATE outbox_messages SET enqueued_at = :now, attempts = attempts + 1 WHERE id IN :ids "
            "RETURNING id, queue, attempts").bindparams(bindparam("ids", expanding=True)),
            {"now": now, "ids": ids}).all() if ids else []
    rt.handoff.hand(sorted(tuple(r) for r in rows))
    if rows:
        log.info("outbox sweep handed %d rows to RQ (%d due, %d lost by RQ)", len(rows), len(due),
                 len(rows) - len(due))
    return len(rows)


def stats(rt: Runtime | None = None) -> dict:
    with (rt or get_runtime()).session() as s:
        return outbox_stats(s)
