"""Strict input: amounts in fen and rates in basis points are JSON integers or the request is refused with the
webhook's code, `amount_not_integer`; names are never blank; nothing a caller sends is answered with a 500."""
from __future__ import annotations

import itertools

import pytest
from sqlalchemy import func, select

from app.api.fields import Bps, Fen, Int
from app.commissions.models import CommissionPlan
from app.identity import tokens
from app.identity.operators import create_operator
from app.ledger.service import member_account, platform_account, post_entry
from app.referrals.models import Store
from app.withdrawals.models import Withdrawal, WithdrawalRule
from tests.factories import make_member, make_partner

_n = itertools.count(1)
NOT_INTEGERS = [150.9, "100", 10.5, 1000.9, True, 100.0, "1e2", None, [1], {"v": 1}]


def member_headers(rt, member_id):
    return {"Authorization": "Bearer " + tokens.issue(rt.settings.secret_key, "member", member_id)}


@pytest.fixture
def ops(rt, session):
    op = create_operator(session, f"strict{next(_n)}", "a-long-password-123")
    session.commit()
    return {"Authorization": "Bearer " + tokens.issue(rt.settings.secret_key, "operator", op.id)}


@pytest.fixture
def funded(session):
    member = make_partner(session, mini_openid=f"o_strict_{next(_n)}")
    post_entry(session, f"test:strict:{member.id}", [(member_account(session, member.id, "available"), 100_000),
                                                     (platform_account(session, "commission_expense"), -100_000)],
               "test_funding")
    session.commit()
    return member


def _refused_as_amount(r):
    body = r.get_json()
    assert (r.status_code, body["code"]) == (422, "amount_not_integer"), body
    assert body["status"] == 422 and body["details"]["json"]
    return body


@pytest.mark.parametrize("value", NOT_INTEGERS)
def test_a_withdrawal_amount_that_is_not_a_json_integer_is_refused_never_truncated(client, rt, session, funded,
                                                                                   value):
    r = client.post("/api/mp/withdrawals", json={"amount_fen": value, "idempotency_key": f"k{next(_n)}"},
                    headers=member_headers(rt, funded.id))
    if value is None:
        assert (r.status_code, r.get_json()["code"]) == (422, "validation_error")  # "may not be null"
    else:
        _refused_as_amount(r)
    assert "amount_fen" in r.get_json()["details"]["json"]
    assert session.scalar(select(func.count()).select_from(Withdrawal)) == 0


def test_the_exact_answers_for_the_cases_of_the_issue(client, rt, session, funded):
    headers = member_headers(rt, funded.id)
    for value in (150.9, "100", 10.5):
        r = client.post("/api/mp/withdrawals", json={"amount_fen": value, "idempotency_key": f"k{value}"},
                        headers=headers)
        assert r.status_code == 422
        assert r.get_json()["code"] == "amount_not_integer"  # never "amount_below_minimum" for 10.5
        assert r.get_json()["details"]["json"]["amount_fen"] == [
            "Amounts are integer fen: a JSON integer, not a decimal, a string or a boolean."]
    ok = client.post("/api/mp/withdrawals", json={"amount_fen": 150, "idempotency_key": "whole"}, headers=headers)
    assert ok.status_code == 201 and ok.get_json()["amount_fen"] == 150
    below = client.post("/api/mp/withdrawals", json={"amount_fen": 10, "idempotency_key": "small"}, headers=headers)
    assert (below.status_code, below.get_json()["code"]) == (422, "amount_below_minimum")


@pytest.mark.parametrize("value", [1000.9, "1000", True, 1000.0])
def test_a_plan_rate_that_is_not_an_integer_is_refused_not_stored_truncated(client, session, ops, value):
    r = client.post("/api/admin/commission-plans", json={"rates": [{"level": 1, "bps": value}]}, headers=ops)
    body = _refused_as_amount(r)
    assert body["details"]["json"]["rates"]["0"]["bps"]
    assert session.scalar(select(func.count()).select_from(CommissionPlan)) == 0
    assert client.post("/api/admin/commission-plans", json={"rates": [{"level": 1, "bps": 1000}]},
                       headers=ops).status_code == 201


@pytest.mark.parametrize("field, value", [("fee_bps", 12.9), ("fee_bps", "12"), ("tax_bps", True),
                                          ("min_fen", 100.5), ("max_fen", "500000"), ("daily_max_fen", 1e6),
                                          ("fee_fixed_fen", False), ("tax_threshold_fen", 0.5),
                                          ("real_name_from_fen", "1"), ("auto_approve_below_fen", 99.9)])
def test_withdrawal_rule_amounts_and_rates_are_integers(client, session, ops, field, value):
    r = client.put("/api/admin/withdrawal-rules/*", json={field: value}, headers=ops)
    body = _refused_as_amount(r)
    assert field in body["details"]["json"]
    assert session.scalar(select(func.count()).select_from(WithdrawalRule)) == 0


def test_an_integer_fee_is_stored_as_sent(client, ops):
    r = client.put("/api/admin/withdrawal-rules/*", json={"fee_bps": 12}, headers=ops)
    assert r.status_code == 200 and r.get_json()["fee_bps"] == 12


