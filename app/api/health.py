from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Dict, List, String
from sqlalchemy import text

from app.api.web import db, runtime
from app.db import utcnow
from app.health import outbox_check, periodic_check, scheduler_check
from app.outbox import outbox_stats
from app.outbox.jobs import QUEUES

bp = APIBlueprint("health", __name__, tag="health")


class HealthOut(Schema):
    ok = Boolean()
    checks = Dict(metadata={"description": "database, redis, queues, scheduler, outbox: each {ok, ...details}"})
    reasons = List(String(), metadata={"description": "what is down or degraded (when ok is false)"})


@bp.get("/healthz")
@bp.doc(summary="Database, Redis, queues, the scheduler and the outbox: reachable and keeping up",
        description="503 with `ok: false` when something is down or degraded; `reasons` says what, and each "
                    "failing check carries its own `reason`. Degraded: the scheduler has not ticked within "
                    "HEALTH_SCHEDULER_STALE_SECONDS; a periodic job or an outbox job failed HEALTH_JOB_FAILURES "
                    "times in a row; an outbox job was given up on (dead) within HEALTH_DEAD_WINDOW_SECONDS; more "
                    "than HEALTH_OUTBOX_BACKLOG outbox rows are due, or the oldest has waited longer than "
                    "HEALTH_OUTBOX_OLDEST_SECONDS.",
        responses={200: {"description": "all reachable and keeping up",
                          "content": {"application/json": {"schema": HealthOut}}},
                   503: {"description": "something is down or degraded (the same report; see `reasons`)",
                         "content": {"application/json": {"schema": HealthOut}}}})
def healthz():
    checks: dict[str, dict] = {}
    rt = runtime()
    cfg = rt.settings.health
    try:
        db().execute(text("SELECT 1"))
        checks["database"] = {"ok": True, "backend": rt.engine.dialect.name}
    except Exception as exc:  # report, never raise: this endpoint exists to say what is down
        checks["database"] = {"ok": False, "error": type(exc).__name__, "reason": "the database does not answer"}
    try:
        rt.redis.ping()
        checks["redis"] = {"ok": True, "embedded": rt.settings.redis_url is None}
    except Exception as exc:
        checks["redis"] = {"ok": False, "error": type(exc).__name__, "reason": "Redis does not answer"}
    try:
        depth = {name: rt.handoff.queue(name).count for name in QUEUES}
        checks["queues"] = {"ok": True, "inline": rt.inline_jobs, "depth": depth}
    except Exception as exc:
        checks["queues"] = {"ok": False, "error": type(exc).__name__, "reason": "the RQ queues cannot be read"}
    for name, check in (("scheduler", lambda: scheduler_check(rt.redis, cfg)),
                        ("periodic_jobs", lambda: periodic_check(rt.redis, cfg))):
        try:
            checks[name] = check()
        except Exception as exc:
            checks[name] = {"ok": False, "error": type(exc).__name__, "reason": f"{name} cannot be judged"}
    try:
        checks["outbox"] = {**outbox_stats(db()), **outbox_check(db(), cfg, utcnow())}
    except Exception as exc:
        checks["outbox"] = {"ok": False, "error": type(exc).__name__, "reason": "the outbox cannot be read"}
    ok = all(c["ok"] for c in checks.values())
    out = {"ok": ok, "checks": checks}
    if not ok:
        out["reasons"] = [f"{name}: {c['reason']}" for name, c in checks.items() if not c["ok"]]
    return out, (200 if ok else 503)
