"""Identity APIs (OAuth, jscode2session, phone number) against the emulator over real HTTP."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
import requests

from wechat.errors import WeChatError


def _follow_authorize(url: str, **extra) -> dict:
    r = requests.get(url.split("#")[0], params=extra, allow_redirects=False, timeout=10)
    assert r.status_code == 302
    loc = urlparse(r.headers["Location"])
    return {k: v[0] for k, v in parse_qs(loc.query).items()} | {"_target": f"{loc.scheme}://{loc.netloc}{loc.path}"}


def test_oauth_userinfo_round_trip_gives_openid_unionid_and_profile(oa, emulator, person, settings):
    url = oa.oauth_authorize_url("https://shop.example/h5/landing", "snsapi_userinfo", "ref42")
    assert url.startswith(settings.wechat_open_base + "/connect/oauth2/authorize?")
    back = _follow_authorize(url, emu_person=person["pid"])
    assert back["state"] == "ref42" and back["_target"] == "https://shop.example/h5/landing"
    tok = oa.oauth_exchange(back["code"])
    assert tok["openid"] == person["openids"][settings.wechat_app_id]
    assert tok["unionid"] == person["unionid"] and tok["scope"] == "snsapi_userinfo"
    info = oa.oauth_userinfo(tok["access_token"], tok["openid"])
    assert info["nickname"] == "小明" and info["unionid"] == person["unionid"] and info["headimgurl"]


def test_oauth_code_is_single_use_and_unknown_codes_are_refused(oa, emulator, person):
    code = emulator.sim(f"persons/{person['pid']}/oauth_code", scope="snsapi_base")["code"]
    first = oa.oauth_exchange(code)
    assert "unionid" not in first  # snsapi_base is silent: openid only
    with pytest.raises(WeChatError) as reused:
        oa.oauth_exchange(code)
    assert reused.value.errcode == 40163
    with pytest.raises(WeChatError) as unknown:
        oa.oauth_exchange("nosuchcode")
    assert unknown.value.errcode == 40029


def test_oauth_base_scope_cannot_read_the_profile(oa, emulator, person):
    tok = oa.oauth_exchange(emulator.sim(f"persons/{person['pid']}/oauth_code", scope="snsapi_base")["code"])
    with pytest.raises(WeChatError) as e:
        oa.oauth_userinfo(tok["access_token"], tok["openid"])
    assert e.value.errcode == 48001


def test_snapshot_page_users_are_marked(oa, emulator, person):
    emulator.sim("oauth/login", person=person["pid"])
    back = _follow_authorize(oa.oauth_authorize_url("https://shop.example/x", "snsapi_base", "s"), emu_snapshot="1")
    tok = oa.oauth_exchange(back["code"])
    assert tok["is_snapshotuser"] == 1 and "unionid" not in tok


def test_oauth_state_must_be_alphanumeric(oa):
    with pytest.raises(ValueError):
        oa.oauth_authorize_url("https://shop.example/x", "snsapi_base", "has space")


def test_jscode2session_returns_openid_and_unionid_and_codes_are_single_use(mp, emulator, person, settings):
    code = emulator.sim(f"persons/{person['pid']}/wx_login")["code"]
    sess = mp.code_to_session(code)
    assert sess["openid"] == person["openids"][settings.wechat_miniapp_id]
    assert sess["unionid"] == person["unionid"] and sess["session_key"]
    with pytest.raises(WeChatError) as e:
        mp.code_to_session(code)
    assert e.value.errcode == 40029


def test_jscode2session_rate_limit_is_45011(mp, emulator, person):
    emulator.world.config["jscode_rate_limit"] = 2
    try:
        for _ in range(2):
            mp.code_to_session(emulator.emu.wx_login(person["pid"]))
        with pytest.raises(WeChatError) as e:
            mp.code_to_session(emulator.emu.wx_login(person["pid"]))
        assert e.value.errcode == 45011
    finally:
        emulator.world.config["jscode_rate_limit"] = 100


def test_wrong_miniapp_secret_is_refused(settings, redis, emulator, person):
    from wechat.clients import MiniProgram

    bad = MiniProgram(settings.with_(wechat_miniapp_secret="wrong"), redis)
    with pytest.raises(WeChatError) as e:
        bad.code_to_session(emulator.emu.wx_login(person["pid"]))
    assert e.value.errcode in (40001, 40125)


def test_phone_number_from_a_single_use_code(mp, emulator, person):
    code = emulator.sim(f"persons/{person['pid']}/phone_code")["code"]
    assert mp.get_phone_number(code) == {"phoneNumber": "13912345678", "purePhoneNumber": "13912345678",
                                         "countryCode": "86"}
    with pytest.raises(WeChatError) as e:
        mp.get_phone_number(code)
    assert e.value.errcode == 40029
