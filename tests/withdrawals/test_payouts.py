"""Payouts against the emulated WeChat Pay: every state path, unknown outcomes, notifications in any order."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from app.db import utcnow
from app.ledger.models import JournalEntry
from app.ledger.service import check_ledger, member_balances, platform_account
from app.outbox.models import OutboxMessage
from app.withdrawals.models import Withdrawal
from app.withdrawals.service import request_withdrawal
from tests.factories import member_headers
from tests.withdrawals.conftest import set_rule
from app.withdrawals.jobs import reconcile_payouts
from tests.conftest import outbox_due_now, tune_payouts

pytestmark = pytest.mark.sqlite  # also runs on SQLite (embedded mode): LIEBIAN_TEST_DB=sqlite


@pytest.fixture(autouse=True)
def _auto_approve(session):
    set_rule(session, auto_approve_below_fen=1_000_000, max_fen=1_000_000, daily_max_fen=10**9, daily_count=100,
             fee_bps=100)


def withdraw(rt, member, amount=10_000, key="k1") -> int:
    with rt.session() as s:
        w, _ = request_withdrawal(s, member.id, amount, key, appid=rt.settings.wechat_miniapp_id)
        return w.id


def state_of(rt, wid) -> Withdrawal:
    with rt.sessions() as s:
        return s.get(Withdrawal, wid)


def bills(emulator):
    return emulator.pay.ledger()["bills"]


def balance(session, kind):
    from app.ledger.models import LedgerAccount

    session.expire_all()
    return session.scalar(select(LedgerAccount.balance_fen).where(LedgerAccount.id == platform_account(session, kind)))


def test_user_confirms_and_the_money_lands_in_payout_clearing(rt, session, client, emulator, live_app, partner, work):
    wid = withdraw(rt, partner)
    work()
    w = state_of(rt, wid)
    assert w.state == "WAIT_USER_CONFIRM"
    view = client.get(f"/api/mp/withdrawals/{wid}", headers=member_headers(rt, partner.id)).get_json()
    assert view["confirm"] == {"mchId": rt.settings.wechatpay_mch_id, "appId": rt.settings.wechat_miniapp_id,
                               "package": w.package_info}
    [bill] = bills(emulator)
    assert (bill["out_bill_no"], bill["transfer_amount"], bill["transfer_scene_id"]) == (w.out_bill_no, 9_900, "1005")
    emulator.pay.settle(w.out_bill_no, "confirm")
    assert emulator.pay.wait_idle()
    assert state_of(rt, wid).state == "SUCCESS"
    assert member_balances(session, partner.id) == {"pending": 0, "available": 90_000, "withdrawing": 0}
    assert (balance(session, "payout_clearing"), balance(session, "fees")) == (9_900, 100)
    assert emulator.pay.ledger()["paid_total"] == 9_900
    assert check_ledger(session).ok


def test_unconfirmed_bill_closes_after_24_hours_and_money_returns(rt, session, client, emulator, live_app, partner,
                                                                   work):
    wid = withdraw(rt, partner)
    work()
    emulator.pay.settle(state_of(rt, wid).out_bill_no, "ignore")
    emulator.pay.wait_idle()
    w = state_of(rt, wid)
    assert w.state == "CANCELLED" and "24 hours" in w.reason
    view = client.get(f"/api/mp/withdrawals/{wid}", headers=member_headers(rt, partner.id)).get_json()
    assert view["state"] == "CANCELLED" and "confirm" not in view
    assert member_balances(session, partner.id) == {"pending": 0, "available": 100_000, "withdrawing": 0}
    assert check_ledger(session).ok


def test_wechat_failure_returns_money_with_the_reason(rt, session, emulator, live_app, partner, work):
    wid = withdraw(rt, partner)
    work()
    emulator.pay.settle(state_of(rt, wid).out_bill_no, "fail", "PAYEE_ACCOUNT_ABNORMAL")
    emulator.pay.wait_idle()
    w = state_of(rt, wid)
    assert (w.state, w.reason) == ("FAIL", "PAYEE_ACCOUNT_ABNORMAL")
    assert member_balances(session, partner.id)["available"] == 100_000
    assert emulator.pay.ledger()["paid_total"] == 0


def test_notification_before_the_worker_learns_the_outcome(rt, session, emulator, live_app, partner, work):
    emulator.pay.auto_confirm = True  # the bill succeeds at once and WeChat notifies...
    emulator.faults.add(target="pay.create", kind="timeout", seconds=1.5, phase="after", count=1)  # ...answer lost
    wid = withdraw(rt, partner)
    work(rounds=1)
    emulator.pay.wait_idle()
    assert state_of(rt, wid).state == "SUCCESS"  # the notification settled it
    work()  # the worker's retry queries, finds SUCCESS: nothing changes
    assert state_of(rt, wid).state == "SUCCESS"
    assert len(bills(emulator)) == 1 and emulator.pay.ledger()["paid_total"] == 9_900
    assert session.scalar(select(func.count()).select_from(JournalEntry)
                          .where(JournalEntry.key == f"withdrawal:{wid}:paid")) == 1
    assert check_ledger(session).ok


def test_worker_learns_before_a_late_notification(rt, session, emulator, live_app, partner, work, monkeypatch):
    tune_payouts(rt, confirm_recheck=0)  # query bills waiting for confirmation at every pass

    emulator.faults.add_notify("reorder", 1)  # the SUCCESS notification is held back
    wid = withdraw(rt, partner)
    work()
    emulator.pay.settle(state_of(rt, wid).out_bill_no, "confirm")
    assert reconcile_payouts(rt) == 1
    work()
    assert state_of(rt, wid).state == "SUCCESS"  # learned by query
    assert emulator.pay.flush_held() == 1  # the late notification arrives...
    emulator.pay.wait_idle()
    delivered = [n for n in emulator.pay.notifications if n.get("ok")]
    assert delivered and state_of(rt, wid).state == "SUCCESS"  # ...and changes nothing
    assert member_balances(session, partner.id) == {"pending": 0, "available": 90_000, "withdrawing": 0}
    assert check_ledger(session).ok


def test_duplicated_notifications_pay_once(rt, session, emulator, live_app, partner, work):
    emulator.faults.add_notify("duplicate", 5)
    wid = withdraw(rt, partner)
    work()
    emulator.pay.settle(state_of(rt, wid).out_bill_no, "confirm")
    emulator.pay.wait_idle()
    assert len([n for n in emulator.pay.notifications if n.get("ok")]) == 2
    assert state_of(rt, wid).state == "SUCCESS"
    assert balance(session, "payout_clearing") == 9_900
    assert check_ledger(session).ok


def test_a_contradicting_report_never_changes_a_final_withdrawal(rt, session, emulator, live_app, partner, work):
    from app.withdrawals.payouts import on_transfer_notification
    from app.withdrawals.service import history

    wid = withdraw(rt, partner)
    work()
    w = state_of(rt, wid)
    emulator.pay.settle(w.out_bill_no, "confirm")
    emulator.pay.wait_idle()
    with rt.session() as s:
        on_transfer_notification(s, {"out_bill_no": w.out_bill_no, "state": "FAIL", "fail_reason": "forged"})
    assert state_of(rt, wid).state == "SUCCESS"
    assert member_balances(session, partner.id)["available"] == 90_000
    with rt.sessions() as s:
        assert any("refused report FAIL" in e["note"] for e in history(s, wid))
    assert check_ledger(session).ok


def test_unknown_outcome_is_resolved_by_query_never_a_second_bill(rt, session, emulator, live_app, partner, work):
    emulator.faults.add(target="pay.create", kind="error", error="SYSTEM_ERROR", phase="after", count=1)
    wid = withdraw(rt, partner)
    work()
    w = state_of(rt, wid)
    assert w.state == "WAIT_USER_CONFIRM" and w.submit_attempts == 1  # found by query, not billed again
    assert [b["out_bill_no"] for b in bills(emulator)] == [w.out_bill_no]


def test_not_found_right_after_submit_waits_then_resubmits_the_same_bill(rt, session, emulator, live_app, partner,
                                                                          work, monkeypatch):
    from workers.outbox import stats

    tune_payouts(rt, accept_grace=3600)
    emulator.faults.add(target="pay.create", kind="timeout", seconds=1.5, phase="before", count=1)  # never arrived
    wid = withdraw(rt, partner)
    work(rounds=3)
    w = state_of(rt, wid)
    assert (w.state, w.submit_attempts) == ("SUBMITTING", 1)  # NOT_FOUND, but maybe still being accepted: wait
    assert bills(emulator) == [] and stats(rt)["waiting"] == 1
    tune_payouts(rt, accept_grace=0)
    with rt.session() as s:  # the delayed retry falls due
        outbox_due_now(s)
    work()
    w = state_of(rt, wid)
    assert (w.state, w.submit_attempts) == ("WAIT_USER_CONFIRM", 2)
    assert [b["out_bill_no"] for b in bills(emulator)] == [w.out_bill_no]


def test_definite_rejection_fails_and_returns_money(rt, session, emulator, live_app, partner_factory, work):
    stranger = partner_factory(in_wechat=False)  # WeChat answers OPENID_MISMATCH
    wid = withdraw(rt, stranger)
    work()
    w = state_of(rt, wid)
    assert w.state == "FAIL" and w.reason.startswith("OPENID_MISMATCH")
    assert member_balances(session, stranger.id)["available"] == 100_000
    assert check_ledger(session).ok


def test_real_name_is_sent_encrypted_from_2000_yuan(rt, session, emulator, live_app, partner_factory, work):
    rich = partner_factory(available_fen=500_000, real_name="张三")
    wid = withdraw(rt, rich, amount=300_000)
    work()
    assert state_of(rt, wid).state == "WAIT_USER_CONFIRM"
    [bill] = emulator.pay.bills.values()
    assert bill["content"]["user_name"] == "张三"  # the emulator decrypted it with WeChat Pay's private key


def test_a_lost_job_is_picked_up_by_the_sweeper(rt, session, redis, emulator, live_app, partner, work):
    wid = withdraw(rt, partner)
    redis.flushdb()  # the RQ job is gone (a killed worker, a lost Redis)
    work(rounds=1)
    assert state_of(rt, wid).state == "APPROVED"
    work(lease=0)  # the sweeper hands the outbox row to RQ again
    assert state_of(rt, wid).state == "WAIT_USER_CONFIRM"
    assert len(bills(emulator)) == 1


def test_reconciliation_finishes_a_withdrawal_killed_mid_submit(rt, session, emulator, live_app, partner, work):
    """The worker died after marking SUBMITTING and after WeChat created the bill, before recording the answer."""
    from app.withdrawals.payouts import pay_client
    emulator.pay.auto_confirm = True
    emulator.faults.add_notify("drop", 1)
    wid = withdraw(rt, partner)
    with rt.session() as s:
        w = s.get(Withdrawal, wid)
        w.state, w.submit_attempts = "SUBMITTING", 1
        s.execute(update(OutboxMessage).values(done_at=utcnow()))
    pay_client(rt).create_transfer_bill(w.out_bill_no, w.openid, w.net_fen, w.remark,
                                                                   appid=w.appid)
    assert reconcile_payouts(rt) == 1
    work()
    assert state_of(rt, wid).state == "SUCCESS"
    assert len(bills(emulator)) == 1 and emulator.pay.ledger()["paid_total"] == 9_900
    assert check_ledger(session).ok
