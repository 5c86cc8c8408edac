"""Both sign-in flows end to end against the emulator: mini-program login and service-account web OAuth."""
from urllib.parse import parse_qs, urlsplit

import requests
from sqlalchemy import func, select

from app.crypto import decrypt
from app.members.models import ApiSession, Identity, Member
from app.referrals import codes
from tests.factories import make_member, make_partner


def mp_login(client, emulator, person):
    code = emulator.sim(f"persons/{person['pid']}/wx_login")["code"]
    r = client.post("/api/mp/login", json={"code": code})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def bearer(tokens):
    return {"Authorization": "Bearer " + tokens["access_token"]}


def test_mini_program_login_creates_one_member_and_keeps_session_key_server_side(client, session, rt, emulator):
    person = emulator.sim("persons", nickname="阿强")
    tokens = mp_login(client, emulator, person)
    assert "session_key" not in tokens
    me = client.get("/api/mp/me", headers=bearer(tokens)).get_json()
    again = mp_login(client, emulator, person)
    assert again["member_id"] == me["id"]  # the same person is the same member
    assert session.scalar(select(func.count()).select_from(Member)) == 1
    row = session.scalar(select(ApiSession).order_by(ApiSession.id))
    assert row.session_key_enc and "session_key" not in row.session_key_enc
    assert decrypt(rt.settings.secret_key, row.session_key_enc)  # decryptable only with our key


def test_reused_or_invalid_login_code_is_refused_and_creates_nobody(client, session, emulator):
    person = emulator.sim("persons")
    code = emulator.sim(f"persons/{person['pid']}/wx_login")["code"]
    assert client.post("/api/mp/login", json={"code": code}).status_code == 200
    reused = client.post("/api/mp/login", json={"code": code})
    assert (reused.status_code, reused.get_json()["code"]) == (422, "login_code_invalid")
    bogus = client.post("/api/mp/login", json={"code": "made-up"})
    assert bogus.status_code == 422
    assert session.scalar(select(func.count()).select_from(Member)) == 1


def test_phone_binding_stores_the_number_encrypted_and_shows_it_masked(client, session, rt, emulator):
    person = emulator.sim("persons", phone="13800138000")
    tokens = mp_login(client, emulator, person)
    code = emulator.sim(f"persons/{person['pid']}/phone_code")["code"]
    me = client.post("/api/mp/phone", json={"code": code}, headers=bearer(tokens)).get_json()
    assert me["phone"] == "138****8000"
    member = session.get(Member, me["id"])
    assert "13800138000" not in (member.phone_enc or "")
    assert decrypt(rt.settings.secret_key, member.phone_enc) == "13800138000"
    assert "13800138000" not in session.scalar(select(Identity.value).where(Identity.kind == "phone"))
    reused = client.post("/api/mp/phone", json={"code": code}, headers=bearer(tokens))
    assert reused.status_code == 422 and reused.get_json()["code"] == "phone_code_invalid"


def test_same_phone_on_the_service_account_member_merges_the_two(client, session, rt, emulator):
    """One person met us twice (no unionid binding): a verified phone proves it, and the members merge."""
    web = make_member(session, "web self", oa_openid="oa-1")
    from app.crypto import blind_index

    session.add(Identity(member_id=web.id, kind="phone", value=blind_index(rt.settings.secret_key, "13900139000")))
    session.commit()
    person = emulator.sim("persons", phone="13900139000")
    tokens = mp_login(client, emulator, person)
    code = emulator.sim(f"persons/{person['pid']}/phone_code")["code"]
    me = client.post("/api/mp/phone", json={"code": code}, headers=bearer(tokens)).get_json()
    assert me["id"] == web.id  # the older member survives and the mini-program token now resolves to it
    assert client.get("/api/mp/me", headers=bearer(tokens)).get_json()["id"] == web.id


