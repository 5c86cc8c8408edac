"""/healthz tells the truth: degraded (503, `ok: false`, with reasons) when the scheduler stops ticking, a job
keeps failing or is given up on, or the outbox falls behind; ok again when that is over."""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import text

from app.db import utcnow
from app.health import record_periodic, record_tick
from app.outbox import emit
from app.outbox.jobs import Job, _jobs
from workers.outbox import run_job
from workers.scheduler import Periodic, tick


def _health(client):
    r = client.get("/healthz")
    body = r.get_json()
    assert (r.status_code == 200) == body["ok"]
    return body


def _tune(rt, **changes):
    rt.settings = rt.settings.with_(health=replace(rt.settings.health, **changes))


def test_without_a_scheduler_healthz_is_degraded_and_says_why(client, rt):
    body = _health(client)
    assert body["ok"] is False and body["checks"]["scheduler"]["ok"] is False
    assert any(r.startswith("scheduler: the scheduler has never run") for r in body["reasons"])
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]

    tick(rt, jobs=[Periodic("noop", 60.0, inline=lambda r: None)])
    assert _health(client)["ok"] is True


def test_a_scheduler_that_stopped_ticking_degrades_healthz(client, rt):
    _tune(rt, scheduler_stale=30.0)
    record_tick(rt.redis, time.time() - 31)
    body = _health(client)
    assert body["ok"] is False and body["checks"]["scheduler"]["last_tick_age_s"] >= 31
    assert "more than 30 s" in body["checks"]["scheduler"]["reason"]
    record_tick(rt.redis)
    assert _health(client)["ok"] is True


def test_a_periodic_job_failing_again_and_again_degrades_healthz_until_it_succeeds(client, rt):
    record_tick(rt.redis)
    _tune(rt, job_failures=3)
    calls = {"n": 0}

    def flaky(_rt):
        calls["n"] += 1
        if calls["n"] <= 3:
            raise RuntimeError("WeChat said no")

    job = [Periodic("flaky", 1.0, inline=flaky)]
    for slot in range(2):
        tick(rt, now=1000.0 + slot, jobs=job)
    body = _health(client)
    assert body["ok"] is True and body["checks"]["periodic_jobs"]["failing"] == {"flaky": 2}
    tick(rt, now=1002.0, jobs=job)
    body = _health(client)
    assert body["ok"] is False
    assert "flaky 3 times in a row" in body["checks"]["periodic_jobs"]["reason"]
    assert "WeChat said no" in body["checks"]["periodic_jobs"]["reason"]
    tick(rt, now=1003.0, jobs=job)  # it works again
    assert _health(client)["ok"] is True


def test_periodic_jobs_run_by_rq_record_their_outcome_too(client, rt, monkeypatch):
    record_tick(rt.redis)
    _tune(rt, job_failures=1)

    def broken(_rt):
        raise RuntimeError("boom")

    monkeypatch.setitem(_jobs, "grades.evaluate_all", Job("grades.evaluate_all", broken, "default"))
    with pytest.raises(RuntimeError):
        run_job("grades.evaluate_all")  # what an RQ worker runs for the scheduler's enqueued job
    body = _health(client)
    assert body["ok"] is False and body["checks"]["periodic_jobs"]["failing"] == {"grades.evaluate_all": 1}
    record_periodic(rt.redis, "grades.evaluate_all", None)
    assert _health(client)["ok"] is True


def test_outbox_jobs_failing_repeatedly_or_dead_degrade_healthz(client, rt, session):
    record_tick(rt.redis)
    _tune(rt, job_failures=5, dead_window=3600.0)
    emit(session, "grades.evaluate_all", key="failing")
    session.commit()
    session.execute(text("UPDATE outbox_messages SET failures = 5, enqueued_at = NULL, available_at = :later"),
                    {"later": utcnow() + timedelta(minutes=5)})  # waiting for its next retry
    session.commit()
    body = _health(client)
    assert body["ok"] is False and body["checks"]["outbox"]["failing"] == 1
    assert "1 outbox jobs failed 5 or more times in a row" in body["checks"]["outbox"]["reason"]

    session.execute(text("UPDATE outbox_messages SET done_at = :now, dead = true"), {"now": utcnow()})
    session.commit()
    body = _health(client)
    assert body["ok"] is False and body["checks"]["outbox"]["recent_dead"] == 1
    assert "given up on (dead)" in body["checks"]["outbox"]["reason"]

    session.execute(text("UPDATE outbox_messages SET done_at = :then"), {"then": utcnow() - timedelta(hours=2)})
    session.commit()
    body = _health(client)  # given up on long ago: still counted, no longer degrading
    assert body["ok"] is True and body["checks"]["outbox"]["dead"] == 1


def test_an_outbox_backlog_or_an_old_due_row_degrades_healthz(client, rt, session):
    record_tick(rt.redis)
    _tune(rt, outbox_backlog=2, outbox_oldest=60.0)
    for i in range(3):
        emit(session, "grades.evaluate_all", key=f"backlog-{i}")
    session.commit()  # handed to RQ (no worker runs here): due and not done
    body = _health(client)
    assert body["ok"] is False and body["checks"]["outbox"]["due"] == 3
    assert "3 outbox rows due and not done (more than 2)" in body["checks"]["outbox"]["reason"]

    _tune(rt, outbox_backlog=10)
    assert _health(client)["ok"] is True
    session.execute(text("UPDATE outbox_messages SET available_at = :old WHERE dedupe_key = 'backlog-0'"),
                    {"old": utcnow() - timedelta(seconds=90)})
    session.commit()
    body = _health(client)
    assert body["ok"] is False and body["checks"]["outbox"]["oldest_due_s"] >= 90
    assert "the oldest due outbox row has waited" in body["reasons"][0]

    session.execute(text("UPDATE outbox_messages SET available_at = :later"), {"later": utcnow() + timedelta(hours=1)})
    session.commit()  # delayed rows (a retry's backoff, a payout's recheck) are not a backlog
    body = _health(client)
    assert body["ok"] is True and body["checks"]["outbox"]["due"] == 0 and body["checks"]["outbox"]["live"] == 3
