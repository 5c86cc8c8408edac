"""Parametric QR codes, mini-program codes and messages against the emulator; embedded default reachable."""
from __future__ import annotations

import io
import threading

import pytest
import zxingcpp
from PIL import Image

from wechat.errors import WeChatError


def _decode(png: bytes) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert found, "no QR code in the image"
    return found[0].text


def test_permanent_qr_png_encodes_the_ticket_url_and_repeats_give_the_same_ticket(oa, emulator, settings):
    qr = oa.create_qr("pAbc123", permanent=True)
    assert "expire_seconds" not in qr
    assert oa.showqrcode_url(qr["ticket"]).startswith(settings.wechat_mp_base + "/cgi-bin/showqrcode?ticket=")
    assert _decode(oa.fetch_qr_png(qr["ticket"])) == qr["url"]
    assert oa.create_qr("pAbc123", permanent=True)["ticket"] == qr["ticket"]


def test_temporary_qr_and_scene_length_limit(oa, emulator):
    qr = oa.create_qr("t" * 64, permanent=False, expire_seconds=9_999_999)
    assert qr["expire_seconds"] == 2_592_000
    with pytest.raises(WeChatError) as e:
        oa.create_qr("t" * 65, permanent=False)
    assert e.value.errcode == 40053


def test_permanent_quota_is_enforced(oa, emulator):
    emulator.world.config["permanent_qr_quota"] = 2
    try:
        oa.create_qr("q1", permanent=True)
        oa.create_qr("q2", permanent=True)
        with pytest.raises(WeChatError) as e:
            oa.create_qr("q3", permanent=True)
        assert e.value.errcode == 45029
        assert oa.create_qr("q3", permanent=False)["ticket"]  # temporary codes still work
    finally:
        emulator.world.config["permanent_qr_quota"] = 100000


def test_unlimited_wxacode_is_a_png_carrying_scene_and_page(mp, emulator):
    png = mp.get_unlimited_wxacode("p=Ab3x", "pages/join/index", width=300, env_version="trial", check_path=False)
    assert Image.open(io.BytesIO(png)).size == (300, 300)
    text = _decode(png)
    assert "pages/join/index" in text and "scene=p%3DAb3x" in text
    with pytest.raises(WeChatError) as e:
        mp.get_unlimited_wxacode("x" * 33, "pages/join/index")
    assert e.value.errcode == 40169
    with pytest.raises(WeChatError) as e:
        mp.get_unlimited_wxacode("中文", "pages/join/index")
    assert e.value.errcode == 40169


def test_subscribe_message_uses_up_consents(mp, emulator, person, settings):
    openid = person["openids"][settings.wechat_miniapp_id]
    emulator.sim(f"persons/{person['pid']}/consent", template_id="TPL_PAID", count=1)
    mp.send_subscribe_message(openid, "TPL_PAID", {"amount1": {"value": "12.34"}}, page="pages/me/index")
    with pytest.raises(WeChatError) as e:
        mp.send_subscribe_message(openid, "TPL_PAID", {"amount1": {"value": "1.00"}})
    assert e.value.errcode == 43101
    sent = emulator.sim("messages", method="GET")
    assert [(m["kind"], m["template_id"], m["data"]["amount1"]["value"]) for m in sent] == [
        ("subscribe", "TPL_PAID", "12.34")]


def test_template_message_needs_a_follower(oa, emulator, settings):
    fan = emulator.sim("persons", following=True)
    stranger = emulator.sim("persons")
    assert oa.send_template(fan["openids"][settings.wechat_app_id], "TPL1", {"k": {"value": "v"}})["msgid"]
    with pytest.raises(WeChatError) as e:
        oa.send_template(stranger["openids"][settings.wechat_app_id], "TPL1", {})
    assert e.value.errcode == 43004


def test_every_wechatpy_api_group_points_at_the_configured_base(oa, mp, settings):
    from wechatpy.client.api.base import BaseWeChatAPI

    for client in (oa.client, mp.client):
        for api in vars(client).values():
            if isinstance(api, BaseWeChatAPI) and getattr(api, "API_BASE_URL", None):
                assert api.API_BASE_URL.startswith(settings.wechat_api_base), api
        assert "weixin.qq.com" not in client.qrcode.get_url("t")


def test_injected_system_error_and_latency(oa, emulator):
    emulator.sim("faults", target="qrcode.create", kind="error", error="SYSTEM_ERROR", count=1)
    with pytest.raises(WeChatError) as e:
        oa.create_qr("s1", permanent=False)
    assert e.value.errcode == -1
    assert oa.create_qr("s1", permanent=False)["ticket"]


def test_embedded_default_reaches_the_mounted_emulator(tmp_path, monkeypatch):
    """create_app() with no WeChat configuration: every base URL is PUBLIC_BASE_URL/_emulator, served in-process."""
    import fakeredis
    from werkzeug.serving import make_server

    from app import create_app
    from app.config import load_settings
    from wechat.clients import MiniProgram, OfficialAccount
    from wechat.pay import WeChatPay

    server = make_server("127.0.0.1", 0, lambda e, s: holder["app"](e, s), threaded=True)
    holder = {}
    base = f"http://127.0.0.1:{server.port}"
    monkeypatch.setattr("app.config.INSTANCE_DIR", tmp_path)
    settings = load_settings({"PUBLIC_BASE_URL": base, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
                              "LIEBIAN_INSTANCE_DIR": str(tmp_path)})
    assert settings.embedded_emulator and settings.wechat_api_base == base + "/_emulator"
    app = create_app(settings)
    holder["app"] = app.wsgi_app
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        emu = app.extensions["wechat_emulator"].extensions["wechat_emulator"]
        r = fakeredis.FakeRedis()
        person = emu.create_person()
        qr = OfficialAccount(settings, r).create_qr("embedded1", permanent=True)
        assert _decode(OfficialAccount(settings, r).fetch_qr_png(qr["ticket"])) == qr["url"]
        assert MiniProgram(settings, r).code_to_session(emu.wx_login(person["pid"]))["openid"]
        bill = WeChatPay(settings).create_transfer_bill("E0001", person["openids"][settings.wechat_miniapp_id],
                                                        100, "x")
        assert bill["state"] == "WAIT_USER_CONFIRM"
    finally:
        server.shutdown()
