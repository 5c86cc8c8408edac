"""The push parser and safe-mode crypto (wechat.push) without wechatpy's parse: same messages out, nothing unsafe in.

These run in-process against wechat.push directly; test_push.py drives the same code through the callback."""
from __future__ import annotations

import base64
import os
import struct
import time

import pytest
import xmltodict
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto

from wechat import push
from wechat.emulator import msgcrypto, pushes
from wechat.errors import PushRejected

DOCS = [
    b"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oA]]></FromUserName>"
    b"<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event>"
    b"<EventKey><![CDATA[qrscene_pA7xK2]]></EventKey><Ticket><![CDATA[t]]></Ticket></xml>",
    b"<xml><ToUserName>gh_1</ToUserName><FromUserName>oA</FromUserName><CreateTime>1</CreateTime>"
    b"<MsgType>event</MsgType><Event>subscribe</Event><EventKey></EventKey></xml>",  # plain follow, empty key
    b"<xml>\n  <MsgType><![CDATA[text]]></MsgType>\n  <FromUserName>oB</FromUserName>\n"
    b"  <Content><![CDATA[  a < b & c ]]> &amp; &lt;done&gt;</Content><MsgId>42</MsgId>\n</xml>",
    # menu events carry nested and repeated elements
    b"<xml><MsgType>event</MsgType><FromUserName>oC</FromUserName><Event>pic_sysphoto</Event>"
    b"<SendPicsInfo><Count>2</Count><PicList><item><PicMd5Sum>a</PicMd5Sum></item>"
    b"<item><PicMd5Sum>b</PicMd5Sum></item></PicList></SendPicsInfo></xml>",
    b'<?xml version="1.0" encoding="UTF-8"?><!-- a comment --><xml><A x="1">v</A><B/><C> </C></xml>',
    "<xml><Content><![CDATA[你好]]></Content><FromUserName>o中</FromUserName></xml>".encode(),
]


@pytest.mark.parametrize("doc", DOCS)
def test_the_parser_reads_what_xmltodict_reads(doc):
    assert push.parse_xml(doc) == xmltodict.parse(doc)["xml"]


@pytest.mark.parametrize("doc", DOCS[:4])
def test_messages_are_the_ones_wechatpy_would_build(doc):
    ours, theirs = push._message(push.parse_xml(doc)), parse_message(doc.decode())
    assert type(ours) is type(theirs) and ours._data == theirs._data


@pytest.mark.parametrize("body", [
    b'<!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>',
    b'<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/evil.dtd"><xml><Encrypt>x</Encrypt></xml>',
    b'<xml><!ENTITY x "y"><Encrypt>x</Encrypt></xml>',
    b'<?xml version="1.0"?>\n<!doctype xml><xml><Encrypt>x</Encrypt></xml>',
    b"<xml><Encrypt>&undefined;</Encrypt></xml>",
    b"<xml><unclosed></xml>",
    b"<xml><Encrypt>x</Encrypt></xml><xml/>",
    b"",
    b"not xml at all",
    b"<xml/>",  # nothing in it
    b"<notxml><Encrypt>x</Encrypt></notxml>",
    b"<xml><Encrypt>" + b"A" * push.MAX_BODY + b"</Encrypt></xml>",
])
def test_unsafe_or_malformed_documents_are_refused(body):
    with pytest.raises(PushRejected):
        push.parse_xml(body)


def _args(settings, body_encrypt: str | None = None, ts: str | None = None, nonce: str = "991"):
    ts = ts or str(int(time.time()))
    args = {"signature": msgcrypto.signature(settings.wechat_token, ts, nonce), "timestamp": ts, "nonce": nonce,
            "encrypt_type": "aes"}
    if body_encrypt is not None:
        args["msg_signature"] = msgcrypto.signature(settings.wechat_token, ts, nonce, body_encrypt)
    return args


def _envelope(encrypted: str) -> bytes:
    return f"<xml><ToUserName><![CDATA[gh]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode()


