"""Test world: real PostgreSQL and real Redis.

Each test starts from empty tables (truncated after every test) and an empty dedicated Redis database.
LIEBIAN_TEST_SLOT lets several suites run side by side on one machine (own database, own Redis db)."""
from __future__ import annotations

import os
import threading
from types import SimpleNamespace

import pytest
import redis as redis_lib
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from app import create_app
from app.config import load_settings
from app.db import Base, import_all_models, make_engine, make_session_factory
from app.migrate import upgrade_database
from app.runtime import Runtime, set_runtime

SLOT = int(os.environ.get("LIEBIAN_TEST_SLOT", "0"))
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DB_NAME = os.environ.get("TEST_DATABASE_NAME", f"liebian_test_{SLOT}")
DATABASE_URL = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + DB_NAME
REDIS_URL = os.environ.get("TEST_REDIS_URL", f"redis://127.0.0.1:6379/{15 - SLOT}")


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
def test_env(_wechat_world, tmp_path_factory) -> dict[str, str]:
    return {"DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL, "SECRET_KEY": "test-secret-key",
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
def _database(test_env):
    _recreate_database()
    upgrade_database(DATABASE_URL)
    import_all_models()
    yield DATABASE_URL


@pytest.fixture(scope="session")
def settings(test_env, _database):
    return load_settings(test_env)


@pytest.fixture(scope="session")
def engine(_database):
    eng = make_engine(DATABASE_URL)
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
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


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


def tune_payouts(rt: Runtime, **changes) -> None:
    """Change this test's payout settings (backoff, grace, timeouts): what PAYOUT_* variables set in production."""
    from dataclasses import replace

    rt.settings = rt.settings.with_(payout=replace(rt.settings.payout, **changes))
