"""The shop webhook, a partner's earnings views and the operator's ledger views, over HTTP."""
import csv
import io
import json
import time

import pytest
from sqlalchemy import text

from app.identity import tokens
from app.identity.operators import create_operator
from app.orders.signing import sign
from tests.factories import completed, days_ago, member_headers, paid, refunded

pytestmark = pytest.mark.sqlite  # also runs on SQLite (embedded mode): LIEBIAN_TEST_DB=sqlite


def post_event(client, rt, event, *, ts=None, signature=None, raw=None):
    body = raw if raw is not None else json.dumps(event).encode()
    ts = int(time.time()) if ts is None else ts
    sig = signature or sign(rt.settings.shop_webhook_secret, ts, body)
    return client.post("/hooks/shop/orders", data=body, content_type="application/json",
                       headers={"X-Liebian-Timestamp": str(ts), "X-Liebian-Signature": sig})


def count(session, table):
    return session.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar()


@pytest.fixture
def chain(session, world):
    grand, parent, buyer = world.chain()
    world.plan(hold_days=0)
    session.commit()
    return grand, parent, buyer


def test_a_signed_paid_event_is_applied_and_its_replay_is_refused(client, rt, session, world, chain):
    _, parent, buyer = chain
    event = paid("SO1", world.unionid(buyer), 10000)
    body = json.dumps(event).encode()
    ts = int(time.time())
    sig = sign(rt.settings.shop_webhook_secret, ts, body)
    r = post_event(client, rt, event, ts=ts, signature=sig, raw=body)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "applied"
    again = post_event(client, rt, event, ts=ts, signature=sig, raw=body)
    assert again.status_code == 409 and again.get_json()["code"] == "replayed"
    resent = post_event(client, rt, event, ts=ts - 1)  # the shop re-signs a retry: recognised as a duplicate, harmless
    assert resent.status_code == 200 and resent.get_json()["status"] == "duplicate"
    assert count(session, "commissions") == 2


@pytest.mark.parametrize("mutate, code", [
    (lambda ts, sig: (ts, "0" * 64), "signature_invalid"),
    (lambda ts, sig: (ts - 310, None), "signature_stale"),  # 300 s window; integer ts truncates
    (lambda ts, sig: (ts + 310, None), "signature_stale"),
])
def test_bad_or_stale_signatures_are_refused_and_change_nothing(client, rt, session, world, chain, mutate, code):
    _, _, buyer = chain
    event = paid("SO1", world.unionid(buyer), 10000)
    ts, sig = mutate(int(time.time()), None)
    r = post_event(client, rt, event, ts=ts, signature=sig)
    assert r.status_code == 401 and r.get_json()["code"] == code
    assert count(session, "orders") == 0


def test_missing_signature_headers_are_refused(client):
    r = client.post("/hooks/shop/orders", json={"event": "paid"})
    assert r.status_code == 401 and r.get_json()["code"] == "signature_missing"


@pytest.mark.parametrize("raw, code, status", [
    (b'{"event": "paid", "order_id": "SO1", "buyer": {"unionid": "u"}, '
     b'"lines": [{"product_id": "P", "quantity": 1, "paid_fen": 100.0}]}', "amount_not_integer", 422),
    (b'{"event": "paid", "order_id": "SO1", "buyer": {"unionid": "u"}, '
     b'"lines": [{"product_id": "P", "quantity": 1, "paid_fen": -5}]}', "amount_out_of_range", 422),
    (b'{"event": "refunded", "order_id": "NOPE", "refund_id": "R1", "amount_fen": 5}', "order_not_found", 404),
    (b'{"event": "shipped", "order_id": "SO1"}', "order_event_invalid", 422),
    (b'not json', "malformed_json", 400),  # as everywhere in the API (docs/errors.md)
])
def test_bad_events_get_a_clear_error_and_change_nothing(client, rt, session, chain, raw, code, status):
    r = post_event(client, rt, None, raw=raw)
    assert r.status_code == status and r.get_json()["code"] == code, r.get_json()
    assert count(session, "orders") == 0 and count(session, "journal_entries") == 0


def test_a_failed_event_can_be_retried_verbatim(client, rt, session, world, chain):
    _, _, buyer = chain
    body = json.dumps(refunded("SO1", "R1", 100)).encode()
    ts = int(time.time())
    sig = sign(rt.settings.shop_webhook_secret, ts, body)
    assert post_event(client, rt, None, ts=ts, signature=sig, raw=body).status_code == 404
    post_event(client, rt, paid("SO1", world.unionid(buyer), 10000))
    r = post_event(client, rt, None, ts=ts, signature=sig, raw=body)
    assert r.status_code == 200 and r.get_json()["status"] == "applied"


def test_completed_before_paid_answers_202_parked(client, rt, world, chain):
    r = post_event(client, rt, completed("SO9"))
    assert r.status_code == 202 and r.get_json()["status"] == "parked"


def operator_headers(rt, session):
    op = create_operator(session, f"op{time.monotonic_ns()}", "a-long-password-123")
    session.commit()
    return {"Authorization": "Bearer " + tokens.issue(rt.settings.secret_key, "operator", op.id)}


