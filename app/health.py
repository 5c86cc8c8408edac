"""What /healthz judges beyond "it answers": the signals the processes leave in Redis (the scheduler's heartbeat,
periodic jobs failing in a row) and the outbox's figures, each against a threshold of `HealthSettings`.

Writers: `workers.scheduler.tick` records its heartbeat and each periodic job's outcome here (so does the RQ
shell of a periodic job, `workers.outbox.run_job`). Reader: `app/api/health.py`. Every check returns a dict
with `ok`, its figures and, when not ok, a `reason` a person can act on."""
from __future__ import annotations

import time
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import HealthSettings
from app.outbox.models import OutboxMessage

HEARTBEAT_KEY = "health:scheduler:last_tick"  # epoch seconds of the last tick of any scheduler
FAILURES_KEY = "health:periodic:failures"  # hash: periodic job -> failures in a row
ERRORS_KEY = "health:periodic:last_error"  # hash: periodic job -> the last failure's error


def record_tick(redis, now: float | None = None) -> None:
    """The scheduler is alive: called on every tick, whether or not a job was due."""
    redis.set(HEARTBEAT_KEY, repr(time.time() if now is None else now))


def record_periodic(redis, name: str, error: BaseException | None) -> None:
    """A periodic job's run ended: a success clears its count, a failure adds one."""
    if error is None:
        redis.hdel(FAILURES_KEY, name)
        return
    pipe = redis.pipeline(transaction=False)
    pipe.hincrby(FAILURES_KEY, name, 1)
    pipe.hset(ERRORS_KEY, name, repr(error)[:300])
    pipe.execute()


def scheduler_check(redis, cfg: HealthSettings, now: float | None = None) -> dict:
    raw = redis.get(HEARTBEAT_KEY)
    now = time.time() if now is None else now
    if raw is None:
        return {"ok": False, "last_tick_age_s": None,
                "reason": "the scheduler has never run (start `python -m workers.scheduler`, or EMBEDDED_SCHEDULER=1 "
                          "without REDIS_URL)"}
    age = max(0.0, now - float(raw))
    out = {"ok": age <= cfg.scheduler_stale, "last_tick_age_s": round(age, 1)}
    if not out["ok"]:
        out["reason"] = f"the scheduler last ran {age:.0f} s ago (more than {cfg.scheduler_stale:g} s)"
    return out


def periodic_check(redis, cfg: HealthSettings) -> dict:
    failing = {k.decode(): int(v) for k, v in redis.hgetall(FAILURES_KEY).items()}
    bad = {name: n for name, n in failing.items() if n >= cfg.job_failures}
    out = {"ok": not bad, "failing": failing}
    if bad:
        errors = redis.hmget(ERRORS_KEY, list(bad))
        out["reason"] = "periodic jobs failing: " + "; ".join(
            f"{name} {n} times in a row ({(err or b'').decode()[:120]})" for (name, n), err in zip(bad.items(), errors,
                                                                                                     strict=True))
    return out


def outbox_check(session: Session, cfg: HealthSettings, now: datetime) -> dict:
    """Backlog (rows due and not done), its oldest row's wait, rows failing in a row, rows given up on."""
    m = OutboxMessage
    live = m.done_at.is_(None)
    due_n, oldest = session.execute(select(func.count(), func.min(m.available_at))
                                    .where(live, m.available_at <= now)).one()
    failing = session.scalar(select(func.count()).where(live, m.failures >= cfg.job_failures))
    recent_dead = session.scalar(select(func.count()).where(
        m.dead.is_(True), m.done_at >= now - timedelta(seconds=cfg.dead_window)))
    oldest_age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    out = {"due": int(due_n), "oldest_due_s": round(oldest_age, 1), "failing": int(failing or 0),
           "recent_dead": int(recent_dead or 0)}
    reasons = []
    if out["due"] > cfg.outbox_backlog:
        reasons.append(f"{out['due']} outbox rows due and not done (more than {cfg.outbox_backlog})")
    if oldest_age > cfg.outbox_oldest:
        reasons.append(f"the oldest due outbox row has waited {oldest_age:.0f} s (more than {cfg.outbox_oldest:g} s)")
    if out["failing"]:
        reasons.append(f"{out['failing']} outbox jobs failed {cfg.job_failures} or more times in a row")
    if out["recent_dead"]:
        reasons.append(f"{out['recent_dead']} outbox jobs given up on (dead) in the last {cfg.dead_window:g} s")
    out["ok"] = not reasons
    if reasons:
        out["reason"] = "; ".join(reasons)
    return out
