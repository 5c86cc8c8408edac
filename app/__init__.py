"""Liebian: WeChat community distribution backend."""
from __future__ import annotations

from apiflask import APIFlask
from flask import g
from flask.sessions import SecureCookieSessionInterface

from werkzeug.middleware.dispatcher import DispatcherMiddleware

from app.api import register_api
from app.cli import configure_logging, register_cli
from app.config import EMULATOR_PREFIX, Settings, load_settings
from app.modules import load_plugins
from app.runtime import Runtime, build_runtime, set_runtime
from wechat.emulator import create_emulator_for


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> APIFlask:
    configure_logging()  # INFO when serving; quiet for `flask <command>` runs
    settings = settings or (runtime.settings if runtime else load_settings())
    runtime = runtime or build_runtime(settings)
    set_runtime(runtime)

    app = APIFlask(
        __name__,
        title="Liebian API",
        version="1.0",
        spec_path="/openapi.json",
        docs_path="/docs",
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_base_url.startswith("https://"),
        JSON_AS_ASCII=False,
        SYNC_LOCAL_SPEC=False,
        AUTO_VALIDATION_ERROR_SCHEMA=True,
        VALIDATION_ERROR_STATUS_CODE=422,
        INFO={"description": "Liebian: WeChat community distribution backend. Errors share one shape: "
                             "{code, message, status, details}."},
    )
    app.session_interface = _CookieOnDemand()
    app.security_schemes = {
        "MemberBearer": {"type": "http", "scheme": "bearer", "description": "mini-program access token"},
        "OperatorBearer": {"type": "http", "scheme": "bearer", "description": "console operator token"},
    }
    app.extensions["liebian"] = runtime
    app.config["LIEBIAN_SETTINGS"] = settings

    load_plugins()
    register_api(app)
    register_cli(app)

    if settings.embedded_emulator:
        _mount_emulator(app, settings)

    @app.teardown_appcontext
    def _close_session(_exc):
        s = g.pop("db_session", None)
        if s is not None:
            s.close()

    return app


def _mount_emulator(app: APIFlask, settings: Settings) -> None:
    """Embedded default: the local WeChat emulator answers under /_emulator in this same process."""
    emulator = create_emulator_for(settings)
    app.extensions["wechat_emulator"] = emulator
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {EMULATOR_PREFIX: emulator.wsgi_app})


class _CookieOnDemand(SecureCookieSessionInterface):
    """Flask's signed-cookie session, without building the signer for requests that carry no session cookie.

    Only the H5 OAuth pages use the session; the API (bearer tokens) and WeChat's pushes never send the cookie,
    and Flask otherwise builds an itsdangerous serializer for every request."""

    def open_session(self, app, request):
        if app.secret_key and ("HTTP_COOKIE" not in request.environ  # parsing no cookies costs too
                               or not request.cookies.get(self.get_cookie_name(app))):
            return self.session_class()
        return super().open_session(app, request)

