"""Two accounts of one person, each with a withdrawal under the same client key, merge cleanly."""
from sqlalchemy import select

from app.ledger.service import check_ledger, member_balances
from app.members.merge import merge_members
from app.withdrawals.models import Withdrawal
from tests.factories import member_headers
from tests.withdrawals.conftest import set_rule


def test_merge_keeps_both_withdrawals_even_with_the_same_idempotency_key(client, rt, session, partner_factory):
    set_rule(session, auto_approve_below_fen=0)
    a, b = partner_factory(), partner_factory()
    for m in (a, b):
        r = client.post("/api/mp/withdrawals", json={"amount_fen": 10_000},
                        headers={**member_headers(rt, m.id), "Idempotency-Key": "same-key"})
        assert r.status_code == 201, r.get_json()
    merge_members(session, a.id, b.id, "unionid")
    session.commit()
    rows = session.scalars(select(Withdrawal).order_by(Withdrawal.id)).all()
    assert {w.member_id for w in rows} == {a.id}
    assert len({w.idempotency_key for w in rows}) == 2
    assert member_balances(session, a.id)["withdrawing"] == 20_000
    assert check_ledger(session).ok
