"""WeChat Pay API v3 client for merchant transfer (商家转账, transfer-bills), on `cryptography` + `requests`.

Why not wechatpayv3: its base URL is a private attribute, it returns (status, text) without raising on 4xx, and
its callback check does not reject stale timestamps. This client is ~200 lines, raises typed errors that tell
the caller what to do (PayError: rejected; PayUnknownOutcome: query, never re-bill), verifies every answer's
signature and honours WECHATPAY_API_BASE."""
from __future__ import annotations

import base64
import json
import os
import secrets
import time
from urllib.parse import quote, urlsplit

import requests
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wechat.errors import PayError, PayNotFound, PayNotificationRejected, PayUnknownOutcome
from wechat.keys import load_private_key, load_public_key, merchant_private_pem, platform_public_pem

MAX_SKEW = 300  # seconds: older signed answers/notifications are refused (replay)
UNKNOWN_CODES = {"SYSTEM_ERROR", "SYSTEMERROR", "BANK_ERROR"}
TRANSFER_BILLS = "/v3/fund-app/mch-transfer/transfer-bills"
DEFAULT_REPORT_INFOS = ({"info_type": "岗位类型", "info_content": "推广员"},
                        {"info_type": "报酬说明", "info_content": "佣金报酬"})


def _h(headers, name: str) -> str | None:
    """Case-insensitive header lookup for any mapping (requests, werkzeug, plain dict)."""
    getter = getattr(headers, "get", None)
    value = getter(name) if getter else None
    if value is None and isinstance(headers, dict):
        low = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == low), None)
    return value


def _session(base: str) -> requests.Session:
    """A keep-alive session whose proxy and CA settings are read from the environment once, here: with
    `trust_env` requests scans the whole environment on every call (about a millisecond of CPU per request)."""
    http = requests.Session()
    http.proxies.update(requests.utils.get_environ_proxies(base))
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if ca_bundle:
        http.verify = ca_bundle
    http.trust_env = False
    return http


