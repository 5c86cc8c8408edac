"""The embedded default runs the periodic jobs in the served process: wsgi.py starts the in-process scheduler
when there is no REDIS_URL, unless EMBEDDED_SCHEDULER=0, a testing app, or a CLI command other than `flask run`."""
from __future__ import annotations

import click
import fakeredis
import pytest

from app import create_app
from app.config import ConfigError, load_settings
from app.db import make_engine, make_session_factory
from app.migrate import upgrade_database
from app.runtime import Runtime
from app.withdrawals.ratelimit import RateLimiter
from workers.scheduler import periodic_jobs, start_for_served_app


def _app(tmp_path, **env):
    settings = load_settings({"LIEBIAN_INSTANCE_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
                              **env})
    engine = make_engine(settings.database_url)
    rt = Runtime(settings, engine, make_session_factory(engine), fakeredis.FakeRedis(server=fakeredis.FakeServer()))
    return create_app(runtime=rt)


def test_wsgi_starts_it_for_the_embedded_default_and_it_ticks(tmp_path):
    upgrade_database(f"sqlite:///{tmp_path / 'x.db'}")
    app = _app(tmp_path)
    scheduler = start_for_served_app(app, interval=0.05)
    try:
        assert scheduler is not None and scheduler.thread.daemon and scheduler.thread.is_alive()
        assert app.extensions["liebian_scheduler"] is scheduler
    finally:
        scheduler.stop()
    assert not scheduler.thread.is_alive()
    assert app.extensions["liebian"].redis.get("health:scheduler:last_tick") is not None


@pytest.mark.parametrize("env", [{"EMBEDDED_SCHEDULER": "0"}, {"REDIS_URL": "redis://127.0.0.1:6379/0"}])
def test_not_without_the_embedded_default_or_when_turned_off(tmp_path, env):
    assert start_for_served_app(_app(tmp_path, **env)) is None  # REDIS_URL: `python -m workers.scheduler` does it


def test_not_for_a_testing_app(tmp_path):
    app = _app(tmp_path)
    app.testing = True
    assert start_for_served_app(app) is None


@pytest.mark.parametrize("command, starts", [("seed-demo", False), ("db", False), ("run", True)])
def test_under_the_flask_cli_only_flask_run_starts_it(tmp_path, command, starts):
    app = _app(tmp_path)
    with click.Context(click.Command(command)):
        scheduler = start_for_served_app(app, interval=0.05)
    try:
        assert (scheduler is not None) is starts
    finally:
        if scheduler is not None:
            scheduler.stop()


def test_the_maturation_interval_is_a_setting(tmp_path):
    rt = _app(tmp_path, COMMISSION_MATURE_SECONDS="30").extensions["liebian"]
    assert {p.name: p.every for p in periodic_jobs(rt)}["commissions-mature"] == 30.0
    assert load_settings({}).scheduler.mature_every == 600.0
    with pytest.raises(ConfigError):
        load_settings({"EMBEDDED_SCHEDULER": "maybe"})


def test_the_in_process_redis_runs_the_payout_pacing_script():
    """fakeredis with Lua (lupa): the GCRA limiter paces payouts in the embedded default as Redis does."""
    limiter = RateLimiter(fakeredis.FakeRedis(server=fakeredis.FakeServer()), "rate", rate_per_s=1.0, burst=2)
    assert limiter.try_acquire() == 0 and limiter.try_acquire() == 0
    assert 0 < limiter.try_acquire() <= 1.0


def test_the_served_process_restores_the_leaderboards_its_in_process_redis_started_without(tmp_path):
    """The demo seed ran in another process, whose in-process Redis is gone: the boards come back from the
    database when the served process's scheduler starts."""
    import time
    from datetime import datetime, timezone

    from app.boards.models import BoardCredit

    upgrade_database(f"sqlite:///{tmp_path / 'x.db'}")
    app = _app(tmp_path)
    rt = app.extensions["liebian"]
    with rt.session() as s:
        s.add(BoardCredit(event_id=1, ref="order:1", subject_kind="member", subject_id=7, metric="sales_fen",
                          amount=4200, league="", at=datetime.now(timezone.utc)))
    scheduler = start_for_served_app(app, interval=0.05)
    try:
        deadline = time.monotonic() + 10
        while rt.redis.zscore("lb:member:sales_fen:all", "7") is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.stop()
    assert rt.redis.zscore("lb:member:sales_fen:all", "7") == 4200
