"""The emulator's subscribe-message and template-message send APIs: WeChat's validation and error codes."""
import pytest

from wechat.clients import mini_program, official_account
from wechat.errors import WeChatError


@pytest.fixture
def mp(settings, redis):
    return mini_program(settings, redis)


@pytest.fixture
def oa(settings, redis):
    return official_account(settings, redis)


def _code(fn, *a, **kw) -> int:
    with pytest.raises(WeChatError) as e:
        fn(*a, **kw)
    return e.value.errcode


def test_subscribe_send_needs_a_grant_per_message_and_honours_bans(mp, emulator, settings):
    emulator.sim("templates", template_id="SUB1", kind="subscribe", fields=["thing1", "amount2", "time3"])
    p = emulator.sim("persons")
    openid = p["openids"][settings.wechat_miniapp_id]
    data = {"thing1": {"value": "佣金到账"}, "amount2": {"value": "12.30元"}, "time3": {"value": "2026-12-01 10:00"}}
    assert _code(mp.send_subscribe_message, openid, "SUB1", data) == 43101
    got = emulator.sim(f"persons/{p['pid']}/subscribe_request", choices={"SUB1": "accept", "NOPE": "accept"})
    assert got == {"errMsg": "requestSubscribeMessage:ok", "SUB1": "accept", "NOPE": "filter"}
    assert mp.send_subscribe_message(openid, "SUB1", data, page="pages/me/index")["msgid"]
    assert _code(mp.send_subscribe_message, openid, "SUB1", data) == 43101
    emulator.sim(f"persons/{p['pid']}/subscribe_request", choices={"SUB1": "ban"})
    assert emulator.sim(f"persons/{p['pid']}/subscribe_request", choices={"SUB1": "accept"})["SUB1"] == "ban"
    assert _code(mp.send_subscribe_message, openid, "SUB1", data) == 43101
    sent = emulator.sim("messages", method="GET")
    assert [(m["kind"], m["page"]) for m in sent] == [("subscribe", "pages/me/index")]


@pytest.mark.parametrize("key,value", [("thing1", "字" * 21), ("amount2", "abc"), ("time3", "yesterday"),
                                       ("thing1", ""), ("unknown9", "x")])
def test_subscribe_send_refuses_values_beyond_the_type_limits(mp, emulator, settings, key, value):
    emulator.sim("templates", template_id="SUB1", kind="subscribe", fields=["thing1", "amount2", "time3"])
    p = emulator.sim("persons")
    emulator.sim(f"persons/{p['pid']}/subscribe_request", choices={"SUB1": "accept"})
    openid = p["openids"][settings.wechat_miniapp_id]
    assert _code(mp.send_subscribe_message, openid, "SUB1", {key: {"value": value}}) == 47003
    assert emulator.sim(f"persons/{p['pid']}", method="GET")["consents"]["SUB1"] == 1  # nothing used up


def test_invalid_template_ids_answer_40037(mp, oa, emulator, settings):
    emulator.sim("templates", template_id="SUB1", kind="subscribe", fields=["thing1"])
    emulator.sim("templates", template_id="TPL1", kind="template", fields=["thing1"])
    p = emulator.sim("persons", following=True)
    assert _code(mp.send_subscribe_message, p["openids"][settings.wechat_miniapp_id], "TPL1", {}) == 40037
    assert _code(oa.send_template, p["openids"][settings.wechat_app_id], "SUB1", {}) == 40037


def test_template_send_needs_a_follower_and_reports_delivery(oa, emulator, settings, live_app):
    emulator.sim("templates", template_id="TPL1", kind="template", fields=["thing1", "amount2"])
    fan, stranger = emulator.sim("persons", following=True), emulator.sim("persons")
    data = {"thing1": {"value": "提现已到账"}, "amount2": {"value": "5.00"}}
    assert _code(oa.send_template, stranger["openids"][settings.wechat_app_id], "TPL1", data) == 43004
    msgid = oa.send_template(fan["openids"][settings.wechat_app_id], "TPL1", data,
                             miniprogram={"appid": settings.wechat_miniapp_id, "pagepath": "pages/me/index"})["msgid"]
    reports = emulator.sim("messages/reports")
    assert len(reports) == 1 and reports[0]["delivered"]
    assert reports[0]["message"]["Event"] == "TEMPLATESENDJOBFINISH"
    assert reports[0]["message"]["MsgID"] == msgid and reports[0]["message"]["Status"] == "success"