class WeChatPay:
    def __init__(self, settings, *, http: requests.Session | None = None, timeout=(3.05, 10)):
        self.settings = settings
        self.base = settings.wechatpay_api_base.rstrip("/")
        self.mch_id = settings.wechatpay_mch_id
        self.serial = settings.wechatpay_cert_serial
        self.private_key = load_private_key(merchant_private_pem(settings))
        self.platform_key = load_public_key(platform_public_pem(settings))
        self.platform_key_id = settings.wechatpay_public_key_id
        self.aead = AESGCM(settings.wechatpay_api_v3_key.encode())
        self.http = http or _session(self.base)
        self.timeout = timeout

    # --- transfer bills ---
    def create_transfer_bill(self, out_bill_no: str, openid: str, amount: int, remark: str, *,
                             user_name: str | None = None, scene_id: str = "1005",
                             report_infos: list[dict] | tuple = DEFAULT_REPORT_INFOS, notify_url: str | None = None,
                             user_recv_perception: str | None = None, appid: str | None = None) -> dict:
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise TypeError("amount is integer fen")
        body = {"appid": appid or self.settings.wechat_miniapp_id, "out_bill_no": out_bill_no,
                "transfer_scene_id": scene_id, "openid": openid, "transfer_amount": amount,
                "transfer_remark": remark,
                "notify_url": notify_url or f"{self.settings.public_base_url}/wechatpay/notify/transfer",
                "transfer_scene_report_infos": [dict(i) for i in report_infos]}
        if user_recv_perception:
            body["user_recv_perception"] = user_recv_perception
        if user_name:
            body["user_name"] = self.encrypt_sensitive(user_name)
        # Wechatpay-Serial names the WeChat Pay public key the sensitive fields are encrypted with; WeChat's
        # reference lists it as required on this call, so it is always sent.
        return self._call("POST", TRANSFER_BILLS, body, {"Wechatpay-Serial": self.platform_key_id})

    def query_transfer_bill(self, out_bill_no: str) -> dict:
        return self._call("GET", f"{TRANSFER_BILLS}/out-bill-no/{quote(out_bill_no, safe='')}")

    def cancel_transfer_bill(self, out_bill_no: str) -> dict:
        return self._call("POST", f"{TRANSFER_BILLS}/out-bill-no/{quote(out_bill_no, safe='')}/cancel", {})

    # --- crypto ---
    def encrypt_sensitive(self, text: str) -> str:
        """RSA-OAEP (SHA-1, as WeChat Pay specifies) with the WeChat Pay public key."""
        ct = self.platform_key.encrypt(text.encode(), padding.OAEP(mgf=padding.MGF1(hashes.SHA1()),
                                                                   algorithm=hashes.SHA1(), label=None))
        return base64.b64encode(ct).decode()

    def _authorization(self, method: str, url: str, body: str) -> str:
        parts = urlsplit(url)
        canonical = parts.path + (f"?{parts.query}" if parts.query else "")
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        msg = f"{method}\n{canonical}\n{ts}\n{nonce}\n{body}\n".encode()
        sig = base64.b64encode(self.private_key.sign(msg, padding.PKCS1v15(), hashes.SHA256())).decode()
        return (f'WECHATPAY2-SHA256-RSA2048 mchid="{self.mch_id}",nonce_str="{nonce}",signature="{sig}",'
                f'timestamp="{ts}",serial_no="{self.serial}"')

    def verify_signed(self, headers, body: bytes) -> None:
        """Raise PayNotificationRejected unless WeChat Pay signed (timestamp, nonce, body) recently."""
        serial, ts, nonce, sig = (_h(headers, n) for n in ("Wechatpay-Serial", "Wechatpay-Timestamp",
                                                            "Wechatpay-Nonce", "Wechatpay-Signature"))
        if not (serial and ts and nonce and sig):
            raise PayNotificationRejected("missing Wechatpay-* signature headers")
        if serial != self.platform_key_id:
            raise PayNotificationRejected(f"unknown Wechatpay-Serial {serial}")
        try:
            if abs(time.time() - int(ts)) > MAX_SKEW:
                raise PayNotificationRejected("stale Wechatpay-Timestamp")
            msg = ts.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
            self.platform_key.verify(base64.b64decode(sig), msg, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            raise PayNotificationRejected("bad Wechatpay-Signature") from None

    def open_notification(self, headers, body: bytes) -> dict:
        """Verify and decrypt a notification; returns the decrypted resource (adds `event_type`, `id`)."""
        self.verify_signed(headers, body)
        try:
            doc = json.loads(body)
            res = doc["resource"]
            if res.get("algorithm") != "AEAD_AES_256_GCM":
                raise PayNotificationRejected(f"unexpected algorithm {res.get('algorithm')}")
            plain = self.aead.decrypt(res["nonce"].encode(), base64.b64decode(res["ciphertext"]),
                                      (res.get("associated_data") or "").encode() or None)
            resource = json.loads(plain)
        except PayNotificationRejected:
            raise
        except (InvalidTag, ValueError, KeyError, TypeError, AttributeError):
            raise PayNotificationRejected("cannot decrypt the notification resource") from None
        resource.setdefault("event_type", doc.get("event_type"))
        resource.setdefault("notification_id", doc.get("id"))
        return resource

    # --- transport ---
    def _call(self, method: str, path: str, body: dict | None = None, extra_headers: dict | None = None) -> dict:
        url = self.base + path
        payload = "" if method == "GET" else json.dumps(body or {}, ensure_ascii=False, separators=(",", ":"))
        headers = {"Authorization": self._authorization(method, url, payload), "Accept": "application/json",
                   "Content-Type": "application/json", "User-Agent": "liebian-wechatpay/1.0",
                   **(extra_headers or {})}
        try:
            r = self.http.request(method, url, data=payload.encode() if payload else None, headers=headers,
                                  timeout=self.timeout)
        except requests.RequestException as exc:
            raise PayUnknownOutcome(f"{method} {path}: {exc!r}") from exc
        if r.status_code >= 500:
            raise PayUnknownOutcome(f"{method} {path}: HTTP {r.status_code} {r.text[:200]}")
        try:
            self.verify_signed(r.headers, r.content)
        except PayNotificationRejected as exc:
            raise PayUnknownOutcome(f"{method} {path}: answer not signed by WeChat Pay ({exc})") from None
        try:
            data = r.json() if r.content else {}
        except ValueError:
            raise PayUnknownOutcome(f"{method} {path}: answer is not JSON") from None
        if 200 <= r.status_code < 300:
            return data
        code, message = data.get("code", "UNKNOWN"), data.get("message", "")
        if code in UNKNOWN_CODES:
            raise PayUnknownOutcome(f"{method} {path}: {code} {message}")
        if r.status_code == 404 or code in ("NOT_FOUND", "RESOURCE_NOT_EXISTS"):
            raise PayNotFound(r.status_code, code, message)
        raise PayError(r.status_code, code, message)