def h5_sign_in(live_app, emulator, person, scope="snsapi_userinfo", share=None, snapshot=False):
    """A browser: start OAuth, follow WeChat's redirect back, keep the cookie."""
    emulator.sim("oauth/login", person=person["pid"])
    browser = requests.Session()
    params = {"scope": scope, "next": "/h5/me"}
    if share:
        params["share"] = share
    start = browser.get(f"{live_app}/h5/oauth/start", params=params, allow_redirects=False, timeout=10)
    assert start.status_code == 302
    authorize = start.headers["Location"]
    if snapshot:
        url, _, fragment = authorize.partition("#")
        authorize = url + "&emu_snapshot=1" + ("#" + fragment if fragment else "")
    at_wechat = browser.get(authorize, allow_redirects=False, timeout=10)
    assert at_wechat.status_code == 302
    back = at_wechat.headers["Location"]
    return browser, back


def test_web_oauth_signs_in_and_merges_with_the_mini_program_member_by_unionid(client, session, rt, emulator,
                                                                              live_app):
    person = emulator.sim("persons", nickname="小美", unionid="union-xm")
    mini_tokens = mp_login(client, emulator, person)
    browser, back = h5_sign_in(live_app, emulator, person)
    landed = browser.get(back, timeout=10)
    assert landed.status_code == 200, landed.text
    me = landed.json()
    assert me["id"] == mini_tokens["member_id"] and me["nickname"] == "小美"
    assert session.scalar(select(func.count()).select_from(Member).where(Member.status == "active")) == 1


def test_web_oauth_landing_with_a_share_parameter_binds_the_referrer(client, session, rt, emulator, live_app):
    p = make_partner(session, "Partner")
    code = codes.ensure_personal_code(session, p.id)
    session.commit()
    person = emulator.sim("persons")
    browser, back = h5_sign_in(live_app, emulator, person, scope="snsapi_base", share=code.scene)
    me = browser.get(back, timeout=10).json()
    assert me["referrer_id"] == p.id


def test_replayed_state_and_reused_code_are_refused(client, session, emulator, live_app):
    person = emulator.sim("persons")
    browser, back = h5_sign_in(live_app, emulator, person)
    assert browser.get(back, timeout=10).status_code == 200
    replay = browser.get(back, allow_redirects=False, timeout=10)
    assert replay.status_code == 403 and replay.json()["code"] == "oauth_state_invalid"
    assert session.scalar(select(func.count()).select_from(Member)) == 1


def test_forged_state_creates_no_member(session, emulator, live_app):
    person = emulator.sim("persons")
    code = emulator.sim(f"persons/{person['pid']}/oauth_code")["code"]
    r = requests.get(f"{live_app}/h5/oauth/callback", params={"code": code, "state": "forgedstate123"}, timeout=10)
    assert r.status_code == 403 and r.json()["code"] == "oauth_state_invalid"
    assert session.scalar(select(func.count()).select_from(Member)) == 0


def test_state_from_another_browser_is_refused(session, emulator, live_app):
    person = emulator.sim("persons")
    _victim_browser, back = h5_sign_in(live_app, emulator, person)
    attacker = requests.get(back, allow_redirects=False, timeout=10)  # no cookie: not the browser that started
    assert attacker.status_code == 403
    assert session.scalar(select(func.count()).select_from(Member)) == 0


def test_snapshot_page_user_is_never_made_a_member(session, emulator, live_app):
    person = emulator.sim("persons")
    browser, back = h5_sign_in(live_app, emulator, person, scope="snsapi_base", snapshot=True)
    r = browser.get(back, allow_redirects=False, timeout=10)
    assert r.status_code == 403 and r.json()["code"] == "snapshot_user"
    assert session.scalar(select(func.count()).select_from(Member)) == 0


def test_consent_refused_gives_a_clear_error(session, emulator, live_app):
    person = emulator.sim("persons")
    browser, back = h5_sign_in(live_app, emulator, person)
    q = parse_qs(urlsplit(back).query)
    r = browser.get(f"{live_app}/h5/oauth/callback", params={"state": q["state"][0]}, allow_redirects=False,
                    timeout=10)
    assert r.status_code == 422 and r.json()["code"] == "oauth_code_missing"
