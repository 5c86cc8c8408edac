"""Test world: real PostgreSQL and real Redis.

Each test starts from empty tables (truncated after every test) and an empty dedicated Redis database.
LIEBIAN_TEST_SLOT lets several suites run side by side on one machine (own database, own Redis db)."""
from __future__ import annotations

import os

import pytest
import redis as redis_lib
from sqlalchemy import create_engine, text

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


@pytest.fixture(scope="session")
def test_env() -> dict[str, str]:
    return {"DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL, "SECRET_KEY": "test-secret-key",
            "PUBLIC_BASE_URL": "http://liebian.test"}


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
def app(rt):
    application = create_app(runtime=rt)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):
    return app.test_client()
