"""Test world: real PostgreSQL and real Redis; or, with LIEBIAN_TEST_DB=sqlite, the embedded mode's SQLite.

Each test starts from empty tables (emptied after every test) and an empty dedicated Redis database.
LIEBIAN_TEST_SLOT lets several suites run side by side on one machine (own database, own Redis db).

LIEBIAN_TEST_DB=sqlite runs the tests marked `sqlite`, and only those, on a SQLite file in a temporary directory
migrated with the project's migrations (the database `make run` uses); Redis stays the real test Redis, so jobs
go through real RQ as in the PostgreSQL pass. Mark `sqlite` the tests that drive a SQLite code path of a domain
(the `dialect.name` branches); a marked test must pass on both databases."""
from __future__ import annotations

import os
import threading
from types import SimpleNamespace

import pytest
import redis as redis_lib
from sqlalchemy import bindparam, create_engine, text
from sqlalchemy.engine import Engine

from app import create_app
from app.config import load_settings
from app.db import Base, import_all_models, make_engine, make_session_factory
from app.migrate import upgrade_database
from app.runtime import Runtime, set_runtime

SLOT = int(os.environ.get("LIEBIAN_TEST_SLOT", "0"))
TEST_DB = os.environ.get("LIEBIAN_TEST_DB", "postgresql")
if TEST_DB not in ("postgresql", "sqlite"):
    raise RuntimeError(f"LIEBIAN_TEST_DB must be postgresql or sqlite, not {TEST_DB!r}")
SQLITE = TEST_DB == "sqlite"
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DB_NAME = os.environ.get("TEST_DATABASE_NAME", f"liebian_test_{SLOT}")
DATABASE_URL = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + DB_NAME
REDIS_URL = os.environ.get("TEST_REDIS_URL", f"redis://127.0.0.1:6379/{15 - SLOT}")


def pytest_collection_modifyitems(config, items):
    """The SQLite pass runs the tests marked `sqlite` only; the others are deselected, not skipped."""
    if not SQLITE:
        return
    dropped = [item for item in items if not item.get_closest_marker("sqlite")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item.get_closest_marker("sqlite")]


def pytest_report_header(config):
    return f"database: {'SQLite file (embedded mode), tests marked sqlite' if SQLITE else DB_NAME}; redis: {REDIS_URL}"


def _recreate_database() -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()


# --- WeChat test world (owned by the WeChat adapter area) ---------------------------------------------------
# A real emulator over HTTP and the Liebian app served on a port, so that WeChat can call Liebian back
# (message pushes to /wechat/callback, pay notifications to /wechatpay/notify/transfer). Ports are taken before
# settings are built: PUBLIC_BASE_URL must be the live app's URL.


class _LateApp:
    """A WSGI app whose target is installed after the server socket exists."""

    def __init__(self):
        self.target = None

    def __call__(self, environ, start_response):
        if self.target is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"no live app in this test (use the live_app fixture)"]
        return self.target(environ, start_response)


def _serve(wsgi) -> tuple[str, object]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True, name=f"serve-{server.port}").start()
    return f"http://127.0.0.1:{server.port}", server


@pytest.fixture(scope="session")
def _wechat_world():
    from wechat.emulator import config_for, create_emulator
    from wechat.keys import generate_private_pem, public_pem_of

    merchant_key, platform_key = generate_private_pem(), generate_private_pem()
    live, emu_wsgi = _LateApp(), _LateApp()
    live_url, live_server = _serve(live)
    emu_url, emu_server = _serve(emu_wsgi)
    env = {"WECHAT_APP_ID": "wxtestservice0001", "WECHAT_APP_SECRET": "test-service-secret",
           "WECHAT_TOKEN": "liebiantesttoken", "WECHAT_ENCODING_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
           "WECHAT_MINIAPP_ID": "wxtestminiapp0001", "WECHAT_MINIAPP_SECRET": "test-miniapp-secret",
           "WECHAT_API_BASE": emu_url, "WECHAT_OPEN_BASE": emu_url, "WECHAT_MP_BASE": emu_url,
           "WECHATPAY_API_BASE": emu_url, "WECHATPAY_MCH_ID": "1900000109",
           "WECHATPAY_API_V3_KEY": "testApiV3Key0123456789abcdefghij", "WECHATPAY_PRIVATE_KEY": merchant_key,
           "WECHATPAY_CERT_SERIAL": "TESTMERCHANTSERIAL0001", "WECHATPAY_PUBLIC_KEY": public_pem_of(platform_key),
           "WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_TEST0001", "PUBLIC_BASE_URL": live_url,
           "SHOP_WEBHOOK_SECRET": "test-shop-secret"}
    emulator_app = create_emulator(config_for(load_settings({**env, "SECRET_KEY": "x"}),
                                              platform_private_key=platform_key,
                                              merchant_public_key=public_pem_of(merchant_key)))
    emu_wsgi.target = emulator_app
    yield SimpleNamespace(env=env, live=live, live_url=live_url, emulator_url=emu_url, emulator_app=emulator_app,
                          emulator=emulator_app.extensions["wechat_emulator"], platform_key=platform_key,
                          merchant_key=merchant_key)
    live_server.shutdown()
    emu_server.shutdown()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    if SQLITE:
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'liebian.db'}"
    return DATABASE_URL


