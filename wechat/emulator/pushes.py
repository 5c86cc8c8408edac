"""Deliver service-account message pushes to Liebian's callback like WeChat does: signed query string,
AES safe mode when an EncodingAESKey is configured, 5-second timeout, up to 3 tries."""
from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

import requests
import xmltodict

from wechat.emulator import msgcrypto


def _cdata(v) -> str:
    return str(v) if isinstance(v, int) else f"<![CDATA[{v}]]>"


def build_xml(fields: dict) -> str:
    return "<xml>" + "".join(f"<{k}>{_cdata(v)}</{k}>" for k, v in fields.items()) + "</xml>"


def signed_request(oa: dict, xml: str, openid: str) -> tuple[str, str]:
    """-> (url with query string, body)"""
    ts, nonce = str(int(time.time())), str(secrets.randbelow(10**10))
    q = {"signature": msgcrypto.signature(oa["token"], ts, nonce), "timestamp": ts, "nonce": nonce,
         "openid": openid}
    body = xml
    if oa.get("encoding_aes_key"):
        body, msg_sig = msgcrypto.encrypted_envelope(oa["encoding_aes_key"], oa["token"], oa["appid"], xml, ts,
                                                     nonce)
        q.update({"encrypt_type": "aes", "msg_signature": msg_sig})
    return f"{oa['callback_url']}?{urlencode(q)}", body


def read_reply(oa: dict, text: str) -> dict | None:
    """Liebian's passive reply as WeChat would read it (decrypted and signature-checked in safe mode)."""
    if not text or text.strip() == "success":
        return None
    doc = xmltodict.parse(text)["xml"]
    if "Encrypt" in doc:
        expected = msgcrypto.signature(oa["token"], doc["TimeStamp"], doc["Nonce"], doc["Encrypt"])
        if expected != doc.get("MsgSignature"):
            return {"error": "reply signature mismatch"}
        xml, appid = msgcrypto.decrypt(oa["encoding_aes_key"], doc["Encrypt"])
        if appid != oa["appid"]:
            return {"error": "reply appid mismatch"}
        doc = xmltodict.parse(xml)["xml"]
    return dict(doc)


def deliver(oa: dict, fields: dict, repeat: int = 1, http: requests.Session | None = None) -> dict:
    """POST one message; retry (3 tries in all) when Liebian does not answer 200 within 5 s. With `repeat` > 1
    the same message is delivered that many times regardless, as WeChat does when the first reply was late."""
    http = http or requests.Session()
    xml = build_xml(fields)
    attempts, reply = [], None
    ok_count = 0
    for _ in range(max(3, repeat)):
        url, body = signed_request(oa, xml, fields["FromUserName"])
        try:
            r = http.post(url, data=body.encode(), timeout=5, headers={"Content-Type": "text/xml"})
            attempts.append({"status": r.status_code})
            if r.status_code == 200:
                ok_count += 1
                if reply is None:
                    reply = read_reply(oa, r.text)
        except requests.RequestException as exc:
            attempts.append({"status": None, "error": repr(exc)})
        if ok_count and len(attempts) >= repeat:
            break
    return {"delivered": ok_count > 0, "attempts": attempts, "reply": reply, "message": fields}
