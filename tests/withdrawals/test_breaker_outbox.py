"""Pausing payouts (operators, circuit breaker), the shared rate limiter and the generic outbox."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text

from app.audit.models import AuditEntry
from app.withdrawals.models import Withdrawal
from app.withdrawals.service import request_withdrawal
from app.outbox import emit, emit_many, job
from app.outbox.models import OutboxMessage
from tests.conftest import outbox_due_now
from tests.withdrawals.conftest import set_rule
from workers.outbox import stats, sweep

pytestmark = pytest.mark.sqlite  # also runs on SQLite (embedded mode): LIEBIAN_TEST_DB=sqlite


@pytest.fixture(autouse=True)
def _auto_approve(session):
    set_rule(session, auto_approve_below_fen=1_000_000, daily_count=100)


def withdraw(rt, member, amount, key):
    with rt.session() as s:
        return request_withdrawal(s, member.id, amount, key, appid=rt.settings.wechat_miniapp_id)[0].id


def states(rt):
    with rt.sessions() as s:
        return dict(s.execute(select(Withdrawal.id, Withdrawal.state)).all())


def test_operator_pause_holds_new_bills_and_resume_sends_them(rt, session, client, emulator, partner,
                                                              operator_headers, work):
    r = client.post("/api/admin/payouts/pause", json={"reason": "月末对账"}, headers=operator_headers)
    assert r.get_json()["paused"] is True
    wid = withdraw(rt, partner, 5_000, "a")
    work()
    assert states(rt)[wid] == "APPROVED" and emulator.pay.ledger()["bills"] == []
    r = client.post("/api/admin/payouts/resume", json={"reason": "对账完成"}, headers=operator_headers)
    assert r.get_json()["paused"] is False
    work()
    assert states(rt)[wid] == "WAIT_USER_CONFIRM"
    actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert [a for a in actions if a.startswith("payouts.")] == ["payouts.pause", "payouts.resume"]


def test_breaker_pauses_when_the_daily_total_would_be_crossed(rt, session, client, emulator, partner_factory,
                                                             operator_headers, work):
    client.patch("/api/admin/payouts/limits", json={"daily_total_limit_fen": 15_000}, headers=operator_headers)
    a, b = partner_factory(), partner_factory()
    first, second = withdraw(rt, a, 10_000, "a"), withdraw(rt, b, 10_000, "b")
    work()
    assert states(rt) == {first: "WAIT_USER_CONFIRM", second: "APPROVED"}
    status = client.get("/api/admin/payouts", headers=operator_headers).get_json()
    assert status["paused"] and status["paused_by"] == "system:breaker" and "daily total" in status["paused_reason"]
    assert len(emulator.pay.ledger()["bills"]) == 1


def test_breaker_pauses_on_a_high_failure_rate(rt, session, client, emulator, partner_factory, operator_headers, work):
    client.patch("/api/admin/payouts/limits", json={"failure_rate_limit_bps": 5_000, "failure_min_count": 2},
                 headers=operator_headers)
    strangers = [partner_factory(in_wechat=False) for _ in range(2)]  # WeChat refuses both: OPENID_MISMATCH
    for i, m in enumerate(strangers):
        withdraw(rt, m, 1_000, f"s{i}")
    work()
    assert set(states(rt).values()) == {"FAIL"}
    status = client.get("/api/admin/payouts", headers=operator_headers).get_json()
    assert status["paused"] and "failure rate 2/2" in status["paused_reason"]


def test_rate_limiter_is_shared_through_redis(redis):
    from app.withdrawals.ratelimit import RateLimiter

    # A slow rate so that no interval can pass during the test: exactly the burst goes through.
    one = RateLimiter(redis, "test:rate", rate_per_s=0.2, burst=5)
    other = RateLimiter(redis, "test:rate", rate_per_s=0.2, burst=5)  # another worker process, same merchant
    granted = [lim.try_acquire() == 0 for lim in (one, other) * 10]
    assert granted.count(True) == 5
    assert 0 < other.try_acquire() <= 5.0  # the next request waits about one interval


def test_outbox_job_exists_only_if_the_transaction_committed(rt, session, redis, work):
    with rt.sessions() as s:
        emit(s, "tests.remember_in_redis", "rolled back", key="x")
        s.rollback()
    with rt.session() as s:
        emit(s, "tests.remember_in_redis", "committed", key="y")
        assert emit(s, "tests.remember_in_redis", "committed", key="y") is None  # live key
    work()
    assert [v.decode() for v in redis.lrange("test:remembered", 0, -1)] == ["committed"]
    assert stats(rt) == {"live": 0, "dead": 0, "waiting": 0}


def test_a_batch_of_jobs_skips_live_keys_keeps_its_order_and_runs_each_once(rt, session, redis, work):
    """emit_many (the binder queues a follower lookup per new member this way): a key already live, or repeated
    in the same batch, is written once; the ids come back in the order given; a delayed batch waits."""
    with rt.session() as s:
        live = emit(s, "tests.remember_in_redis", "earlier", key="k:1")
    with rt.session() as s:
        job_ = "tests.remember_in_redis"
        ids = emit_many(s, [(job_, [f"v{i}"], f"k:{i}") for i in range(1, 6)]
                        + [(job_, ["v3 again"], "k:3"), (job_, ["no key"], None)])
        later = emit_many(s, [("tests.remember_in_redis", ["later"], "k:later")], delay=3600)
    assert len(ids) == 5 and live not in ids and ids == sorted(ids)  # k:1 live, the second k:3 skipped
    m = OutboxMessage
    with rt.sessions() as s:
        rows = s.execute(select(m.args, m.dedupe_key, m.attempts, m.enqueued_at.is_not(None))
                         .where(m.id.in_(ids)).order_by(m.id)).all()
        waiting = s.execute(select(m.attempts, m.enqueued_at).where(m.dedupe_key == "k:later")).one()
    assert [tuple(r) for r in rows] == [(["v2"], "k:2", 1, True), (["v3"], "k:3", 1, True), (["v4"], "k:4", 1, True),
                                        (["v5"], "k:5", 1, True), (["no key"], None, 1, True)]
    assert len(later) == 1 and tuple(waiting) == (0, None)
    work()
    assert sorted(v.decode() for v in redis.lrange("test:remembered", 0, -1)) == \
        ["earlier", "no key", "v2", "v3", "v4", "v5"]
    assert stats(rt)["live"] == 1  # the delayed one


def test_outbox_retries_a_failing_job_until_it_succeeds(rt, session, redis, work):
    redis.set("test:fail_times", 2)
    with rt.session() as s:
        row = emit(s, "tests.flaky_in_redis", key="flaky")
    for _ in range(3):
        work()
        with rt.session() as s:
            outbox_due_now(s)
    with rt.sessions() as s:
        failures, done = s.execute(text("SELECT failures, done_at IS NOT NULL FROM outbox_messages WHERE id = :id"),
                                   {"id": row}).one()
    assert (failures, done) == (2, True)
    assert redis.get("test:flaky_ok") == b"1"


def test_one_commits_jobs_share_a_batch_job_and_a_lost_batch_is_handed_out_again(rt, session, redis, work):
    """Rows emitted in one commit go to RQ as one batch job; if RQ loses it (the worker holding it died, Redis
    lost it), the sweeper finds every row of it and hands them out again: each runs exactly to done."""
    from rq import Queue

    with rt.session() as s:
        for i in range(5):
            emit(s, "tests.remember_in_redis", f"v{i}", key=f"batch:{i}")
    queue = Queue("default", connection=redis)
    assert len(queue.job_ids) == 1  # one RQ job carries the five rows
    queue.empty()  # the batch job is gone before any worker ran it
    work(rounds=1)
    assert redis.lrange("test:remembered", 0, -1) == []
    work(lease=0)  # the sweeper judges each row by its batch job: gone, so handed out again
    assert sorted(v.decode() for v in redis.lrange("test:remembered", 0, -1)) == [f"v{i}" for i in range(5)]
    assert stats(rt) == {"live": 0, "dead": 0, "waiting": 0}


def test_a_batch_job_started_by_a_dead_worker_is_rescued_after_the_lease(rt, session, redis, work):
    from datetime import datetime, timedelta, timezone

    from rq import Queue
    from sqlalchemy import update

    from app.db import utcnow
    from app.outbox.models import OutboxMessage

    from workers.outbox import stats, sweep

    with rt.session() as s:
        for i in range(3):
            emit(s, "tests.remember_in_redis", f"w{i}", key=f"dead:{i}")
    queue = Queue("default", connection=redis)
    (job_id,) = queue.job_ids
    queue.remove(job_id)  # a worker took it, marked it started, and died
    started = (datetime.now(timezone.utc) - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    redis.hset(f"rq:job:{job_id}", mapping={"status": "started", "started_at": started})
    with rt.session() as s:
        s.execute(update(OutboxMessage).values(enqueued_at=utcnow() - timedelta(seconds=30)))  # handed out then
    assert sweep(rt, lease=3600) == 0  # started within the lease: still its worker's
    assert sweep(rt, lease=10) == 3  # started longer ago than the lease: its worker is dead
    work()
    assert sorted(v.decode() for v in redis.lrange("test:remembered", 0, -1)) == ["w0", "w1", "w2"]
    assert stats(rt) == {"live": 0, "dead": 0, "waiting": 0}


@job("tests.remember_in_redis")
def remember(rt, value):
    rt.redis.rpush("test:remembered", value)


@job("tests.flaky_in_redis")
def flaky(rt):
    r = rt.redis
    if int(r.get("test:fail_times") or 0) > 0:
        r.decr("test:fail_times")
        raise RuntimeError("not yet")
    r.set("test:flaky_ok", 1)


def test_scheduler_runs_each_slot_once_across_processes(rt, redis):
    from workers.scheduler import Periodic, tick

    jobs = [Periodic("sweep-test", 60, inline=lambda r: sweep(r))]
    assert tick(rt, now=120.0, jobs=jobs) == ["sweep-test"]
    assert tick(rt, now=150.0, jobs=jobs) == []  # same slot: another scheduler already ran it
    assert tick(rt, now=180.0, jobs=jobs) == ["sweep-test"]
