"""Each moment reaches the member once, on the right channel, through the outbox and the emulator."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.events import subscribers_of
from app.grades.models import Grade
from app.notifications.models import NotificationAttempt, SubscriptionGrant
from app.notifications.jobs import RATE_KEY
from app.outbox import emit
from tests.conftest import outbox_due_now
from tests.notifications.conftest import oa_tpl, sub_tpl, tune_notify


def _moment_events(nw, session, member):
    """(moment, event name, data) for a member as the recipient."""
    session.add_all([Grade(code="silver", name="白银", rank=1), Grade(code="gold", name="黄金会员", rank=2)])
    other, _ = nw.person(nickname="李四")
    session.commit()
    return [
        ("commission_accrued", "commission.accrued",
         {"commission_id": 1, "order_id": 999999, "earner_id": member.id, "level": 1, "amount_fen": 1230}),
        ("commission_matured", "commission.matured", {"member_id": member.id, "amount_fen": 4560, "batch_id": 7}),
        ("withdrawal_paid", "withdrawal.paid", {"withdrawal_id": 3, "member_id": member.id, "net_fen": 9900}),
        ("withdrawal_failed", "withdrawal.failed", {"withdrawal_id": 4, "member_id": member.id, "state": "FAIL",
                                                    "reason": "PAYEE_ACCOUNT_ABNORMAL", "amount_fen": 500}),
        ("grade_upgraded", "grade.changed", {"member_id": member.id, "from": "silver", "to": "gold", "actor": "auto"}),
        ("member_bound", "member.bound", {"member_id": other.id, "referrer_id": member.id, "previous_referrer_id": None,
                                          "code_id": None, "store_id": None, "channel": "mini_launch"}),
    ]


def test_each_moment_sends_exactly_one_subscribe_message(nw, session, work):
    member, p = nw.person()
    events = _moment_events(nw, session, member)
    for moment, *_ in events:
        nw.grant(member, p, moment)
    for _moment, name, data in events:
        nw.event(name, **data)
    work()
    moments = [moment for moment, *_ in events]  # the paid withdrawal also earns a badge: its own moment
    msgs = nw.messages(member, moments)
    assert sorted((m.moment, m.status, m.channel) for m in msgs) == sorted(
        (moment, "sent", "subscribe") for moment, *_ in events)
    sent = nw.sent(p, moments)
    assert sorted(m["template_id"] for m in sent) == sorted(sub_tpl(moment) for moment, *_ in events)
    assert all(m["kind"] == "subscribe" for m in sent)
    by_tpl = {m["template_id"]: m for m in sent}
    assert by_tpl[sub_tpl("commission_matured")]["data"]["amount2"] == {"value": "45.60元"}
    assert by_tpl[sub_tpl("withdrawal_failed")]["data"]["thing4"]["value"].startswith("收款微信账户异常")
    assert by_tpl[sub_tpl("grade_upgraded")]["data"]["thing2"] == {"value": "黄金会员"}
    assert by_tpl[sub_tpl("member_bound")]["data"]["name2"] == {"value": "李*"}
    assert by_tpl[sub_tpl("withdrawal_paid")]["page"] == "pages/withdrawals/index"
    # every grant was used by exactly one message
    grants = session.scalars(select(SubscriptionGrant).where(SubscriptionGrant.member_id == member.id)).all()
    assert len(grants) == len(events) and all(g.consumed_at and g.message_id for g in grants)
    assert len({g.message_id for g in grants}) == len(events)


def test_a_grade_change_that_is_no_upgrade_sends_nothing(nw, session, work):
    member, p = nw.person()
    session.add_all([Grade(code="silver", name="白银", rank=1), Grade(code="gold", name="黄金", rank=2)])
    session.commit()
    nw.grant(member, p, "grade_upgraded")
    nw.event("grade.changed", member_id=member.id, **{"from": "gold", "to": "silver"}, actor="operator:1")
    work()
    assert nw.messages(member) == [] and nw.sent(p) == []


def test_an_exhausted_grant_falls_back_to_a_template_message_for_a_follower(nw, session, work, emulator):
    fan, fp = nw.person(following=True)
    nw.grant(fan, fp, "commission_matured")
    for batch in (1, 2):
        nw.event("commission.matured", member_id=fan.id, amount_fen=100 * batch, batch_id=batch)
    work()
    msgs = nw.messages(fan)
    assert [(m.status, m.channel) for m in msgs] == [("sent", "subscribe"), ("sent", "template")]
    sent = nw.sent(fp)
    assert [(m["kind"], m["template_id"]) for m in sent] == [
        ("subscribe", sub_tpl("commission_matured")), ("template", oa_tpl("commission_matured"))]
    assert sent[1]["miniprogram"]["pagepath"] == "pages/earnings/index"


def test_no_grant_and_no_follow_sends_nothing_and_says_so(nw, session, work, client, operator_headers):
    member, p = nw.person(following=False)
    nw.event("commission.matured", member_id=member.id, amount_fen=100, batch_id=1)
    work()
    [msg] = nw.messages(member)
    assert (msg.status, msg.reason, msg.channel) == ("skipped", "no_channel", "")
    assert nw.sent(p) == []
    r = client.get(f"/api/admin/members/{member.id}/notifications", headers=operator_headers)
    assert r.status_code == 200
    [item] = r.get_json()["items"]
    assert item["status"] == "skipped" and item["reason"] == "no_channel"
    assert [a["outcome"] for a in item["attempts"]] == ["skipped"]


def test_replays_send_nothing_twice(nw, session, work):
    member, p = nw.person(following=True)
    nw.grant(member, p, "withdrawal_paid")
    nw.grant(member, p, "withdrawal_paid")
    event_id = nw.event("withdrawal.paid", withdrawal_id=5, member_id=member.id, net_fen=100)
    work()
    [sub] = [s for s in subscribers_of("withdrawal.paid") if s.name == "notifications.withdrawal_paid"]
    for i in range(3):  # the same event delivered again, as a replay or a second delivery would
        emit(session, "events.deliver", sub.name, event_id, key=f"replay:{i}")
    session.commit()
    work()
    assert len(nw.messages(member, ["withdrawal_paid"])) == 1
    assert len(nw.sent(p, ["withdrawal_paid"])) == 1


def test_muted_and_disabled_moments_are_recorded_not_sent(nw, session, work, client):
    member, p = nw.person(following=True)
    r = client.put("/api/mp/notifications/mutes", json={"moments": ["member_bound"]}, headers=nw.headers(member))
    assert r.status_code == 200 and r.get_json()["muted"] == ["member_bound"]
    from app.notifications.service import save_moment_config

    save_moment_config(session, "grade_upgraded", {"enabled": False})
    session.add_all([Grade(code="a", name="A", rank=1), Grade(code="b", name="B", rank=2)])
    session.commit()
    other, _ = nw.person()
    nw.event("member.bound", member_id=other.id, referrer_id=member.id, previous_referrer_id=None, code_id=None,
             store_id=None, channel="oa_scan")
    nw.event("grade.changed", member_id=member.id, **{"from": "a", "to": "b"}, actor="auto")
    work()
    assert sorted((m.moment, m.status, m.reason) for m in nw.messages(member)) == [
        ("grade_upgraded", "skipped", "disabled"), ("member_bound", "skipped", "muted")]
    assert nw.sent(p) == []


def test_quiet_hours_delay_non_urgent_moments_only(nw, rt, session, work):
    tune_notify(rt, quiet_start=0, quiet_end=23)  # quiet all day but 23:00-24:00 China time
    from datetime import datetime, timezone

    if datetime.now(timezone.utc).hour == 15:  # 23:xx in China: outside these quiet hours
        tune_notify(rt, quiet_start=23, quiet_end=22)
    member, p = nw.person(following=True)
    nw.event("commission.matured", member_id=member.id, amount_fen=100, batch_id=1)
    nw.event("withdrawal.paid", withdrawal_id=5, member_id=member.id, net_fen=100)
    work()
    by_moment = {m.moment: m for m in nw.messages(member)}
    assert by_moment["withdrawal_paid"].status == "sent"
    waiting = by_moment["commission_matured"]
    assert waiting.status == "pending" and waiting.not_before > waiting.created_at
    assert [m["template_id"] for m in nw.sent(p)] == [oa_tpl("withdrawal_paid")]


def test_a_refusal_recorded_in_wechat_is_not_retried(nw, session, work, emulator):
    """The ledger holds a grant but WeChat says 43101 (the member banned the template since): recorded with the
    code, not retried; a non-follower has nothing to fall back to."""
    member, p = nw.person(following=False)
    nw.grant(member, p, "withdrawal_failed")
    emulator.sim(f"persons/{p['pid']}/subscribe_request", choices={sub_tpl("withdrawal_failed"): "ban"})
    nw.event("withdrawal.failed", withdrawal_id=1, member_id=member.id, state="REJECTED", reason="资料不全",
             amount_fen=500)
    work()
    [msg] = nw.messages(member)
    assert (msg.status, msg.errcode) == ("failed", 43101)
    attempts = session.scalars(select(NotificationAttempt).where(NotificationAttempt.message_id == msg.id)).all()
    assert [(a.outcome, a.errcode) for a in attempts] == [("failed", 43101)]


def test_a_member_refusal_reported_by_the_mini_program_voids_grants(nw, session, work, client):
    member, p = nw.person(following=False)
    h = nw.headers(member)
    tpl = sub_tpl("commission_matured")
    r = client.post("/api/mp/subscriptions", json={"results": {tpl: "accept"}}, headers=h)
    assert r.status_code == 200 and r.get_json() == {"grants": {tpl: 1}}
    r = client.post("/api/mp/subscriptions", json={"results": {tpl: "ban", "OTHER": "filter"}}, headers=h)
    assert r.get_json() == {"grants": {tpl: 0, "OTHER": 0}}
    assert client.post("/api/mp/subscriptions", json={"results": {tpl: "maybe"}}, headers=h).status_code == 422
    nw.event("commission.matured", member_id=member.id, amount_fen=100, batch_id=1)
    work()
    [msg] = nw.messages(member)
    assert (msg.status, msg.reason) == ("skipped", "no_channel")


@pytest.mark.parametrize("fault", ["SYSTEM_ERROR", "500"])
def test_transient_errors_are_retried_and_keep_the_grant(nw, session, work, emulator, fault):
    member, p = nw.person()
    nw.grant(member, p, "withdrawal_paid")
    emulator.faults.add("message.subscribe", "error", error=fault, count=2)
    nw.event("withdrawal.paid", withdrawal_id=5, member_id=member.id, net_fen=100)
    work()
    [msg] = nw.messages(member, ["withdrawal_paid"])
    assert (msg.status, msg.channel) == ("sent", "subscribe")
    attempts = session.scalars(select(NotificationAttempt).where(NotificationAttempt.message_id == msg.id)
                               .order_by(NotificationAttempt.id)).all()
    assert [a.outcome for a in attempts] == ["retry", "retry", "sent"]
    assert len(nw.sent(p, ["withdrawal_paid"])) == 1


def test_a_message_held_back_by_the_rate_limit_goes_out_once_later(nw, rt, session, work):
    tune_notify(rt, rate_per_s=0.001, rate_burst=1)  # one send, then a long wait
    people = [nw.person() for _ in range(2)]
    for member, p in people:
        nw.grant(member, p, "withdrawal_paid")
        nw.event("withdrawal.paid", withdrawal_id=member.id, member_id=member.id, net_fen=100)
    work()
    paid = ["withdrawal_paid"]  # (each paid withdrawal also earns a badge, a message of its own)
    assert sorted(m.status for member, _p in people for m in nw.messages(member, paid)) == ["pending", "sent"]
    rt.redis.delete(RATE_KEY)  # the wait is over
    outbox_due_now(session)
    session.commit()
    work()
    for member, p in people:
        [msg] = nw.messages(member, paid)
        assert msg.status == "sent" and len(nw.sent(p, paid)) == 1


def test_an_invalid_template_id_is_recorded_and_not_retried(nw, session, work):
    from app.notifications.service import save_moment_config

    save_moment_config(session, "withdrawal_paid", {"channels": ["template"], "template": {"template_id": "GONE"}})
    session.commit()
    member, p = nw.person(following=True)
    nw.event("withdrawal.paid", withdrawal_id=5, member_id=member.id, net_fen=100)
    work()
    [msg] = nw.messages(member, ["withdrawal_paid"])
    assert (msg.status, msg.errcode) == ("failed", 40037)


def test_template_delivery_reports_are_recorded_against_the_message(nw, session, work, emulator, live_app, client,
                                                                   operator_headers):
    member, p = nw.person(following=True)
    emulator.sim(f"persons/{p['pid']}/block_templates", block=True)
    nw.event("withdrawal.paid", withdrawal_id=5, member_id=member.id, net_fen=100)
    work()
    [msg] = nw.messages(member, ["withdrawal_paid"])
    assert (msg.status, msg.channel) == ("sent", "template")
    reports = emulator.sim("messages/reports")  # this message's, and the first-withdrawal badge's
    assert reports and all(r["delivered"] for r in reports)
    [msg] = nw.messages(member, ["withdrawal_paid"])
    assert msg.delivery == "failed:user block"
    items = client.get(f"/api/admin/members/{member.id}/notifications", headers=operator_headers).get_json()["items"]
    [paid] = [i for i in items if i["moment"] == "withdrawal_paid"]
    assert [a["outcome"] for a in paid["attempts"]] == ["sent", "undelivered"]