@pytest.mark.parametrize("path, method, body", [
    ("/api/admin/payouts/limits", "patch", {"daily_total_limit_fen": 100.5}),
    ("/api/admin/payouts/limits", "patch", {"failure_rate_limit_bps": "500"}),
    ("/api/admin/referral-rules", "patch", {"partner_spend_threshold_fen": 9.99}),
    ("/api/admin/grades", "post", {"code": "gold", "rank": 1, "min_personal_sales_fen": 1.5}),
    ("/api/admin/grades", "post", {"code": "gold", "rank": 1, "min_downline_sales_fen": "100"}),
])
def test_every_other_fen_and_bps_field_is_strict_too(client, ops, path, method, body):
    _refused_as_amount(getattr(client, method)(path, json=body, headers=ops))


def test_every_fen_and_bps_field_of_every_request_schema_is_a_strict_field(app):
    """Catches a new *_fen or *_bps field declared with a lenient Integer."""
    import marshmallow

    seen, lenient = 0, []

    def walk(schema, where):
        nonlocal seen
        for name, field in schema.fields.items():
            inner = field.inner if isinstance(field, marshmallow.fields.List) else field
            if isinstance(inner, marshmallow.fields.Nested):
                walk(inner.schema, f"{where}.{name}")
                continue
            if name.endswith("_fen") or name.endswith("_bps") or name == "bps":
                seen += 1
                if not isinstance(inner, (Fen, Bps)):
                    lenient.append(f"{where}.{name}")

    for rule in app.url_map.iter_rules():
        spec = getattr(app.view_functions[rule.endpoint], "_spec", {})
        if spec.get("body") is not None and spec.get("content_type") == "application/json":
            walk(spec["body"], rule.rule)
    assert seen >= 15 and lenient == []


def test_other_integers_in_json_bodies_are_strict_but_not_amount_errors(client, ops):
    r = client.post("/api/admin/grades", json={"code": "gold", "rank": "1"}, headers=ops)
    assert (r.status_code, r.get_json()["code"]) == (422, "validation_error")
    r = client.post("/api/admin/stores/1/staff", json={"member_id": 1.0, "position": "clerk"}, headers=ops)
    assert (r.status_code, r.get_json()["code"]) == (422, "validation_error")


@pytest.mark.parametrize("field_class, good, bad", [
    (Int, 5, [5.0, "5", True, False]),
    (Fen, 0, [0.0, "0", False, 10 ** 13]),
    (Bps, 10_000, [1.5, "1", True, 10_001, -1]),
])
def test_the_strict_fields_themselves(field_class, good, bad):
    import marshmallow

    assert field_class().deserialize(good) == good
    for value in bad:
        with pytest.raises(marshmallow.ValidationError):
            field_class().deserialize(value)


@pytest.mark.parametrize("name", ["", " ", "   \t\n", "\u3000"])
def test_a_blank_store_name_is_refused(client, session, ops, name):
    r = client.post("/api/admin/stores", json={"name": name}, headers=ops)
    assert (r.status_code, r.get_json()["code"]) == (422, "validation_error")
    assert r.get_json()["details"]["json"]["name"]
    assert session.scalar(select(func.count()).select_from(Store)) == 0


def test_a_store_name_is_stored_trimmed_and_the_service_refuses_blank_names_too(client, session, ops):
    from app.errors import ValidationFailed
    from app.referrals.stores import create_store

    r = client.post("/api/admin/stores", json={"name": "  望京店 "}, headers=ops)
    assert r.status_code == 201 and r.get_json()["name"] == "望京店"
    with pytest.raises(ValidationFailed) as err:
        create_store(session, "  ")
    assert (err.value.status, err.value.code) == (422, "store_name_required")


@pytest.mark.parametrize("path, method, body, field", [
    ("/api/admin/teams", "post", {"name": "  ", "captain_id": 1}, "name"),
    ("/api/admin/codes", "post", {"label": " "}, "label"),
    ("/api/admin/poster-templates", "post", {"name": "\t", "spec": {}}, "name"),
    ("/api/admin/withdrawals/1/reject", "post", {"reason": "   "}, "reason"),
    ("/api/admin/payouts/pause", "post", {"reason": " "}, "reason"),
    ("/api/admin/grades", "post", {"code": " ", "rank": 1}, "code"),
])
def test_other_blank_names_labels_and_reasons_are_refused(client, ops, path, method, body, field):
    r = getattr(client, method)(path, json=body, headers=ops)
    assert (r.status_code, r.get_json()["code"]) == (422, "validation_error"), r.get_json()
    assert r.get_json()["details"]["json"][field] == ["Must not be blank."]


def test_removing_a_role_the_member_does_not_have_is_refused(client, session, ops):
    alice = make_member(session)
    session.commit()
    r = client.delete(f"/api/admin/members/{alice.id}/roles/partner", headers=ops)
    assert r.status_code == 409
    assert r.get_json() == {"code": "role_not_held", "status": 409, "details": {"role": "partner"},
                            "message": "The member does not have this role."}
    r = client.delete(f"/api/admin/members/{alice.id}/roles/emperor", headers=ops)
    assert (r.status_code, r.get_json()["code"]) == (422, "role_invalid")
    r = client.delete(f"/api/admin/members/{alice.id}/roles/consumer", headers=ops)
    assert (r.status_code, r.get_json()["code"]) == (422, "role_invalid")


def test_granting_a_role_twice_is_refused_the_second_time_and_audited_once(client, session, ops):
    from app.audit.models import AuditEntry

    alice = make_member(session)
    session.commit()
    url = f"/api/admin/members/{alice.id}/roles"
    assert client.post(url, json={"role": "partner"}, headers=ops).status_code == 200
    r = client.post(url, json={"role": "partner"}, headers=ops)
    assert (r.status_code, r.get_json()["code"]) == (409, "role_already_held")
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == 1
