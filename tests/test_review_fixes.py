"""Regressions from the review: each of these once lost money, leaked access, or answered 500."""
import json
import time

import pytest
from sqlalchemy import select

from app.identity import tokens
from app.identity.operators import create_operator
from app.members.models import Member
from app.orders.signing import sign
from app.referrals import binding, codes
from app.referrals.saved_rules import update_rules
from tests.factories import make_member, make_partner, paid


def test_bind_at_first_purchase_with_new_members_only_binds_the_newcomer(session):
    update_rules(session, {"when": "first_purchase", "who": "new_only"})
    p = make_partner(session)
    code = codes.ensure_personal_code(session, p.id)
    newcomer = make_member(session)
    assert binding.touch(session, scene=code.scene, member_id=newcomer.id, channel="oa_scan").outcome == "pending"
    assert binding.confirm_pending_referral(session, newcomer.id).outcome == "bound"
    assert session.scalar(select(Member.referrer_id).where(Member.id == newcomer.id)) == p.id


def test_operator_sign_in_locks_after_five_failures(client, session):
    create_operator(session, "ops", "correct horse battery")
    session.commit()
    for _ in range(5):
        assert client.post("/api/admin/login", json={"username": "ops", "password": "wrong"}).status_code == 401
    locked = client.post("/api/admin/login", json={"username": "ops", "password": "correct horse battery"})
    assert (locked.status_code, locked.get_json()["code"]) == (429, "login_locked")


def test_ids_beyond_bigint_are_a_clear_error_not_a_500(client, session, rt):
    m = make_member(session)
    session.commit()
    headers = {"Authorization": "Bearer " + tokens.issue(rt.settings.secret_key, "member", m.id)}
    r = client.get("/api/mp/referrals?before_id=99999999999999999999", headers=headers)
    assert r.status_code in (403, 422)  # a consumer has no referrals list; either way never a 500
    r = client.get("/api/mp/withdrawals/99999999999999999999", headers=headers)
    assert r.status_code in (404, 422) and "code" in r.get_json()
    huge = {"Authorization": "Bearer " + tokens.issue(rt.settings.secret_key, "member", 10**20)}
    r = client.get("/api/mp/me", headers=huge)
    assert r.status_code in (404, 422) and "code" in r.get_json()


def _post(client, rt, body: bytes, ts=None, sig=None):
    ts = int(time.time()) if ts is None else ts
    sig = sig or sign(rt.settings.shop_webhook_secret, ts, body)
    return client.post("/hooks/shop/orders", data=body, content_type="application/json",
                       headers={"X-Liebian-Timestamp": str(ts), "X-Liebian-Signature": sig})


def test_webhook_garbage_signature_and_ancient_dates_are_refused_cleanly(client, rt):
    body = json.dumps(paid("SO-x", "u-x", 100)).encode()
    r = _post(client, rt, body, sig="签名")
    assert (r.status_code, r.get_json()["code"]) == (401, "signature_invalid")
    event = paid("SO-y", "u-y", 100, at="0001-01-01T00:00:00+08:00")
    r = _post(client, rt, json.dumps(event).encode())
    assert r.status_code == 422


def test_a_webhook_request_that_died_midway_can_be_retried_verbatim(client, rt, session, monkeypatch):
    import app.api.hooks_orders as hooks

    real = hooks.ingest_order_event
    def killed(*_a, **_k):  # a worker killed mid-request: no exception handler of ours gets to run
        raise SystemExit("SIGKILL")

    monkeypatch.setattr(hooks, "ingest_order_event", killed)
    body = json.dumps(paid("SO-z", "u-z", 100)).encode()
    ts = int(time.time())
    with pytest.raises(SystemExit):
        _post(client, rt, body, ts=ts)
    monkeypatch.setattr(hooks, "ingest_order_event", real)
    retry = _post(client, rt, body, ts=ts)  # the very same signed request
    assert retry.status_code == 200 and retry.get_json()["status"] in ("applied", "parked")
    again = _post(client, rt, body, ts=ts)
    assert (again.status_code, again.get_json()["code"]) == (409, "replayed")
