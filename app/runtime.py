"""The process's handles (settings, engine, sessions, Redis, the outbox's handoff to RQ) shared by the web app,
workers and CLI.

Built once per process by its entry point (create_app, a worker, the scheduler, the CLI) and passed down; tests
build their own. Domain code never looks it up: a job or subscriber receives it as its first argument."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import redis
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings, load_settings
from app.db import make_engine, make_session_factory
from app.outbox.after_commit import HANDOFF
from app.outbox.handoff import Handoff

_fake_server = None
_fake_lock = threading.Lock()
_lock = threading.Lock()


def make_redis(url: str | None) -> redis.Redis:
    """Real Redis for a URL; otherwise one in-process fakeredis server shared by the whole process."""
    global _fake_server
    if url:
        return redis.Redis.from_url(url)
    import fakeredis  # only the embedded mode needs it

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
    cache: dict = field(default_factory=dict)  # per-process clients (HTTP pools, limiters), keyed by their owner

    def __post_init__(self):
        self.handoff = Handoff(self.redis, inline=self.inline_jobs, batch=self.settings.outbox.batch)
        # Every session of this runtime hands its outbox rows to RQ after the outermost commit.
        self.sessions.configure(info={HANDOFF: self.handoff})

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
        Path(settings.instance_dir).mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    return Runtime(settings, engine, make_session_factory(engine), make_redis(settings.redis_url))


def set_runtime(rt: Runtime) -> None:
    global _runtime
    _runtime = rt


def get_runtime() -> Runtime:
    """The process's runtime, for entry points (RQ job shells, the scheduler, the CLI): built on first use."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = build_runtime()
    return _runtime
