"""Digests merge a window's messages into one; operators configure moments over HTTP."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from app.db import utcnow
from app.notifications.models import NotificationMessage
from app.outbox.models import OutboxMessage
from app.notifications.service import save_moment_config
from tests.notifications.conftest import sub_tpl


def _open_window(session, member):
    """Let the digest window pass (as time would)."""
    session.execute(update(NotificationMessage).where(NotificationMessage.member_id == member.id)
                    .values(not_before=utcnow() - timedelta(seconds=1)))
    session.execute(update(OutboxMessage).where(OutboxMessage.func == "notifications.send",
                                                OutboxMessage.done_at.is_(None))
                    .values(available_at=utcnow() - timedelta(seconds=1)))
    session.commit()


def test_commissions_within_the_window_become_one_message(nw, session, work):
    save_moment_config(session, "commission_accrued", {"digest_seconds": 600})
    session.commit()
    member, p = nw.person()
    nw.grant(member, p, "commission_accrued")
    for i, fen in enumerate((1000, 2560, 1000), 1):
        nw.event("commission.accrued", commission_id=i, order_id=999, earner_id=member.id, level=1, amount_fen=fen)
    work()
    assert nw.sent(p) == []  # the window is open
    msgs = nw.messages(member)
    assert len(msgs) == 3 and {m.status for m in msgs} == {"pending"}
    assert len({m.not_before for m in msgs}) == 1  # one window
    _open_window(session, member)
    work()
    [sent] = nw.sent(p)
    assert sent["template_id"] == sub_tpl("commission_accrued")
    assert sent["data"]["thing1"] == {"value": "3笔新佣金，共45.60元"}
    assert sent["data"]["amount2"] == {"value": "45.60元"}
    msgs = nw.messages(member)
    assert {m.status for m in msgs} == {"sent"} and len({m.msgid for m in msgs}) == 1


def test_a_lone_message_in_a_window_is_sent_as_itself(nw, session, work):
    save_moment_config(session, "commission_matured", {"digest_seconds": 60})
    session.commit()
    member, p = nw.person(following=True)
    nw.event("commission.matured", member_id=member.id, amount_fen=4560, batch_id=1)
    work()
    assert nw.sent(p) == []
    _open_window(session, member)
    work()
    [sent] = nw.sent(p)
    assert sent["kind"] == "template" and sent["data"]["thing1"] == {"value": "佣金已可提现"}


def test_operators_read_and_change_moments(nw, client, operator_headers):
    r = client.get("/api/admin/notifications/moments", headers=operator_headers)
    assert r.status_code == 200
    names = [m["moment"] for m in r.get_json()["items"]]
    assert names == ["commission_accrued", "commission_matured", "withdrawal_paid", "withdrawal_failed",
                     "withdrawal_confirm", "withdrawal_confirm_reminder", "grade_upgraded", "member_bound",
                     "contest_result", "prize_granted", "badge_earned"]
    r = client.put("/api/admin/notifications/moments", headers=operator_headers, json={"moments": [
        {"moment": "withdrawal_paid", "enabled": False, "channels": ["template"], "page": "pages/w/index",
         "template": {"template_id": "T9", "fields": {"thing1": "title", "amount2": "amount_fen"}}}]})
    assert r.status_code == 200, r.get_json()
    [paid] = [m for m in r.get_json()["items"] if m["moment"] == "withdrawal_paid"]
    assert (paid["enabled"], paid["channels"], paid["page"]) == (False, ["template"], "pages/w/index")
    assert paid["template"] == {"template_id": "T9", "fields": {"thing1": "title", "amount2": "amount_fen"}}
    bad = [{"moment": "withdrawal_paid", "template": {"fields": {"thing1": "nope"}}},
           {"moment": "withdrawal_paid", "digest_seconds": 60},
           {"moment": "withdrawal_paid", "channels": ["template", "template"]}]
    codes = [client.put("/api/admin/notifications/moments", headers=operator_headers,
                        json={"moments": [b]}).get_json()["code"] for b in bad]
    assert codes == ["moment_value_unknown", "digest_invalid", "channels_invalid"]