def _encrypt_raw(settings, plain: bytes) -> str:
    key = base64.b64decode(settings.wechat_encoding_aes_key + "=")
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def test_a_genuine_safe_mode_push_opens_to_the_scan_event(settings):
    xml = pushes.build_xml({"ToUserName": "gh", "FromUserName": "oScan1", "CreateTime": 1700000000,
                            "MsgType": "event", "Event": "subscribe", "EventKey": "qrscene_pA7xK2"})
    encrypted = msgcrypto.encrypt(settings.wechat_encoding_aes_key, xml, settings.wechat_app_id)
    message = push.open_push(settings, _args(settings, encrypted), _envelope(encrypted))
    assert (push.handler_key(message), message.source, message.scene_id, message.time) == \
        ("subscribe_scan", "oScan1", "pA7xK2", 1700000000)


def _padded(settings, xml: bytes, appid: bytes | None = None) -> bytes:
    plain = os.urandom(16) + struct.pack(">I", len(xml)) + xml + (appid or settings.wechat_app_id.encode())
    pad = 32 - len(plain) % 32
    return plain + bytes([pad]) * pad


@pytest.mark.parametrize("case", ["other_appid", "bad_padding", "length_past_end", "not_base64", "short",
                                  "stale", "no_msg_signature", "plain_body"])
def test_safe_mode_refuses_anything_but_our_ciphertext(settings, case):
    xml = b"<xml><FromUserName>oX</FromUserName><MsgType>event</MsgType><Event>subscribe</Event></xml>"
    plain = _padded(settings, xml)
    ts = None
    if case == "other_appid":
        plain = _padded(settings, xml, b"wxsomeoneelse000")
    elif case == "bad_padding":
        plain = plain[:-1] + b"\x00"
    elif case == "length_past_end":
        plain = plain[:16] + struct.pack(">I", 10_000) + plain[20:]
    encrypted = _encrypt_raw(settings, plain)
    if case == "not_base64":
        encrypted = encrypted[:-8] + "!!!!!!!!"
    elif case == "short":
        encrypted = base64.b64encode(b"\x01" * 15).decode()
    elif case == "stale":
        ts = str(int(time.time()) - push.MAX_SKEW - 5)
    args = _args(settings, encrypted, ts=ts)
    body = _envelope(encrypted)
    if case == "no_msg_signature":
        args.pop("msg_signature")
    elif case == "plain_body":
        body = xml
    with pytest.raises(PushRejected):
        push.open_push(settings, args, body)


def test_the_crypto_agrees_with_wechatpy_both_ways(settings):
    token, key, appid = settings.wechat_token, settings.wechat_encoding_aes_key, settings.wechat_app_id
    xml = "<xml><FromUserName>oW</FromUserName><MsgType>text</MsgType><Content>好</Content></xml>"
    body = WeChatCrypto(token, key, appid).encrypt_message(xml, "555", "1700000000")
    encrypted = xmltodict.parse(body)["xml"]["Encrypt"]
    assert push._crypto(settings).decrypt(encrypted) == xml.encode()
    ours = push._crypto(settings).encrypt(xml.encode())
    sig = msgcrypto.signature(token, "1700000000", "555", ours)
    assert WeChatCrypto(token, key, appid).decrypt_message(_envelope(ours).decode(), sig, "1700000000", "555") == xml


def test_the_encrypted_reply_reads_back_even_with_cdata_terminators_in_it(settings):
    oa = {"token": settings.wechat_token, "encoding_aes_key": settings.wechat_encoding_aes_key,
          "appid": settings.wechat_app_id}
    message = push._message(push.parse_xml(b"<xml><ToUserName>gh_me</ToUserName><FromUserName>oR</FromUserName>"
                                           b"<MsgType>event</MsgType><Event>subscribe</Event></xml>"))
    text = "欢迎 <b> & ]]> 之后"
    reply = push.render_reply(settings, message, text, {"encrypt_type": "aes", "nonce": "77", "timestamp": "1700"})
    doc = pushes.read_reply(oa, reply)
    assert (doc["Content"], doc["ToUserName"], doc["FromUserName"], doc["MsgType"]) == (text, "oR", "gh_me", "text")
