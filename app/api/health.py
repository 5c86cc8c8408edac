from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Dict
from sqlalchemy import text

from app.api.web import db, runtime
from app.outbox import outbox_stats
from app.outbox.jobs import QUEUES

bp = APIBlueprint("health", __name__, tag="health")


class HealthOut(Schema):
    ok = Boolean()
    checks = Dict(metadata={"description": "database, redis, queues, outbox: each {ok, ...details}"})


@bp.get("/healthz")
@bp.doc(summary="Database, Redis and queue reachability",
        responses={200: {"description": "all reachable", "content": {"application/json": {"schema": HealthOut}}},
                   503: {"description": "something is down (the same report)",
                         "content": {"application/json": {"schema": HealthOut}}}})
def healthz():
    checks: dict[str, dict] = {}
    rt = runtime()
    try:
        db().execute(text("SELECT 1"))
        checks["database"] = {"ok": True, "backend": rt.engine.dialect.name}
    except Exception as exc:  # report, never raise: this endpoint exists to say what is down
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    try:
        rt.redis.ping()
        checks["redis"] = {"ok": True, "embedded": rt.settings.redis_url is None}
    except Exception as exc:
        checks["redis"] = {"ok": False, "error": type(exc).__name__}
    try:
        depth = {name: rt.handoff.queue(name).count for name in QUEUES}
        checks["queues"] = {"ok": True, "inline": rt.inline_jobs, "depth": depth}
    except Exception as exc:
        checks["queues"] = {"ok": False, "error": type(exc).__name__}
    try:  # dead rows are work a human must look at, not an outage: reported, not failing the check
        checks["outbox"] = {"ok": True, **outbox_stats(db())}
    except Exception as exc:
        checks["outbox"] = {"ok": False, "error": type(exc).__name__}
    ok = all(c["ok"] for c in checks.values())
    return {"ok": ok, "checks": checks}, (200 if ok else 503)
