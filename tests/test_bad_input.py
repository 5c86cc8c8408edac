"""Bad input never gets a 500, and one kind of mistake gets one answer everywhere (docs/errors.md)."""
from __future__ import annotations

import json
import re
import time

import pytest

from app.api.json_body import MAX_DEPTH, nesting_depth_exceeds
from app.identity import tokens
from app.identity.operators import create_operator
from app.orders.signing import sign
from tests.factories import make_member

DEEP = b"[" * 100_000


def _sample_path(rule) -> str:
    return re.sub(r"<(?:([^:>]+):)?([^>]+)>", lambda m: "1" if m.group(1) == "int" else "x", rule.rule)


def _write_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.startswith("/docs"):
            continue
        for method in sorted((rule.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}):
            yield method, _sample_path(rule)


def _signed(rt, raw: bytes) -> dict:
    ts = int(time.time())
    return {"X-Liebian-Timestamp": str(ts), "X-Liebian-Signature": sign(rt.settings.shop_webhook_secret, ts, raw),
            "Content-Type": "application/json"}


def test_a_deeply_nested_body_is_refused_with_400_on_every_endpoint(app, client):
    answers = {}
    for method, path in _write_routes(app):
        r = client.open(path, method=method, data=DEEP, content_type="application/json")
        answers[(method, path)] = (r.status_code, (r.get_json(silent=True) or {}).get("code"))
    assert len(answers) > 30
    webhook = answers.pop(("POST", "/hooks/shop/orders"))
    assert webhook == (401, "signature_missing")  # the signature is checked before the body is read
    assert {k: v for k, v in answers.items() if v != (400, "json_too_deep")} == {}


@pytest.mark.parametrize("path", ["/api/mp/login", "/api/admin/login", "/api/admin/poster-templates/preview"])
def test_the_issues_deep_bodies_answer_json_too_deep(client, path):
    r = client.post(path, data=DEEP, content_type="application/json")
    assert r.status_code == 400
    assert r.get_json() == {"code": "json_too_deep", "status": 400, "details": {"max_depth": MAX_DEPTH},
                            "message": f"The request body nests deeper than {MAX_DEPTH} levels."}


def test_a_deep_body_to_the_signed_webhook_is_refused_the_same_way(client, rt):
    r = client.post("/hooks/shop/orders", data=DEEP, headers=_signed(rt, DEEP))
    assert (r.status_code, r.get_json()["code"]) == (400, "json_too_deep")


def test_depth_is_counted_outside_strings_and_up_to_the_limit():
    assert not nesting_depth_exceeds(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    assert nesting_depth_exceeds(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    assert not nesting_depth_exceeds(json.dumps({"a": "[" * 1000, "b": '\\"[[[' * 100}).encode())
    assert not nesting_depth_exceeds(json.dumps([[1, 2]] * 5000).encode())  # many, but shallow
    assert nesting_depth_exceeds(b'{"a": ' * 40 + b"1" + b"}" * 40)


@pytest.mark.parametrize("raw", [b"{nope", b'{"code": "abc"', b"\xff\xfe", b'{"code": ' + b"9" * 5000 + b"}",
                                 b"[" * 10])
def test_malformed_json_is_400_malformed_json_in_the_api(client, raw):
    r = client.post("/api/mp/login", data=raw, content_type="application/json")
    assert r.status_code == 400
    assert r.get_json() == {"code": "malformed_json", "status": 400, "details": {},
                            "message": "The request body is not valid JSON."}


@pytest.mark.parametrize("raw", [b"{nope", b"not json", b'{"event": ' + b"9" * 5000 + b"}"])
def test_malformed_json_is_the_same_answer_in_the_shop_webhook(client, rt, raw):
    api = client.post("/api/mp/login", data=raw, content_type="application/json")
    hook = client.post("/hooks/shop/orders", data=raw, headers=_signed(rt, raw))
    assert hook.status_code == api.status_code == 400
    assert hook.get_json() == api.get_json()


def test_a_body_that_is_json_but_not_an_object_is_a_validation_error(client):
    for raw in (b"[]", b'"code"', b"5", b"null"):
        r = client.post("/api/mp/login", data=raw, content_type="application/json")
        assert (r.status_code, r.get_json()["code"]) == (422, "validation_error"), raw


def _operator_token(rt, session):
    op = create_operator(session, f"door{time.monotonic_ns()}", "a-long-password-123")
    session.commit()
    return tokens.issue(rt.settings.secret_key, "operator", op.id)


def test_a_member_token_on_an_operator_endpoint_is_403_operator_required(client, rt, session):
    alice = make_member(session)
    session.commit()
    member = {"Authorization": "Bearer " + tokens.issue(rt.settings.secret_key, "member", alice.id)}
    for method, path in [("GET", f"/api/admin/members/{alice.id}"), ("GET", "/api/admin/withdrawals"),
                         ("POST", "/api/admin/stores")]:
        r = client.open(path, method=method, headers=member, json={"name": "x"})
        assert r.status_code == 403, path
        assert r.get_json() == {"code": "operator_required", "status": 403, "details": {},
                                "message": "This needs an operator's sign-in; a member's token cannot call it."}


def test_an_operator_token_on_a_member_endpoint_is_403_member_required(client, rt, session):
    r = client.get("/api/mp/me", headers={"Authorization": "Bearer " + _operator_token(rt, session)})
    assert (r.status_code, r.get_json()["code"]) == (403, "member_required")


def test_forged_and_expired_tokens_stay_401(client, rt, session, monkeypatch):
    r = client.get("/api/admin/withdrawals", headers={"Authorization": "Bearer forged"})
    assert (r.status_code, r.get_json()["code"]) == (401, "token_invalid")
    token = _operator_token(rt, session)
    monkeypatch.setattr(tokens, "OPERATOR_TTL", -1)
    r = client.get("/api/admin/withdrawals", headers={"Authorization": "Bearer " + token})
    assert (r.status_code, r.get_json()["code"]) == (401, "token_expired")
    r = client.get("/api/admin/withdrawals")
    assert (r.status_code, r.get_json()["code"]) == (401, "auth_required")
