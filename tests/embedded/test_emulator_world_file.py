"""The embedded emulator keeps its world in the instance folder: people, QR tickets and bills survive a restart,
and a process sees what another one (`flask seed-demo` while the app serves) wrote."""
from __future__ import annotations

from app.config import load_settings
from wechat.emulator import STATE_FILE, create_emulator_for


def _emulator(tmp_path):
    settings = load_settings({"LIEBIAN_INSTANCE_DIR": str(tmp_path), "PUBLIC_BASE_URL": "http://127.0.0.1:9"})
    app = create_emulator_for(settings)
    return app, app.extensions["wechat_emulator"]


def test_people_tickets_and_bills_survive_a_restart(tmp_path):
    app, emu = _emulator(tmp_path)
    client = app.test_client()
    alice = client.post("/_sim/persons", json={"nickname": "小红", "pid": "alice"}).get_json()
    token = client.get("/cgi-bin/token", query_string={"grant_type": "client_credential",
                                                      "appid": emu.world.oa["appid"],
                                                      "secret": emu.world.oa["secret"]}).get_json()["access_token"]
    qr = client.post(f"/cgi-bin/qrcode/create?access_token={token}",
                     json={"action_name": "QR_LIMIT_STR_SCENE",
                           "action_info": {"scene": {"scene_str": "SCENE1"}}}).get_json()
    with emu.pay.lock:  # a bill awaiting the payee's confirmation, as the pay desk leaves it
        emu.pay.bills["B1"] = {"out_bill_no": "B1", "state": "WAIT_USER_CONFIRM", "package_info": "pkg",
                               "content": {"openid": alice["openids"][emu.world.mini["appid"]]}}
        emu.pay.balance -= 100
    emu.save()
    assert (tmp_path / STATE_FILE).exists()

    app2, emu2 = _emulator(tmp_path)  # the next process
    assert emu2.person("alice") == emu.person("alice")
    assert emu2.world.person(alice["openids"][emu.world.oa["appid"]]).pid == "alice"  # found by openid too
    assert emu2.world.ticket_for_scene("SCENE1") == qr["ticket"]
    assert emu2.pay.bills["B1"]["state"] == "WAIT_USER_CONFIRM" and emu2.pay.balance == emu.pay.balance
    code = app2.test_client().post("/_sim/persons/alice/wx_login").get_json()["code"]
    assert code  # a restored person can sign in


def test_a_process_sees_people_another_process_created(tmp_path):
    app_a, emu_a = _emulator(tmp_path)
    app_b, emu_b = _emulator(tmp_path)
    emu_a.ensure_person("demo-partner", nickname="陈小美")
    person = app_b.test_client().get("/_sim/persons/demo-partner").get_json()
    assert person["nickname"] == "陈小美"
    assert emu_b.ensure_person("demo-partner", nickname="ignored")["nickname"] == "陈小美"


def test_scanning_by_scene_needs_a_code_the_account_made(tmp_path):
    app, _emu = _emulator(tmp_path)
    client = app.test_client()
    client.post("/_sim/persons", json={"pid": "bob"})
    r = client.post("/_sim/persons/bob/scan", json={"scene": "NEVER-MADE"})
    assert r.status_code == 404 and "no live QR code" in r.get_json()["error"]
    assert client.post("/_sim/persons/bob/scan", json={}).status_code == 400
