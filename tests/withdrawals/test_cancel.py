"""The member cancels a bill awaiting confirmation: WeChat cancels asynchronously (CANCELING, then CANCELLED) and
the money returns only once WeChat reports CANCELLED; a member who confirmed first is simply paid."""
from __future__ import annotations

import pytest

from app.ledger.service import check_ledger, member_balances
from app.withdrawals.service import history
from tests.conftest import tune_payouts
from tests.factories import member_headers
from tests.withdrawals.test_payouts import _auto_approve, bills, state_of, withdraw  # noqa: F401 (fixture)
from wechat.emulator.paydesk import PayErr


def cancel(client, rt, member, wid):
    return client.post(f"/api/mp/withdrawals/{wid}/cancel", headers=member_headers(rt, member.id))


def awaiting_confirmation(rt, partner, work) -> int:
    wid = withdraw(rt, partner)
    work()
    assert state_of(rt, wid).state == "WAIT_USER_CONFIRM"
    return wid


def test_cancel_waits_for_wechat_then_the_money_returns(rt, session, client, emulator, live_app, partner, work):
    emulator.pay.hold_cancels = True  # WeChat answers CANCELING and finishes later
    wid = awaiting_confirmation(rt, partner, work)
    r = cancel(client, rt, partner, wid)
    assert r.status_code == 200 and r.get_json()["state"] == "CANCELING" and "confirm" not in r.get_json()
    no = state_of(rt, wid).out_bill_no
    assert emulator.pay.bills[no]["state"] == "CANCELING"
    # Not before WeChat says CANCELLED: the money is still on its way out.
    assert member_balances(session, partner.id) == {"pending": 0, "available": 90_000, "withdrawing": 10_000}
    again = cancel(client, rt, partner, wid)  # a double tap asks nothing more
    assert again.status_code == 200 and again.get_json()["state"] == "CANCELING"
    with pytest.raises(PayErr):  # the payee can no longer confirm a bill being cancelled
        emulator.pay.settle(no, "confirm")

    emulator.pay.settle(no, "cancelled")  # WeChat finishes the cancel and notifies
    assert emulator.pay.wait_idle()
    w = state_of(rt, wid)
    assert (w.state, w.reason) == ("CANCELLED", "cancelled by the member")
    assert member_balances(session, partner.id) == {"pending": 0, "available": 100_000, "withdrawing": 0}
    assert emulator.pay.ledger()["paid_total"] == 0 and len(bills(emulator)) == 1
    moves = [(e["from"], e["to"], e["source"]) for e in history(session, wid)]
    assert moves[-2:] == [("WAIT_USER_CONFIRM", "CANCELING", "member"), ("CANCELING", "CANCELLED", "notify")]
    assert check_ledger(session).ok


def test_a_lost_cancelled_notification_is_made_up_by_query(rt, session, client, emulator, live_app, partner, work,
                                                         monkeypatch):
    tune_payouts(rt, cancel_followup=0)  # the follow-up query job is due at once
    emulator.pay.hold_cancels = True
    wid = awaiting_confirmation(rt, partner, work)
    assert cancel(client, rt, partner, wid).get_json()["state"] == "CANCELING"
    work()  # the follow-up finds the bill still CANCELING: nothing moves, it will ask again
    assert state_of(rt, wid).state == "CANCELING"
    assert member_balances(session, partner.id)["withdrawing"] == 10_000

    emulator.faults.add_notify("drop", 1)  # WeChat's CANCELLED notification never arrives
    emulator.pay.settle(state_of(rt, wid).out_bill_no, "cancelled")
    emulator.pay.wait_idle()
    assert state_of(rt, wid).state == "CANCELING"
    work()
    w = state_of(rt, wid)
    assert (w.state, w.reason) == ("CANCELLED", "cancelled by the member")
    assert member_balances(session, partner.id) == {"pending": 0, "available": 100_000, "withdrawing": 0}
    assert check_ledger(session).ok


def test_member_confirmed_before_the_cancel_is_paid_normally(rt, session, client, emulator, live_app, partner, work):
    wid = awaiting_confirmation(rt, partner, work)
    no = state_of(rt, wid).out_bill_no
    emulator.faults.add_notify("reorder", 1)  # the SUCCESS notification is late: we still think WAIT_USER_CONFIRM
    emulator.pay.settle(no, "confirm")  # the member confirmed in WeChat...
    assert state_of(rt, wid).state == "WAIT_USER_CONFIRM"
    r = cancel(client, rt, partner, wid)  # ...and then tapped cancel
    assert r.status_code == 409
    body = r.get_json()
    assert body["code"] == "already_confirmed" and body["details"]["state"] == "SUCCESS"
    assert state_of(rt, wid).state == "SUCCESS"  # learnt by query when WeChat refused the cancel
    assert emulator.pay.bills[no]["state"] == "SUCCESS"
    emulator.pay.flush_held()  # the late notification changes nothing
    assert emulator.pay.wait_idle()
    assert member_balances(session, partner.id) == {"pending": 0, "available": 90_000, "withdrawing": 0}
    assert emulator.pay.ledger()["paid_total"] == 9_900 and len(emulator.pay.ledger()["payouts"]) == 1
    assert cancel(client, rt, partner, wid).get_json()["code"] == "withdrawal_state_conflict"
    assert check_ledger(session).ok


def test_wechat_not_answering_the_cancel_changes_nothing(rt, session, client, emulator, live_app, partner, work):
    wid = awaiting_confirmation(rt, partner, work)
    emulator.faults.add(target="pay.cancel", kind="error", error="SYSTEM_ERROR", phase="before", count=1)
    r = cancel(client, rt, partner, wid)
    assert r.status_code == 502 and r.get_json()["code"] == "wechat_pay_unavailable"
    assert state_of(rt, wid).state == "WAIT_USER_CONFIRM"
    assert member_balances(session, partner.id)["withdrawing"] == 10_000
    assert cancel(client, rt, partner, wid).status_code == 200  # trying again works (WeChat finishes at once)
    assert emulator.pay.wait_idle()
    assert state_of(rt, wid).state == "CANCELLED"
    assert member_balances(session, partner.id) == {"pending": 0, "available": 100_000, "withdrawing": 0}
    assert check_ledger(session).ok


def test_another_members_bill_cannot_be_cancelled(rt, session, client, emulator, live_app, partner_factory, work):
    alice, bob = partner_factory(), partner_factory()
    wid = awaiting_confirmation(rt, alice, work)
    assert cancel(client, rt, bob, wid).status_code == 404
    assert state_of(rt, wid).state == "WAIT_USER_CONFIRM"
    assert all(b["state"] == "WAIT_USER_CONFIRM" for b in bills(emulator))
