"""The embedded default as `make run` serves it: SQLite file database, in-process Redis (fakeredis), inline jobs,
the WeChat emulator mounted at /_emulator, the periodic jobs in the served process. Served over HTTP on a free
port (PUBLIC_BASE_URL is that port, so the emulator calls the app back), with its instance folder in tmp."""
from __future__ import annotations

import threading

import fakeredis
import pytest
import requests
from werkzeug.serving import make_server

import app.runtime as runtime_module
from app import create_app
from app.config import load_settings
from app.db import import_all_models, make_engine, make_session_factory
from app.migrate import upgrade_database
from app.runtime import Runtime, set_runtime
from workers.scheduler import start_for_served_app


class _Target:
    """A WSGI app whose target is installed (and swapped, for a restart) after the socket exists."""

    def __init__(self):
        self.app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


class Embedded:
    def __init__(self, instance, url: str, target: _Target, env: dict):
        self.instance, self.url, self.target, self.env = instance, url, target, env
        self.app = self.rt = self.scheduler = None
        self.http = requests.Session()

    def start(self, scheduler: bool = True) -> "Embedded":
        """Build the app on the instance folder (again, after stop(): a restart) and serve it."""
        settings = load_settings(self.env)
        engine = make_engine(settings.database_url)
        # Its own in-process Redis (the process-wide one would carry one test's scheduler slots into the next).
        redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        self.rt = Runtime(settings, engine, make_session_factory(engine), redis)
        self.app = create_app(runtime=self.rt)
        self.target.app = self.app
        self.scheduler = start_for_served_app(self.app, interval=0.2) if scheduler else None
        return self

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        self.app.extensions["wechat_emulator"].extensions["wechat_emulator"].pay.wait_idle(10)
        self.rt.engine.dispose()

    @property
    def emulator(self):
        return self.app.extensions["wechat_emulator"].extensions["wechat_emulator"]

    def cli(self, *args: str):
        return self.app.test_cli_runner().invoke(args=list(args))

    # --- HTTP, as a person at a shell would call it ---
    def call(self, method: str, path: str, token: str | None = None, expect: int | None = 200, **kw):
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        r = self.http.request(method, self.url + path, headers=headers, timeout=30, **kw)
        if expect is not None:
            assert r.status_code == expect, (method, path, r.status_code, r.text)
        return r.json() if r.content and r.headers.get("content-type", "").startswith("application/json") else r

    def login(self, pid: str) -> str:
        """Sign in to the mini-program as emulator person `pid`; the access token."""
        code = self.call("POST", f"/_emulator/_sim/persons/{pid}/wx_login")["code"]
        return self.call("POST", "/api/mp/login", json={"code": code})["access_token"]


@pytest.fixture
def embedded(tmp_path):
    """An embedded instance, migrated, served (scheduler thread running) at a free port: `.url`, `.rt`, `.app`,
    `.emulator`, `.call(...)`, `.login(pid)`, `.cli(...)`; `.stop()` then `.start()` restarts it."""
    target = _Target()
    server = make_server("127.0.0.1", 0, target, threaded=True)
    url = f"http://127.0.0.1:{server.port}"
    env = {"LIEBIAN_INSTANCE_DIR": str(tmp_path / "instance"), "PUBLIC_BASE_URL": url,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'instance' / 'liebian.db'}", "COMMISSION_MATURE_SECONDS": "1",
           "PAYOUT_BACKOFF_BASE": "0.2", "PAYOUT_ACCEPT_GRACE": "0.5"}
    (tmp_path / "instance").mkdir()
    upgrade_database(env["DATABASE_URL"])
    import_all_models()
    previous = runtime_module._runtime
    thread = threading.Thread(target=server.serve_forever, daemon=True, name=f"embedded-{server.port}")
    instance = Embedded(tmp_path / "instance", url, target, env)
    instance.start()
    thread.start()
    try:
        yield instance
    finally:
        instance.stop()
        server.shutdown()
        set_runtime(previous)

