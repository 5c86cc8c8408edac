from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from app.db import Base, import_all_models
from app.migrate import alembic_config, upgrade_database


def test_healthz_reports_real_database_redis_and_queues(client, rt):
    from app.health import record_tick

    record_tick(rt.redis)  # a scheduler is running (without one /healthz is degraded: tests/embedded/test_health.py)
    body = client.get("/healthz").get_json()
    assert body["ok"] is True
    assert body["checks"]["database"]["backend"] == "postgresql"
    assert body["checks"]["redis"] == {"ok": True, "embedded": False}
    assert body["checks"]["queues"]["inline"] is False
    assert body["checks"]["outbox"] == {"ok": True, "live": 0, "dead": 0, "waiting": 0, "due": 0, "oldest_due_s": 0.0,
                                        "failing": 0, "recent_dead": 0}


def test_healthz_counts_dead_outbox_rows_for_an_operator(client, session):
    from app.outbox import emit

    emit(session, "grades.evaluate_all", key="stuck")
    session.execute(text("UPDATE outbox_messages SET done_at = now(), dead = true"))
    session.commit()
    assert client.get("/healthz").get_json()["checks"]["outbox"]["dead"] == 1


def test_healthz_says_503_when_redis_is_down(app, rt, monkeypatch):
    import redis

    monkeypatch.setattr(rt, "redis", redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 503
    assert resp.get_json()["checks"]["redis"]["ok"] is False


def test_unknown_route_and_wrong_method_use_the_error_envelope(client):
    r = client.get("/no/such/thing")
    assert r.status_code == 404
    assert r.get_json()["code"] == "not_found" and r.get_json()["message"]
    r = client.delete("/healthz")
    assert r.status_code == 405
    assert r.get_json()["code"] == "method_not_allowed"


def test_openapi_description_is_served(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/healthz" in spec["paths"]


def test_migrations_have_a_single_head():
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, heads


def test_migrations_upgrade_a_blank_sqlite_database_to_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'blank.db'}"
    upgrade_database(url)
    import_all_models()
    tables = set(inspect(create_engine(url)).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables


def test_migrations_match_the_models_on_postgresql(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import_all_models()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], "models changed without a migration: " + repr(diff)[:2000]


def test_every_public_api_route_is_in_the_openapi_description(app, client):
    """The description stays true as the API grows: no /api, /h5 or /hooks route is left out of it."""
    import re

    spec_paths = set(client.get("/openapi.json").get_json()["paths"])
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(("/api/", "/h5/", "/hooks/")):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        if path not in spec_paths:
            missing.append(rule.rule)
    assert missing == []


def test_real_wechat_mode_refuses_to_start_with_public_demo_secrets():
    import pytest

    from app.config import ConfigError, load_settings

    with pytest.raises(ConfigError) as err:
        load_settings({"WECHAT_APP_ID": "wx123", "SECRET_KEY": "s"})
    for name in ("SHOP_WEBHOOK_SECRET", "WECHAT_TOKEN", "WECHAT_ENCODING_AES_KEY", "WECHATPAY_API_V3_KEY"):
        assert name in str(err.value)
    assert load_settings({}).embedded_emulator  # the embedded default still needs nothing
