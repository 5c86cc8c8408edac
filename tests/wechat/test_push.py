"""Message push: emulator crypto == wechatpy's, signature checks, safe mode, scan events end to end, dedupe."""
from __future__ import annotations

import time
from urllib.parse import urlencode

import requests
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import check_signature

from wechat.emulator import msgcrypto, pushes


def test_emulator_encryption_and_signature_match_wechatpy(settings):
    token, key, appid = settings.wechat_token, settings.wechat_encoding_aes_key, settings.wechat_app_id
    crypto = WeChatCrypto(token, key, appid)
    xml = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Content><![CDATA[你好 wechat]]></Content></xml>"
    body, msg_sig = msgcrypto.encrypted_envelope(key, token, appid, xml, "1700000000", "12345")
    assert crypto.decrypt_message(body, msg_sig, "1700000000", "12345") == xml  # wechatpy reads ours
    theirs = crypto.encrypt_message(xml, "777", "1700000001")
    doc = pushes.read_reply({"token": token, "encoding_aes_key": key, "appid": appid}, theirs)
    assert doc["Content"] == "你好 wechat"  # we read wechatpy's
    check_signature(token, msgcrypto.signature(token, "1700000000", "12345"), "1700000000", "12345")


def _signed_args(settings, **extra):
    ts, nonce = str(int(time.time())), "4242"
    return {"signature": msgcrypto.signature(settings.wechat_token, ts, nonce), "timestamp": ts, "nonce": nonce,
            **extra}


def test_url_check_echoes_only_for_a_valid_signature(client, settings):
    ok = client.get("/wechat/callback?" + urlencode(_signed_args(settings, echostr="hello123")))
    assert ok.status_code == 200 and ok.get_data(as_text=True) == "hello123"
    bad = client.get("/wechat/callback?" + urlencode({**_signed_args(settings, echostr="x"), "signature": "0" * 40}))
    assert bad.status_code == 403


def test_scan_to_follow_reaches_the_handler_and_the_encrypted_reply_reaches_the_user(
        live_app, oa, emulator, person, push_handler, redis):
    seen = []
    push_handler("subscribe_scan", lambda s, m: seen.append(("follow", m.scene_id, m.source)) or "欢迎加入")
    push_handler("scan", lambda s, m: seen.append(("scan", m.scene_id, m.source)) or None)
    qr = oa.create_qr("pA7xK2", permanent=True)
    first = emulator.sim(f"persons/{person['pid']}/scan", ticket=qr["ticket"])
    assert first["reply"]["Content"] == "欢迎加入"
    again = emulator.sim(f"persons/{person['pid']}/scan", ticket=qr["ticket"])
    assert again["reply"] is None and again["delivered"]
    openid = person["openids"][oa.appid]
    assert seen == [("follow", "pA7xK2", openid), ("scan", "pA7xK2", openid)]


def test_three_deliveries_of_one_event_run_the_handler_once(live_app, oa, emulator, person, push_handler):
    calls = []
    push_handler("subscribe_scan", lambda s, m: calls.append(m.scene_id) or "hi")
    emulator.sim("faults/push", repeat=3)
    result = emulator.sim(f"persons/{person['pid']}/scan", ticket=oa.create_qr("dup1", permanent=False)["ticket"])
    assert [a["status"] for a in result["attempts"]] == [200, 200, 200]
    assert calls == ["dup1"]


def test_a_failing_handler_lets_wechat_retry_run_it_again(live_app, oa, emulator, person, push_handler):
    calls = []

    def flaky(session, message):
        calls.append(message.source)
        if len(calls) == 1:
            raise RuntimeError("database hiccup")
        return "ok"

    push_handler("subscribe_scan", flaky)
    result = emulator.sim(f"persons/{person['pid']}/scan", ticket=oa.create_qr("retry", permanent=False)["ticket"])
    assert [a["status"] for a in result["attempts"]] == [500, 200]
    assert len(calls) == 2 and result["reply"]["Content"] == "ok"


def _post(live_app, settings, body: bytes, **args):
    return requests.post(f"{live_app}/wechat/callback?{urlencode(args)}", data=body, timeout=10)


def test_bad_signatures_are_403_and_record_nothing(live_app, settings, emulator, person, push_handler, redis):
    calls = []
    push_handler("*", lambda s, m: calls.append(m))
    oa_conf = emulator.world.oa
    xml = pushes.build_xml({"ToUserName": "gh", "FromUserName": "oX", "CreateTime": int(time.time()),
                            "MsgType": "event", "Event": "subscribe"})
    url, body = pushes.signed_request(oa_conf, xml, "oX")
    args = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))
    for field in ("signature", "msg_signature"):
        r = _post(live_app, settings, body.encode(), **{**args, field: "f" * 40})
        assert r.status_code == 403
    tampered = body.replace("<Encrypt><![CDATA[", "<Encrypt><![CDATA[AAAA")
    assert _post(live_app, settings, tampered.encode(), **args).status_code == 403
    plain_args = {k: v for k, v in args.items() if k not in ("encrypt_type", "msg_signature")}
    assert _post(live_app, settings, xml.encode(), **plain_args).status_code == 403  # safe mode: plain refused
    assert _post(live_app, settings, body.encode(), **args).status_code == 200  # the genuine one passes
    assert len(calls) == 1
    assert len(redis.keys("wechat:push:*")) == 1


def test_entities_and_oversized_bodies_are_rejected_cleanly(live_app, settings):
    args = _signed_args(settings)
    bomb = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            b"<xml><Encrypt>&b;</Encrypt></xml>")
    assert _post(live_app, settings, bomb, **args).status_code == 403
    assert _post(live_app, settings, b"<xml><Encrypt>" + b"A" * 70_000 + b"</Encrypt></xml>", **args).status_code == 403
    assert _post(live_app, settings, b"<xml><unclosed>", **args).status_code == 403


def test_plain_mode_push_and_reply(settings, redis):
    from wechat import push

    plain = settings.with_(wechat_encoding_aes_key=None)
    xml = pushes.build_xml({"ToUserName": "gh", "FromUserName": "oP", "CreateTime": 1, "MsgType": "text",
                            "Content": "hello", "MsgId": 99})
    args = _signed_args(settings)
    msg = push.open_push(plain, args, xml.encode())
    assert msg.type == "text" and msg.content == "hello"
    assert push.claim_delivery(redis, msg) and not push.claim_delivery(redis, msg)
    assert "<Content><![CDATA[收到]]></Content>" in push.render_reply(plain, msg, "收到", args)
    assert push.render_reply(plain, msg, None, args) == "success"
