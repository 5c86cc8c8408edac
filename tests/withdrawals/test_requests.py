"""Requests and review: rules, atomic moves available -> withdrawing, idempotency, access, concurrency."""
from __future__ import annotations

import pytest


from sqlalchemy import func, select

from app.ledger.service import check_ledger, member_balances
from app.withdrawals.models import Withdrawal
from tests.factories import member_headers
from tests.racing import in_transaction, race
from tests.withdrawals.conftest import set_rule


def test_request_moves_money_to_withdrawing_and_waits_for_review(client, rt, session, partner):
    set_rule(session, fee_bps=100, auto_approve_below_fen=0)
    r = client.post("/api/mp/withdrawals", json={"amount_fen": 10_000}, headers={
        **member_headers(rt, partner.id), "Idempotency-Key": "tap-1"})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert (body["state"], body["fee_fen"], body["net_fen"]) == ("REVIEWING", 100, 9_900)
    assert member_balances(session, partner.id) | {} == {"pending": 0, "available": 90_000, "withdrawing": 10_000}
    assert check_ledger(session).ok


def test_double_tap_creates_one_withdrawal(client, rt, session, partner):
    headers = {**member_headers(rt, partner.id), "Idempotency-Key": "tap-42"}
    first = client.post("/api/mp/withdrawals", json={"amount_fen": 5_000}, headers=headers)
    again = client.post("/api/mp/withdrawals", json={"amount_fen": 5_000}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["id"] == again.get_json()["id"]
    other = client.post("/api/mp/withdrawals", json={"amount_fen": 6_000}, headers=headers)
    assert other.status_code == 409 and other.get_json()["code"] == "idempotency_key_reused"
    assert member_balances(session, partner.id)["withdrawing"] == 5_000


def test_rules_refuse_with_stable_codes(client, rt, session, partner_factory):
    set_rule(session, min_fen=1_000, max_fen=50_000, daily_count=1)
    member = partner_factory(available_fen=300_000)
    h = member_headers(rt, member.id)
    assert client.post("/api/mp/withdrawals", json={"amount_fen": 999, "idempotency_key": "a"},
                       headers=h).get_json()["code"] == "amount_below_minimum"
    assert client.post("/api/mp/withdrawals", json={"amount_fen": 50_001, "idempotency_key": "b"},
                       headers=h).get_json()["code"] == "amount_above_maximum"
    assert client.post("/api/mp/withdrawals", json={"amount_fen": 1_000, "idempotency_key": "c"},
                       headers=h).status_code == 201
    assert client.post("/api/mp/withdrawals", json={"amount_fen": 1_000, "idempotency_key": "d"},
                       headers=h).get_json()["code"] == "daily_count_exceeded"
    poor = partner_factory(available_fen=500)
    r = client.post("/api/mp/withdrawals", json={"amount_fen": 1_000, "idempotency_key": "e"},
                    headers=member_headers(rt, poor.id))
    assert (r.status_code, r.get_json()["code"]) == (409, "insufficient_balance")


def test_real_name_required_from_wechats_threshold(client, rt, session, partner_factory):
    set_rule(session, max_fen=1_000_000, daily_max_fen=1_000_000)
    member = partner_factory(available_fen=300_000)
    r = client.post("/api/mp/withdrawals", json={"amount_fen": 200_000, "idempotency_key": "big"},
                    headers=member_headers(rt, member.id))
    assert (r.status_code, r.get_json()["code"]) == (422, "real_name_required")
    assert member_balances(session, member.id)["available"] == 300_000


def test_partner_sees_rejection_reason_and_gets_money_back(client, rt, session, partner, operator_headers):
    h = member_headers(rt, partner.id)
    wid = client.post("/api/mp/withdrawals", json={"amount_fen": 8_000, "idempotency_key": "k"},
                      headers=h).get_json()["id"]
    listed = client.get("/api/admin/withdrawals?state=REVIEWING", headers=operator_headers).get_json()["withdrawals"]
    assert [w["id"] for w in listed] == [wid]
    r = client.post(f"/api/admin/withdrawals/{wid}/reject", json={"reason": "核实中发现异常订单"},
                    headers=operator_headers)
    assert r.status_code == 200 and r.get_json()["state"] == "REJECTED"
    mine = client.get("/api/mp/withdrawals", headers=h).get_json()["withdrawals"]
    assert (mine[0]["state"], mine[0]["reason"]) == ("REJECTED", "核实中发现异常订单")
    assert member_balances(session, partner.id)["available"] == 100_000
    again = client.post(f"/api/admin/withdrawals/{wid}/approve", headers=operator_headers)
    assert (again.status_code, again.get_json()["code"]) == (409, "withdrawal_state_conflict")
    assert check_ledger(session).ok


def test_a_member_only_sees_their_own_withdrawals(client, rt, session, partner_factory):
    alice, bob = partner_factory(), partner_factory()
    wid = client.post("/api/mp/withdrawals", json={"amount_fen": 1_000, "idempotency_key": "x"},
                      headers=member_headers(rt, alice.id)).get_json()["id"]
    assert client.get(f"/api/mp/withdrawals/{wid}", headers=member_headers(rt, bob.id)).status_code == 404
    assert client.post(f"/api/mp/withdrawals/{wid}/cancel", headers=member_headers(rt, bob.id)).status_code == 404
    assert client.get("/api/mp/withdrawals", headers=member_headers(rt, bob.id)).get_json()["withdrawals"] == []
    assert client.get(f"/api/mp/withdrawals/{wid}", headers=member_headers(rt, alice.id)).status_code == 200
    assert client.get(f"/api/mp/withdrawals/{wid}").status_code == 401


def test_member_cancels_before_any_bill(client, rt, session, partner):
    h = member_headers(rt, partner.id)
    wid = client.post("/api/mp/withdrawals", json={"amount_fen": 2_000, "idempotency_key": "c"},
                      headers=h).get_json()["id"]
    r = client.post(f"/api/mp/withdrawals/{wid}/cancel", headers=h)
    assert r.get_json()["state"] == "CANCELLED"
    assert member_balances(session, partner.id) == {"pending": 0, "available": 100_000, "withdrawing": 0}


@pytest.mark.sqlite
def test_parallel_requests_never_overdraw(rt, session, partner_factory):
    """20 threads, each its own transaction, asking for 30% of the balance at once (on SQLite too: the embedded
    default once let 5 of them through)."""
    from app.withdrawals.service import request_withdrawal

    set_rule(session, daily_count=100, daily_max_fen=10**9)
    member = partner_factory(available_fen=100_000)

    def ask(s, i):
        request_withdrawal(s, member.id, 30_000, f"t{i}", appid="wx")
        return "ok"

    outcomes = [getattr(o, "code", repr(o)) if isinstance(o, BaseException) else o
                for o in race(20, in_transaction(rt, ask))]
    session.expire_all()
    assert outcomes.count("ok") == 3 and outcomes.count("insufficient_balance") == 17, outcomes
    balances = member_balances(session, member.id)
    assert balances == {"pending": 0, "available": 10_000, "withdrawing": 90_000}
    total = session.scalar(select(func.sum(Withdrawal.amount_fen)).where(Withdrawal.member_id == member.id))
    assert total == 90_000 <= 100_000
    assert check_ledger(session).ok


def test_operator_sets_rules_per_grade(client, session, operator_headers):
    from app.grades.service import create_grade

    create_grade(session, code="gold", rank=2)
    session.commit()
    r = client.put("/api/admin/withdrawal-rules/gold",
                   json={"min_fen": 500, "fee_bps": 30, "auto_approve_below_fen": 20_000},
                   headers=operator_headers)
    assert r.status_code == 200, r.get_json()
    listed = client.get("/api/admin/withdrawal-rules", headers=operator_headers).get_json()["rules"]
    rules = {x["grade_code"]: x for x in listed}
    assert rules["gold"]["fee_bps"] == 30 and rules["gold"]["min_fen"] == 500
    bad = client.put("/api/admin/withdrawal-rules/gold", json={"real_name_from_fen": 250_000}, headers=operator_headers)
    assert bad.status_code == 422
    assert client.put("/api/admin/withdrawal-rules/nope", json={}, headers=operator_headers).status_code == 404
