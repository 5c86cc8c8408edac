"""The process-wide handles (settings, engine, sessions, Redis) shared by the web app, workers and CLI.

Built once per process from the environment, or installed by create_app/tests. No Flask here."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import redis
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import INSTANCE_DIR, Settings, load_settings
from app.db import make_engine, make_session_factory

_fake_server = None
_fake_lock = threading.Lock()
_lock = threading.Lock()


def make_redis(url: str | None) -> redis.Redis:
    """Real Redis for a URL; otherwise one in-process fakeredis server shared by the whole process."""
    global _fake_server
    if url:
        return redis.Redis.from_url(url)
    import fakeredis

    with _fake_lock:  # not _lock: get_runtime() holds that while building the runtime
        if _fake_server is None:
            _fake_server = fakeredis.FakeServer()
    return fakeredis.FakeRedis(server=_fake_server)


@contextmanager
def unit_of_work(make_session: Callable[[], Session]) -> Iterator[Session]:
    """A session that commits on success, rolls back on any error, and is always closed."""
    s = make_session()
    try:
        yield s
        s.commit()
    except BaseException:
        s.rollback()
        raise
    finally:
        s.close()


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: redis.Redis

    @property
    def inline_jobs(self) -> bool:
        return self.settings.redis_url is None

    def session(self):
        """One unit of work for a job or a CLI command: commit on success, roll back on error."""
        return unit_of_work(self.sessions)


_runtime: Runtime | None = None


def build_runtime(settings: Settings | None = None) -> Runtime:
    settings = settings or load_settings()
    if settings.database_url.startswith("sqlite:///") and ":memory:" not in settings.database_url:
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    return Runtime(settings, engine, make_session_factory(engine), make_redis(settings.redis_url))


def set_runtime(rt: Runtime) -> None:
    global _runtime
    _runtime = rt


def get_runtime() -> Runtime:
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = build_runtime()
    return _runtime
