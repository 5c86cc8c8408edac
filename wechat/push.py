"""Service-account message push (消息推送): URL check, signature verification (constant time), AES safe mode,
safe XML parsing, atomic dedupe of WeChat's retries, and passive replies.

With an EncodingAESKey configured, only safe-mode (encrypted) pushes are accepted: in plain mode the signature
covers token+timestamp+nonce only, not the body, so a plain push could be forged by anyone who saw one URL."""
from __future__ import annotations

import hmac
import secrets
import time

import xmltodict
from wechatpy import create_reply, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException

from wechat.emulator.msgcrypto import signature as _sha1_signature
from wechat.errors import PushRejected

MAX_BODY = 64 * 1024  # WeChat's pushes are a few KB
DEDUPE_SECONDS = 3600  # WeChat retries within ~15 s; an hour is ample
MAX_SKEW = 600  # seconds; bounds replay of a captured push


def _check(expected: str, given: str | None) -> None:
    if not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise PushRejected("bad signature")


def check_url(settings, args) -> str:
    """GET /wechat/callback: answer echostr verbatim when the signature is WeChat's."""
    _check(_sha1_signature(settings.wechat_token, args.get("timestamp", ""), args.get("nonce", "")),
           args.get("signature"))
    return args.get("echostr", "")


def _safe_xml(body: bytes) -> dict:
    if len(body) > MAX_BODY:
        raise PushRejected("body too large")
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise PushRejected("DTDs and entities are not accepted")
    try:
        doc = xmltodict.parse(body, disable_entities=True)
    except Exception as exc:  # expat errors, ValueError on entities
        raise PushRejected(f"malformed XML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("xml"), dict):
        raise PushRejected("not a WeChat message")
    return doc["xml"]


def _crypto(settings) -> WeChatCrypto:
    return WeChatCrypto(settings.wechat_token, settings.wechat_encoding_aes_key, settings.wechat_app_id)


def open_push(settings, args, body: bytes):
    """Verify, decrypt (safe mode) and parse a POSTed push. Returns a wechatpy message; raises PushRejected."""
    ts, nonce = args.get("timestamp", ""), args.get("nonce", "")
    _check(_sha1_signature(settings.wechat_token, ts, nonce), args.get("signature"))
    try:
        if abs(time.time() - int(ts)) > MAX_SKEW:
            raise PushRejected("stale timestamp")
    except ValueError:
        raise PushRejected("bad timestamp") from None
    outer = _safe_xml(body)
    if settings.wechat_encoding_aes_key:
        if args.get("encrypt_type") != "aes" or not isinstance(outer.get("Encrypt"), str):
            raise PushRejected("safe mode is configured: plain pushes are refused")
        _check(_sha1_signature(settings.wechat_token, ts, nonce, outer["Encrypt"]), args.get("msg_signature"))
        try:
            xml = _crypto(settings).decrypt_message(body.decode(), args.get("msg_signature"), ts, nonce)
        except (InvalidSignatureException, InvalidAppIdException) as exc:
            raise PushRejected(f"cannot decrypt: {type(exc).__name__}") from None
        except Exception as exc:  # bad base64 / padding / length
            raise PushRejected(f"cannot decrypt: {exc}") from None
        body = xml.encode() if isinstance(xml, str) else xml
        _safe_xml(body)
    try:
        message = parse_message(body.decode())
    except Exception as exc:
        raise PushRejected(f"unparseable message: {exc}") from None
    if message is None or not getattr(message, "source", None):
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


def render_reply(settings, message, text: str | None, args) -> str:
    if not text:
        return "success"
    xml = create_reply(text, message).render()
    if args.get("encrypt_type") == "aes" and settings.wechat_encoding_aes_key:
        return _crypto(settings).encrypt_message(xml, args.get("nonce") or secrets.token_hex(8),
                                                 args.get("timestamp") or str(int(time.time())))
    return xml
