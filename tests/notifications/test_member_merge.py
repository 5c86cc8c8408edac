"""When one person's two members merge (a unionid turning up on the second), the notification rows follow the
survivor: grants a send can use, mutes, and the message history operators read."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.events import subscribers_of
from app.identity.linking import attach_identity
from app.notifications.models import NotificationMessage
from app.notifications.service import grants_left, mutes_of, plan_message, set_mutes
from app.outbox import emit
from tests.factories import make_member
from tests.notifications.conftest import sub_tpl


def _one_person_two_members(nw, session, settings, emulator):
    """The person's service-account member (older: it survives) and their mini-program member (newer), one
    WeChat person in the emulator; `merge()` links the unionid to the mini-program member, as a login that
    reveals it does."""
    p = emulator.sim("persons")
    older = make_member(session, "张三丰", oa_openid=p["openids"][settings.wechat_app_id], unionid=p["unionid"])
    mini = make_member(session, "张三丰", mini_openid=p["openids"][settings.wechat_miniapp_id])
    session.commit()

    def merge():
        survivor = attach_identity(session, mini.id, "unionid", p["unionid"])
        session.commit()
        assert survivor.id == older.id
        return survivor

    return older, mini, p, merge


def _accrued(nw, member, commission_id: int, fen: int = 1230) -> int:
    return nw.event("commission.accrued", commission_id=commission_id, order_id=999999, earner_id=member.id,
                    level=1, amount_fen=fen)


@pytest.mark.sqlite
def test_grants_mutes_and_history_follow_the_survivor(nw, emulator, session, settings, work, client, operator_headers):
    older, mini, p, merge = _one_person_two_members(nw, session, settings, emulator)
    set_mutes(session, older.id, ["grade_upgraded"])
    session.commit()
    nw.event("withdrawal.paid", withdrawal_id=1, member_id=older.id, net_fen=500)  # no channel yet: skipped
    # On the mini-program: two grants for new commissions, mutes (one both accounts had), one message sent.
    nw.grant(mini, p, "commission_accrued")
    nw.grant(mini, p, "commission_accrued")
    r = client.put("/api/mp/notifications/mutes", json={"moments": ["member_bound", "grade_upgraded"]},
                   headers=nw.headers(mini))
    assert r.status_code == 200
    _accrued(nw, mini, 1)
    work()
    assert len(nw.sent(p)) == 1

    merge()

    assert grants_left(session, older.id) == {sub_tpl("commission_accrued"): 1}
    assert grants_left(session, mini.id) == {}
    assert mutes_of(session, older.id) == ["grade_upgraded", "member_bound"]
    assert mutes_of(session, mini.id) == []
    # The survivor's next commission goes out on the grant that came with the merge; a muted moment is not sent.
    _accrued(nw, older, 2, fen=4560)
    other, _ = nw.person(nickname="李四")
    nw.event("member.bound", member_id=other.id, referrer_id=older.id, previous_referrer_id=None, code_id=None,
             store_id=None, channel="oa_scan")
    work()
    sent = nw.sent(p)
    tpl = sub_tpl("commission_accrued")
    assert [(m["kind"], m["template_id"], m["data"]["amount2"]["value"]) for m in sent] == [
        ("subscribe", tpl, "12.30元"), ("subscribe", tpl, "45.60元")]
    assert grants_left(session, older.id) == {}
    # Both accounts' history, in the survivor's; the merged id has none left.
    items = client.get(f"/api/admin/members/{older.id}/notifications", headers=operator_headers).get_json()["items"]
    # (the paid withdrawal also earned a badge: its message is history too)
    assert sorted((i["moment"], i["status"], i["reason"]) for i in items if i["moment"] != "badge_earned") == [
        ("commission_accrued", "sent", ""), ("commission_accrued", "sent", ""), ("member_bound", "skipped", "muted"),
        ("withdrawal_paid", "skipped", "no_channel")]
    first = next(i for i in items if i["status"] == "sent" and i["values"]["amount_fen"] == 1230)
    assert [a["outcome"] for a in first["attempts"]] == ["sent"] and first["channel"] == "subscribe"
    r = client.get(f"/api/admin/members/{mini.id}/notifications", headers=operator_headers)
    assert r.status_code == 200 and r.get_json()["items"] == []


def test_an_event_delivered_after_the_merge_reaches_the_survivor_once(nw, emulator, session, settings, work):
    older, mini, p, merge = _one_person_two_members(nw, session, settings, emulator)
    nw.grant(mini, p, "commission_accrued")
    nw.grant(mini, p, "commission_accrued")
    event_id = _accrued(nw, mini, 1)  # recorded before the merge, delivered after it
    merge()
    work()
    [msg] = nw.messages(older)
    assert (msg.status, msg.channel, msg.event_id) == ("sent", "subscribe", event_id)
    # Replays name the merged id still: they find the survivor's row and send nothing.
    [sub] = [s for s in subscribers_of("commission.accrued") if s.name == "notifications.commission_accrued"]
    for i in range(2):
        emit(session, "events.deliver", sub.name, event_id, key=f"replay:{i}")
    session.commit()
    work()
    assert len(nw.sent(p)) == 1
    assert session.scalar(select(func.count()).select_from(NotificationMessage)) == 1
    assert grants_left(session, older.id) == {sub_tpl("commission_accrued"): 1}


@pytest.mark.sqlite
def test_a_message_both_members_had_for_one_event_is_kept_once(nw, emulator, rt, session, settings, work, client,
                                                              operator_headers):
    older, mini, p, merge = _one_person_two_members(nw, session, settings, emulator)
    nw.grant(mini, p, "commission_accrued")
    event_id = _accrued(nw, mini, 1)
    work()
    [twin] = nw.messages(mini)
    assert twin.status == "sent"
    # The survivor has a message of the same moment and event, still pending.
    kept_id = plan_message(session, rt.settings, "commission_accrued", event_id, older.id, dict(twin.values))
    session.commit()

    merge()
    work()

    [msg] = nw.messages(older)
    assert msg.id == kept_id
    assert (msg.status, msg.channel, msg.msgid) == ("sent", "subscribe", twin.msgid)  # what the person received
    assert len(nw.sent(p)) == 1  # and nothing more
    items = client.get(f"/api/admin/members/{older.id}/notifications", headers=operator_headers).get_json()["items"]
    assert [a["outcome"] for a in items[0]["attempts"]] == ["sent", "merged"]
    assert session.get(NotificationMessage, twin.id) is None


def test_merging_twice_or_without_notification_rows_changes_nothing(nw, emulator, session, settings):
    older, mini, p, merge = _one_person_two_members(nw, session, settings, emulator)
    merge()
    assert attach_identity(session, mini.id, "unionid", p["unionid"]).id == older.id
    session.commit()
    assert nw.messages(older) == [] and mutes_of(session, older.id) == [] and grants_left(session, older.id) == {}