@pytest.fixture(scope="session")
def test_env(_wechat_world, tmp_path_factory, database_url) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "SECRET_KEY": "test-secret-key",
            "POSTER_STORE_DIR": str(tmp_path_factory.mktemp("posters")), **_wechat_world.env}


@pytest.fixture(autouse=True)
def _fresh_emulator(_wechat_world):
    """Every test starts with an empty emulated WeChat (people, tokens, bills, faults)."""
    yield
    _wechat_world.emulator.reset()


@pytest.fixture
def emulator(_wechat_world):
    """The emulator: `.emu` is the in-process Emulator (world, pay, faults), `.url` its HTTP base,
    `.sim(path, **json)` POSTs to /_sim/<path>."""
    import requests

    def sim(path, method="POST", **body):
        r = requests.request(method, f"{_wechat_world.emulator_url}/_sim/{path}", json=body, timeout=30)
        r.raise_for_status()
        return r.json()

    return SimpleNamespace(emu=_wechat_world.emulator, url=_wechat_world.emulator_url, sim=sim,
                           world=_wechat_world.emulator.world, pay=_wechat_world.emulator.pay,
                           faults=_wechat_world.emulator.faults)


@pytest.fixture
def live_app(app, _wechat_world):
    """The Liebian app served over HTTP at settings.public_base_url (yields that URL)."""
    _wechat_world.live.target = app
    yield _wechat_world.live_url
    _wechat_world.live.target = None


@pytest.fixture(scope="session")
def _database(test_env, database_url):
    if not SQLITE:
        _recreate_database()
    upgrade_database(database_url)
    import_all_models()
    yield database_url


@pytest.fixture(scope="session")
def settings(test_env, _database):
    return load_settings(test_env)


@pytest.fixture(scope="session")
def engine(_database):
    eng = make_engine(_database)
    yield eng
    eng.dispose()


@pytest.fixture
def redis(settings):
    r = redis_lib.Redis.from_url(REDIS_URL)
    r.flushdb()
    yield r
    r.flushdb()


@pytest.fixture
def rt(settings, engine, redis) -> Runtime:
    runtime = Runtime(settings, engine, make_session_factory(engine), redis)
    set_runtime(runtime)
    yield runtime
    for handle in runtime.cache.values():  # pools the code opened for itself (payout and outbox engines)
        if isinstance(handle, Engine):
            handle.dispose()
    empty_tables(engine)


def empty_tables(engine: Engine, tables=None) -> None:
    """Delete every row of `tables` (default: all) and restart their ids at 1, on either database."""
    tables = list(tables or Base.metadata.sorted_tables)
    if engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # SQLite ignores it inside a transaction: commit first
        conn.commit()
        try:
            for t in reversed(tables):
                conn.execute(t.delete())
            if conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").first():
                conn.execute(text("DELETE FROM sqlite_sequence WHERE name IN :names").bindparams(
                    bindparam("names", expanding=True)), {"names": [t.name for t in tables]})
            conn.commit()
        finally:
            conn.rollback()
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()


@pytest.fixture
def session(rt):
    s = rt.sessions()
    yield s
    s.rollback()
    s.close()


@pytest.fixture
def world(session):
    """tests.factories.World on this test's session: members, partners, chains, plans."""
    from tests.factories import World

    return World(session)


@pytest.fixture
def app(rt):
    application = create_app(runtime=rt)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def work(rt, redis):
    """work(): run every queued RQ job and every due outbox row (sweeping with a long lease) until quiet, in this
    process, through real RQ on the test Redis: what the workers and the scheduler do in production."""
    from rq import Queue, SimpleWorker

    from app.outbox.jobs import QUEUES
    from workers.outbox import sweep

    def run(rounds: int = 20, lease: float | None = None) -> None:
        queues = [Queue(q, connection=redis) for q in QUEUES]
        for _ in range(rounds):
            SimpleWorker(queues, connection=redis).work(burst=True, with_scheduler=False)
            if not sweep(rt, lease=lease if lease is not None else 3600):
                return
    return run


def outbox_due_now(session) -> None:
    """Every live outbox row falls due now: the retries the outbox delayed with a backoff (either database)."""
    from sqlalchemy import update

    from app.db import utcnow
    from app.outbox.models import OutboxMessage

    session.execute(update(OutboxMessage).where(OutboxMessage.done_at.is_(None)).values(available_at=utcnow()))


def tune_payouts(rt: Runtime, **changes) -> None:
    """Change this test's payout settings (backoff, grace, timeouts): what PAYOUT_* variables set in production."""
    from dataclasses import replace

    rt.settings = rt.settings.with_(payout=replace(rt.settings.payout, **changes))
