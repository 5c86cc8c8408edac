"""Service-account message push (消息推送): URL check, signature verification (constant time), AES safe mode,
safe XML parsing, atomic dedupe of WeChat's retries, and passive replies.

With an EncodingAESKey configured, only safe-mode (encrypted) pushes are accepted: in plain mode the signature
covers token+timestamp+nonce only, not the body, so a plain push could be forged by anyone who saw one URL."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import struct
import threading
import time
import xml.etree.ElementTree as ET

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy.events import EVENT_TYPES
from wechatpy.messages import MESSAGE_TYPES, UnknownMessage

from wechat.errors import PushRejected

MAX_BODY = 64 * 1024  # WeChat's pushes are a few KB
DEDUPE_SECONDS = 3600  # WeChat retries within ~15 s; an hour is ample
MAX_SKEW = 600  # seconds; bounds replay of a captured push or of a URL-check signature
BLOCK = 32  # WeChat pads PKCS#7 to 32 bytes, not AES's 16

# Any markup declaration (<!DOCTYPE, <!ENTITY, <!ELEMENT, <!ATTLIST, ...) is refused before parsing: without a
# DTD there are no entities beyond XML's five predefined ones, so no entity expansion and no external fetches.
# CDATA sections and comments are the only "<!" constructs a message may carry.
_DECLARATION = re.compile(rb"<!(?!\[CDATA\[|--)")


def _signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def _check(expected: str, given: str | None) -> None:
    if not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise PushRejected("bad signature")


def _check_fresh(timestamp: str) -> None:
    """The signed timestamp is within MAX_SKEW of now: a captured signature/timestamp/nonce triple stops
    working after a few minutes."""
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        raise PushRejected("bad timestamp") from None
    if age > MAX_SKEW:
        raise PushRejected("stale timestamp")


def check_url(settings, args) -> str:
    """GET /wechat/callback (WeChat's URL check): echostr, when the signature is WeChat's and fresh. The caller
    answers it as text/plain, whatever it contains."""
    ts = args.get("timestamp", "")
    _check(_signature(settings.wechat_token, ts, args.get("nonce", "")), args.get("signature"))
    _check_fresh(ts)
    return args.get("echostr", "")


def _element_value(el: ET.Element):
    """xmltodict's shape (what wechatpy reads): text (stripped, None when empty) for a leaf; a dict of children
    (a list for a repeated tag) and '@attributes' otherwise, with the element's own text as '#text'."""
    text = el.text.strip() if el.text else ""
    if not len(el) and not el.attrib:
        return text or None
    out: dict = {f"@{k}": v for k, v in el.attrib.items()}
    for child in el:
        value = _element_value(child)
        if child.tag in out:
            prev = out[child.tag]
            out[child.tag] = prev + [value] if isinstance(prev, list) else [prev, value]
        else:
            out[child.tag] = value
        tail = child.tail.strip() if child.tail else ""
        if tail:
            text = f"{text}{tail}" if text else tail
    if text:
        out["#text"] = text
    return out


def parse_xml(body: bytes) -> dict:
    """Parse a WeChat XML document (the outer envelope or the decrypted message) into the children of its
    <xml> root. Refuses oversized bodies, any DTD or entity declaration, malformed XML and other roots."""
    if len(body) > MAX_BODY:
        raise PushRejected("body too large")
    if _DECLARATION.search(body):
        raise PushRejected("DTDs and entities are not accepted")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:  # malformed, undefined entity, ...
        raise PushRejected(f"malformed XML: {exc}") from None
    doc = _element_value(root) if root.tag == "xml" else None
    if not isinstance(doc, dict):
        raise PushRejected("not a WeChat message")
    return doc


class _Crypto:
    """AES-256-CBC "safe mode" with the EncodingAESKey (IV = the key's first 16 bytes), PKCS#7 to 32 bytes;
    plaintext = 16 random bytes + 4-byte length + XML + AppID. Built once per key (the cipher setup is not free)."""

    def __init__(self, encoding_aes_key: str, appid: str):
        key = base64.b64decode(encoding_aes_key + "=")
        if len(key) != 32:
            raise ValueError("EncodingAESKey must be 43 characters")
        self.cipher = Cipher(algorithms.AES(key), modes.CBC(key[:16]))
        self.appid = appid.encode()

    def decrypt(self, encrypted: str) -> bytes:
        """-> the message XML; raises PushRejected for anything but a well-formed ciphertext for our AppID."""
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise PushRejected("cannot decrypt: bad base64") from None
        if not raw or len(raw) % 16:
            raise PushRejected("cannot decrypt: bad length")
        dec = self.cipher.decryptor()
        plain = dec.update(raw) + dec.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or len(plain) < 20 + pad or plain[-pad:] != bytes([pad]) * pad:
            raise PushRejected("cannot decrypt: bad padding")
        content = plain[16:-pad]
        (length,) = struct.unpack(">I", content[:4])
        if 4 + length > len(content):
            raise PushRejected("cannot decrypt: bad length")
        if not hmac.compare_digest(content[4 + length:], self.appid):
            raise PushRejected("cannot decrypt: InvalidAppIdException")
        return content[4:4 + length]

    def encrypt(self, xml: bytes) -> str:
        plain = os.urandom(16) + struct.pack(">I", len(xml)) + xml + self.appid
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        enc = self.cipher.encryptor()
        return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


_cryptos: dict[tuple[str, str], _Crypto] = {}
_cryptos_lock = threading.Lock()


def _crypto(settings) -> _Crypto:
    k = (settings.wechat_encoding_aes_key, settings.wechat_app_id)
    c = _cryptos.get(k)
    if c is None:
        with _cryptos_lock:
            c = _cryptos.setdefault(k, _Crypto(*k))
    return c


def _message(doc: dict):
    """The wechatpy message object for a parsed push (wechatpy.parse_message's rules, without parsing again)."""
    msg_type = doc.get("MsgType")
    if not isinstance(msg_type, str):
        raise PushRejected("unparseable message: no MsgType")
    msg_type = msg_type.lower()
    if msg_type == "event" or msg_type.startswith("device_"):
        event = doc.get("Event")
        event_type = event.lower() if isinstance(event, str) else None
        if event_type is None and msg_type.startswith("device_"):
            event_type = msg_type
        elif msg_type.startswith("device_"):
            event_type = f"device_{event_type}"
        key = doc.get("EventKey")
        if event_type == "subscribe" and isinstance(key, str):
            if key.startswith(("scanbarcode|", "scanimage|")):
                event_type = doc["Event"] = "subscribe_scan_product"
            elif key.startswith("qrscene_"):
                event_type = doc["Event"] = "subscribe_scan"
                doc["EventKey"] = key[len("qrscene_"):]
        return EVENT_TYPES.get(event_type, UnknownMessage)(doc)
    return MESSAGE_TYPES.get(msg_type, UnknownMessage)(doc)


def open_push(settings, args, body: bytes):
    """Verify, decrypt (safe mode) and parse a POSTed push. Returns a wechatpy message; raises PushRejected."""
    ts, nonce = args.get("timestamp", ""), args.get("nonce", "")
    _check(_signature(settings.wechat_token, ts, nonce), args.get("signature"))
    _check_fresh(ts)
    doc = parse_xml(body)
    if settings.wechat_encoding_aes_key:
        encrypted = doc.get("Encrypt")
        if args.get("encrypt_type") != "aes" or not isinstance(encrypted, str):
            raise PushRejected("safe mode is configured: plain pushes are refused")
        _check(_signature(settings.wechat_token, ts, nonce, encrypted), args.get("msg_signature"))
        doc = parse_xml(_crypto(settings).decrypt(encrypted))
    message = _message(doc)
    if not isinstance(getattr(message, "source", None), str) or not message.source:
        raise PushRejected("message without sender")
    return message


def handler_key(message) -> str:
    """Registry key: the event name for events (subscribe, subscribe_scan, scan, unsubscribe, click, ...),
    else the message type (text, image, voice, ...)."""
    if message.type == "event":
        return message.event
    return message.type


def delivery_key(message) -> str:
    msg_id = getattr(message, "id", None)
    if msg_id:
        return f"wechat:push:msg:{msg_id}"
    raw = message._data
    return "wechat:push:evt:{}:{}:{}:{}".format(message.source, raw.get("CreateTime"), raw.get("Event", ""),
                                                raw.get("EventKey") or "")


def claim_delivery(redis, message) -> bool:
    """True for the first delivery of a message; False for WeChat's retries (atomic SET NX EX)."""
    return bool(redis.set(delivery_key(message), b"1", nx=True, ex=DEDUPE_SECONDS))


def release_delivery(redis, message) -> None:
    """The handler failed: let WeChat's next retry run it again."""
    redis.delete(delivery_key(message))


def _cdata(value) -> str:
    return "<![CDATA[" + str(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def render_reply(settings, message, reply: str | dict | None, args) -> str:
    """A passive reply (encrypted in safe mode): text, or news for {"articles": [{title, description, pic_url,
    url}, ...]} (at most 8, WeChat's limit for event replies); "success" for none."""
    if not reply:
        return "success"
    head = (f"<xml><ToUserName>{_cdata(message.source)}</ToUserName><FromUserName>{_cdata(message.target or '')}"
            f"</FromUserName><CreateTime>{int(time.time())}</CreateTime>")
    if isinstance(reply, dict):
        articles = reply["articles"][:8]
        items = "".join(f"<item><Title>{_cdata(a.get('title', ''))}</Title><Description>"
                        f"{_cdata(a.get('description', ''))}</Description><PicUrl>{_cdata(a.get('pic_url', ''))}"
                        f"</PicUrl><Url>{_cdata(a.get('url', ''))}</Url></item>" for a in articles)
        xml = (f"{head}<MsgType><![CDATA[news]]></MsgType><ArticleCount>{len(articles)}</ArticleCount>"
               f"<Articles>{items}</Articles></xml>")
    else:
        xml = f"{head}<MsgType><![CDATA[text]]></MsgType><Content>{_cdata(reply)}</Content></xml>"
    if args.get("encrypt_type") == "aes" and settings.wechat_encoding_aes_key:
        nonce = args.get("nonce") or secrets.token_hex(8)
        timestamp = args.get("timestamp") or str(int(time.time()))
        encrypted = _crypto(settings).encrypt(xml.encode())
        return (f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt><MsgSignature><![CDATA["
                f"{_signature(settings.wechat_token, timestamp, nonce, encrypted)}]]></MsgSignature>"
                f"<TimeStamp>{timestamp}</TimeStamp><Nonce>{_cdata(nonce)}</Nonce></xml>")
    return xml