def test_a_partner_sees_pending_available_lifetime_and_masked_commissions(client, rt, session, world, chain):
    from app.commissions.service import mature_due_commissions

    _, parent, buyer = chain
    post_event(client, rt, paid("SO1", world.unionid(buyer), 10000, at=days_ago(3)))
    post_event(client, rt, completed("SO1", at=days_ago(2)))
    post_event(client, rt, paid("SO2", world.unionid(buyer), 5000))
    mature_due_commissions(session)
    session.commit()
    r = client.get("/api/mp/earnings", headers=member_headers(rt, parent.id))
    assert r.get_json() == {"pending_fen": 500, "available_fen": 1000, "withdrawing_fen": 0, "held_fen": 0,
                            "lifetime_fen": 1500}
    items = client.get("/api/mp/commissions", headers=member_headers(rt, parent.id)).get_json()["items"]
    assert [(i["order"]["shop_order_id"], i["level"], i["state"], i["amount_fen"]) for i in items] == [
        ("SO2", 1, "pending", 500), ("SO1", 1, "available", 1000)]
    assert items[0]["order"]["buyer"] == "b**"  # "buyer" masked
    assert client.get("/api/mp/earnings").status_code == 401


def test_an_operator_reads_and_exports_a_members_ledger(client, rt, session, world, chain):
    _, parent, buyer = chain
    post_event(client, rt, paid("SO1", world.unionid(buyer), 10000))
    post_event(client, rt, refunded("SO1", "R1", 2500))
    headers = operator_headers(rt, session)
    body = client.get(f"/api/admin/members/{parent.id}/ledger", headers=headers).get_json()
    assert body["balances"]["pending"] == 750
    assert [(ln["key"], ln["amount_fen"]) for ln in body["lines"]] == [
        ("order:1:refund:R1:L1", -250), ("order:1:paid:L1", 1000)]
    r = client.get(f"/api/admin/members/{parent.id}/ledger.csv", headers=headers)
    assert r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert [(x["key"], int(x["amount_fen"]), x["account"]) for x in rows] == [
        ("order:1:paid:L1", 1000, "pending"), ("order:1:refund:R1:L1", -250, "pending")]
    assert client.get(f"/api/admin/members/{parent.id}/ledger.csv").status_code == 401


def test_the_admin_ledger_check_says_409_when_a_balance_was_tampered_with(client, rt, session, world, chain):
    _, _, buyer = chain
    post_event(client, rt, paid("SO1", world.unionid(buyer), 10000))
    headers = operator_headers(rt, session)
    assert client.get("/api/admin/ledger/check", headers=headers).get_json()["ok"] is True
    session.execute(text("UPDATE ledger_accounts SET balance_fen = balance_fen - 1 WHERE kind = 'pending' "
                         "AND member_id = (SELECT MIN(member_id) FROM ledger_accounts)"))
    session.commit()
    r = client.get("/api/admin/ledger/check", headers=headers)
    assert r.status_code == 409 and r.get_json()["ok"] is False


def test_operators_publish_plan_versions_and_grant_grades(client, rt, session, world):
    headers = operator_headers(rt, session)
    m = world.member(partner=True)
    session.commit()
    r = client.post("/api/admin/commission-plans", headers=headers,
                    json={"name": "launch", "hold_days": 7, "rates": [{"level": 1, "bps": 1000}]})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["version"] == 1
    r = client.post("/api/admin/commission-plans", headers=headers, json={"rates": [{"level": 3, "bps": 100}]})
    assert r.status_code == 422
    r = client.post("/api/admin/grades", headers=headers, json={"code": "gold", "rank": 2})
    assert r.status_code == 201
    r = client.post(f"/api/admin/members/{m.id}/grade", headers=headers, json={"grade": "gold", "reason": "VIP"})
    assert r.status_code == 200 and r.get_json()["to"] == "gold"
    body = client.get(f"/api/admin/members/{m.id}/grade", headers=headers).get_json()
    assert body["grade"] == "gold" and body["history"][0]["reason"] == "granted: VIP"


def test_grade_rules_and_figures_speak_of_the_downline(client, rt, session, world):
    headers = operator_headers(rt, session)
    upline = world.member(partner=True)
    world.member(referrer=world.member(referrer=upline))
    session.commit()
    r = client.post("/api/admin/grades", headers=headers,
                    json={"code": "gold", "rank": 1, "min_downline_size": 2, "min_downline_sales_fen": 5000})
    assert r.status_code == 201, r.get_json()
    listed = client.get("/api/admin/grades", headers=headers).get_json()["items"][0]
    assert (listed["min_downline_size"], listed["min_downline_sales_fen"]) == (2, 5000)
    figures = client.get(f"/api/admin/members/{upline.id}/grade", headers=headers).get_json()["figures"]
    assert (figures["direct_referrals"], figures["downline_size"], figures["downline_sales_fen"]) == (1, 2, 0)
    # "Team" is a captain's team only: the old field names are refused, not silently ignored.
    r = client.post("/api/admin/grades", headers=headers, json={"code": "old", "rank": 2, "min_team_size": 2})
    assert r.status_code == 422
