"""A real withdrawal through the emulated WeChat Pay: the confirm message, the reminder before WeChat's 24-hour
expiry (not after the member confirmed), and the paid message."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from app.db import utcnow
from app.members.service import grant_role
from app.notifications.models import NotificationMessage
from app.outbox.models import OutboxMessage
from tests.notifications.conftest import sub_tpl, tune_notify
from tests.withdrawals.conftest import _fast_payouts, fund  # noqa: F401 (fixture)
from tests.withdrawals.test_payouts import _auto_approve, state_of, withdraw  # noqa: F401 (fixture)


def _partner(nw, session):
    member, p = nw.person()
    grant_role(session, member.id, "partner")
    fund(session, member.id, 100_000)
    session.commit()
    return member, p


def _let_time_pass(session, moment: str) -> None:
    session.execute(update(NotificationMessage).where(NotificationMessage.moment == moment)
                    .values(not_before=utcnow() - timedelta(seconds=1)))
    session.execute(update(OutboxMessage).where(OutboxMessage.func == "notifications.send",
                                                OutboxMessage.done_at.is_(None))
                    .values(available_at=utcnow() - timedelta(seconds=1)))
    session.commit()


def test_confirm_message_now_reminder_dropped_once_confirmed(nw, rt, session, emulator, live_app, work):
    tune_notify(rt, confirm_remind_after=3600)
    member, p = _partner(nw, session)
    for moment in ("withdrawal_confirm", "withdrawal_confirm_reminder", "withdrawal_paid"):
        nw.grant(member, p, moment)
    wid = withdraw(rt, member)
    work()
    assert state_of(rt, wid).state == "WAIT_USER_CONFIRM"
    by_moment = {m.moment: m for m in nw.messages(member)}
    assert by_moment["withdrawal_confirm"].status == "sent"
    reminder = by_moment["withdrawal_confirm_reminder"]
    assert reminder.status == "pending"
    assert timedelta(minutes=59) < reminder.not_before - reminder.created_at < timedelta(minutes=61)
    [confirm] = nw.sent(p)
    assert confirm["template_id"] == sub_tpl("withdrawal_confirm")
    assert confirm["page"] == f"pages/withdrawals/confirm?id={wid}"
    assert confirm["data"]["amount2"] == {"value": "99.00元"}

    emulator.pay.settle(state_of(rt, wid).out_bill_no, "confirm")  # the member confirms in WeChat
    assert emulator.pay.wait_idle()
    work()
    assert state_of(rt, wid).state == "SUCCESS"
    _let_time_pass(session, "withdrawal_confirm_reminder")
    work()
    by_moment = {m.moment: m for m in nw.messages(member)}
    assert (by_moment["withdrawal_confirm_reminder"].status, by_moment["withdrawal_confirm_reminder"].reason) == (
        "skipped", "not_awaiting")
    assert by_moment["withdrawal_paid"].status == "sent"
    assert [m["template_id"] for m in nw.sent(p)] == [sub_tpl("withdrawal_confirm"), sub_tpl("withdrawal_paid")]


def test_the_reminder_reaches_a_member_who_has_not_confirmed(nw, rt, session, emulator, live_app, work):
    tune_notify(rt, confirm_remind_after=3600)
    member, p = _partner(nw, session)
    nw.grant(member, p, "withdrawal_confirm_reminder")
    wid = withdraw(rt, member)
    work()
    assert state_of(rt, wid).state == "WAIT_USER_CONFIRM"
    assert nw.sent(p) == []  # no grant for the first message, no follower: skipped, recorded
    _let_time_pass(session, "withdrawal_confirm_reminder")
    work()
    [reminder] = nw.sent(p)
    assert reminder["template_id"] == sub_tpl("withdrawal_confirm_reminder")
    assert reminder["data"]["thing1"] == {"value": "提现即将过期，请尽快确认收款"}
    statuses = {m.moment: (m.status, m.reason) for m in nw.messages(member)}
    assert statuses == {"withdrawal_confirm": ("skipped", "no_channel"),
                        "withdrawal_confirm_reminder": ("sent", "")}
