"""The emulated WeChat Pay v3 merchant-transfer desk: bills, the merchant's balance, signed answers and
notifications, and the ledger of what was actually paid (the judge of "none paid twice")."""
from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Response

from wechat.keys import load_private_key, load_public_key

CST = timezone(timedelta(hours=8))
OUT_BILL_NO = re.compile(r"^[0-9A-Za-z]{1,32}$")
FINAL = {"SUCCESS", "FAIL", "CANCELLED"}
CANCELABLE = {"ACCEPTED", "PROCESSING", "WAIT_USER_CONFIRM"}
USER_NAME_FROM_FEN = 200_000  # WeChat: the payee's real name is required from 2,000 yuan
AUTH_RE = re.compile(r'(\w+)="([^"]*)"')


def rfc3339(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts or time.time(), CST).isoformat(timespec="seconds")


class PayErr(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(status, code, message)
        self.status, self.code, self.message = status, code, message


class PayDesk:
    def __init__(self, config: dict, faults):
        self.cfg = config["pay"]
        self.config = config
        self.faults = faults
        self.platform_key = load_private_key(self.cfg["platform_private_key"])
        self.merchant_public = load_public_key(self.cfg["merchant_public_key"])
        self.lock = threading.RLock()
        self.http = requests.Session()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "lock", threading.RLock()):
            self.bills: dict[str, dict] = {}
            self.balance = int(self.cfg.get("balance", 10**9))
            self.payouts: list[dict] = []  # one row per bill that reached SUCCESS (money left the merchant)
            self.notifications: list[dict] = []  # every delivery attempt
            self.held: list[dict] = []  # notifications held back to be delivered out of order
            self.auto_confirm = bool(self.cfg.get("auto_confirm", False))
            # WeChat cancels asynchronously (CANCELING, later CANCELLED). False: the emulator finishes at once;
            # True: the bill stays CANCELING until settle(out_bill_no, "cancelled").
            self.hold_cancels = bool(self.cfg.get("hold_cancels", False))
            self._threads: list[threading.Thread] = []

    # --- signatures ---
    def sign_headers(self, body: bytes) -> dict:
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        msg = f"{ts}\n{nonce}\n{body.decode()}\n".encode()
        sig = self.platform_key.sign(msg, padding.PKCS1v15(), hashes.SHA256())
        return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce,
                "Wechatpay-Signature": base64.b64encode(sig).decode(),
                "Wechatpay-Serial": self.cfg["platform_public_key_id"],
                "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
                "Request-ID": secrets.token_hex(12)}

    def signed_json(self, data: dict, status: int = 200) -> Response:
        body = json.dumps(data, ensure_ascii=False).encode() if data is not None else b""
        return Response(body, status=status, mimetype="application/json", headers=self.sign_headers(body))

    def verify_request(self, method: str, path_qs: str, headers, body: bytes) -> None:
        auth = headers.get("Authorization", "")
        scheme, _, params = auth.partition(" ")
        if scheme != "WECHATPAY2-SHA256-RSA2048":
            raise PayErr(401, "SIGN_ERROR", "Authorization 格式错误")
        p = dict(AUTH_RE.findall(params))
        if p.get("mchid") != self.cfg["mch_id"]:
            raise PayErr(401, "SIGN_ERROR", "商户号与签名不匹配")
        if p.get("serial_no") != self.cfg["merchant_serial"]:
            raise PayErr(401, "SIGN_ERROR", "商户证书序列号有误")
        try:
            if abs(time.time() - int(p.get("timestamp", "0"))) > 300:
                raise PayErr(401, "SIGN_ERROR", "请求时间戳已过期")
            msg = f"{method}\n{path_qs}\n{p['timestamp']}\n{p['nonce_str']}\n{body.decode()}\n".encode()
            self.merchant_public.verify(base64.b64decode(p.get("signature", "")), msg, padding.PKCS1v15(),
                                        hashes.SHA256())
        except (InvalidSignature, KeyError, ValueError):
            raise PayErr(401, "SIGN_ERROR", "签名错误") from None

    # --- bills ---
    def _known_openid(self, world, appid: str, openid: str) -> bool:
        return appid in world.app_ids() and world.person_for_openid(appid, openid) is not None

    def create(self, world, body: dict, wechatpay_serial: str | None) -> dict:
        for f in ("appid", "out_bill_no", "transfer_scene_id", "openid", "transfer_amount", "transfer_remark"):
            if body.get(f) in (None, ""):
                raise PayErr(400, "PARAM_ERROR", f"输入源“/body/{f}”映射到字段“{f}”必填性规则校验失败")
        no = body["out_bill_no"]
        if not isinstance(no, str) or not OUT_BILL_NO.match(no):
            raise PayErr(400, "PARAM_ERROR", "out_bill_no 格式错误")
        amount = body["transfer_amount"]
        if not isinstance(amount, int) or amount < 10:
            raise PayErr(400, "PARAM_ERROR", "转账金额不能低于0.1元")
        if body["appid"] not in world.app_ids():
            raise PayErr(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        if body["transfer_scene_id"] == "1005":
            kinds = {i.get("info_type") for i in body.get("transfer_scene_report_infos") or []}
            if not {"岗位类型", "报酬说明"} <= kinds:
                raise PayErr(400, "PARAM_ERROR", "转账场景报备信息不完整")
        user_name = self._user_name(body, amount, wechatpay_serial)
        content = {"appid": body["appid"], "openid": body["openid"], "transfer_amount": amount,
                   "transfer_remark": body["transfer_remark"], "transfer_scene_id": body["transfer_scene_id"],
                   "user_name": user_name}
        with self.lock:
            bill = self.bills.get(no)
            if bill is not None:
                if bill["content"] != content:
                    raise PayErr(400, "INVALID_REQUEST", "商户单号重复，请核实请求参数是否与原单一致")
                return self._answer(bill)
            if not self._known_openid(world, body["appid"], body["openid"]):
                raise PayErr(400, "OPENID_MISMATCH", "openid与appid不匹配")
            if amount > self.balance:
                raise PayErr(403, "NOT_ENOUGH", "商户运营账户资金不足")
            self.balance -= amount
            now = time.time()
            bill = {"out_bill_no": no, "transfer_bill_no": f"1330000{secrets.randbelow(10**20):020d}",
                    "content": content, "state": "WAIT_USER_CONFIRM", "create_time": rfc3339(now),
                    "update_time": rfc3339(now), "notify_url": body.get("notify_url"),
                    "package_info": "ABBQO+oYAAABAAAAAAB" + base64.b64encode(secrets.token_bytes(48)).decode(),
                    "fail_reason": None, "user_recv_perception": body.get("user_recv_perception")}
            self.bills[no] = bill
            payee = world.person_for_openid(body["appid"], body["openid"])
            if user_name is not None and payee.real_name is not None and payee.real_name != user_name:
                # WeChat accepts the bill, checks the name against the payee's verified identity and fails it
                # (the member never sees a confirmation page); the merchant learns it by notification or query.
                bill["state"] = "ACCEPTED"
                answer = self._answer(bill)
                self._finish(bill, "FAIL", "NAME_NOT_CORRECT")
                return answer
            if self.auto_confirm:
                self._finish(bill, "SUCCESS")
            return self._answer(bill)

    def _user_name(self, body: dict, amount: int, wechatpay_serial: str | None) -> str | None:
        """The payee's name, decrypted with the WeChat Pay private key. WeChat requires it from 2,000 yuan, and
        a request carrying encrypted fields must name the key they were encrypted with (`Wechatpay-Serial`, the
        WeChat Pay public key id); a serial naming no key of ours is refused as well."""
        known = self.cfg["platform_public_key_id"]
        if wechatpay_serial is not None and wechatpay_serial != known:
            raise PayErr(400, "PARAM_ERROR", "Wechatpay-Serial 与微信支付公钥ID不匹配")
        if not body.get("user_name"):
            if amount >= USER_NAME_FROM_FEN:
                raise PayErr(400, "PARAM_ERROR", "转账金额>=2000元时，收款用户姓名必填")
            return None
        if wechatpay_serial is None:
            raise PayErr(400, "PARAM_ERROR", "请求参数含加密字段时，HTTP头Wechatpay-Serial必填")
        try:
            return self.platform_key.decrypt(
                base64.b64decode(body["user_name"]),
                padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)).decode()
        except (ValueError, TypeError):
            raise PayErr(400, "PARAM_ERROR", "user_name 解密失败") from None

    @staticmethod
    def _answer(bill: dict) -> dict:
        out = {k: bill[k] for k in ("out_bill_no", "transfer_bill_no", "create_time", "state")}
        if bill["state"] == "WAIT_USER_CONFIRM":
            out["package_info"] = bill["package_info"]
        return out

    def query(self, out_bill_no: str | None = None, transfer_bill_no: str | None = None) -> dict:
        with self.lock:
            bill = self.bills.get(out_bill_no or "") if out_bill_no else next(
                (b for b in self.bills.values() if b["transfer_bill_no"] == transfer_bill_no), None)
            if bill is None:
                raise PayErr(404, "NOT_FOUND", "记录不存在")
            c = bill["content"]
            out = {"mch_id": self.cfg["mch_id"], "out_bill_no": bill["out_bill_no"],
                   "transfer_bill_no": bill["transfer_bill_no"], "appid": c["appid"], "state": bill["state"],
                   "transfer_amount": c["transfer_amount"], "transfer_remark": c["transfer_remark"],
                   "openid": c["openid"], "create_time": bill["create_time"], "update_time": bill["update_time"]}
            if bill["fail_reason"]:
                out["fail_reason"] = bill["fail_reason"]
            if bill["state"] == "WAIT_USER_CONFIRM":
                out["package_info"] = bill["package_info"]
            return out

    def cancel(self, out_bill_no: str) -> dict:
        with self.lock:
            bill = self.bills.get(out_bill_no)
            if bill is None:
                raise PayErr(404, "NOT_FOUND", "记录不存在")
            if bill["state"] not in CANCELABLE and bill["state"] not in ("CANCELING", "CANCELLED"):
                raise PayErr(400, "INVALID_REQUEST", "当前单据状态不支持撤销")
            if bill["state"] in CANCELABLE:
                # WeChat answers CANCELING and finishes asynchronously; the emulator finishes at once unless
                # hold_cancels (then settle(out_bill_no, "cancelled") finishes it).
                bill["state"], bill["update_time"] = "CANCELING", rfc3339()
                if not self.hold_cancels:
                    self._finish(bill, "CANCELLED")
            return {"out_bill_no": out_bill_no, "transfer_bill_no": bill["transfer_bill_no"], "state": "CANCELING",
                    "update_time": bill["update_time"]}

    # --- outcomes (the simulated payee and WeChat's back office) ---
    def settle(self, out_bill_no: str, outcome: str, fail_reason: str = "PAYEE_ACCOUNT_ABNORMAL") -> dict:
        """confirm -> SUCCESS, ignore (24 h pass) -> CANCELLED, fail -> FAIL, cancelled -> a held cancel
        (CANCELING) finishes as CANCELLED."""
        with self.lock:
            bill = self.bills.get(out_bill_no)
            if bill is None:
                raise PayErr(404, "NOT_FOUND", "记录不存在")
            if bill["state"] in FINAL:
                raise PayErr(400, "INVALID_REQUEST", f"单据已是终态 {bill['state']}")
            state = {"confirm": "SUCCESS", "ignore": "CANCELLED", "fail": "FAIL", "cancelled": "CANCELLED"}[outcome]
            if state == "SUCCESS" and bill["state"] != "WAIT_USER_CONFIRM":
                raise PayErr(400, "INVALID_REQUEST", "单据不在待确认状态")
            if outcome == "cancelled" and bill["state"] != "CANCELING":
                raise PayErr(400, "INVALID_REQUEST", "单据不在撤销中")
            self._finish(bill, state, fail_reason if state == "FAIL" else None)
            return self.query(out_bill_no)

    def confirm_package(self, openid: str, appid: str, mch_id: str | None, package: str | None) -> dict:
        """wx.requestMerchantTransfer({mchId, appId, package}) and the payee taps confirm: the bill whose
        package_info the merchant handed to its mini-program becomes SUCCESS, if it is this payee's."""
        with self.lock:
            if mch_id != self.cfg["mch_id"]:
                raise PayErr(400, "PARAM_ERROR", "mchId 与单据不匹配")
            bill = next((b for b in self.bills.values() if package and b["package_info"] == package), None)
            if bill is None:
                raise PayErr(404, "NOT_FOUND", "记录不存在")
            if bill["content"]["appid"] != appid or bill["content"]["openid"] != openid:
                raise PayErr(403, "NO_AUTH", "收款用户与单据不符")
            return self.settle(bill["out_bill_no"], "confirm")

    def _finish(self, bill: dict, state: str, fail_reason: str | None = None) -> None:
        bill["state"] = state
        bill["update_time"] = rfc3339()
        c = bill["content"]
        if state == "SUCCESS":
            self.payouts.append({"out_bill_no": bill["out_bill_no"], "transfer_bill_no": bill["transfer_bill_no"],
                                 "openid": c["openid"], "amount": c["transfer_amount"], "at": bill["update_time"]})
        else:
            bill["fail_reason"] = fail_reason
            self.balance += c["transfer_amount"]  # FAIL / CANCELLED: the reserved money goes back
        if bill["notify_url"]:
            self._notify(bill)

    # --- notifications ---
    def notification_body(self, bill: dict) -> bytes:
        c = bill["content"]
        resource = {"out_bill_no": bill["out_bill_no"], "transfer_bill_no": bill["transfer_bill_no"],
                    "state": bill["state"], "mch_id": self.cfg["mch_id"], "transfer_amount": c["transfer_amount"],
                    "openid": c["openid"], "create_time": bill["create_time"], "update_time": bill["update_time"]}
        if bill["fail_reason"]:
            resource["fail_reason"] = bill["fail_reason"]
        nonce, ad = secrets.token_hex(6), "mch_payment"
        ct = AESGCM(self.cfg["api_v3_key"].encode()).encrypt(nonce.encode(), json.dumps(resource).encode(), ad.encode())
        return json.dumps({"id": secrets.token_hex(16), "create_time": rfc3339(),
                           "resource_type": "encrypt-resource", "event_type": "MCHTRANSFER.BILL.FINISHED",
                           "summary": "商家转账单据终态通知",
                           "resource": {"original_type": "mch_payment", "algorithm": "AEAD_AES_256_GCM",
                                        "ciphertext": base64.b64encode(ct).decode(), "associated_data": ad,
                                        "nonce": nonce}}, ensure_ascii=False).encode()

    def _notify(self, bill: dict) -> None:
        item = {"url": bill["notify_url"], "body": self.notification_body(bill), "out_bill_no": bill["out_bill_no"],
                "state": bill["state"]}
        mode = self.faults.take_notify()
        if mode == "drop":
            self.notifications.append({**self._public(item), "attempt": 0, "status": None, "dropped": True})
            return
        if mode == "reorder":
            self.held.append(item)
            return
        batch = [item, item] if mode == "duplicate" else [item]
        batch += self.held  # what was held back is delivered after the newer notification
        self.held = []
        t = threading.Thread(target=self._deliver_all, args=(batch,), daemon=True)
        self._threads.append(t)
        t.start()

    def flush_held(self) -> int:
        with self.lock:
            batch, self.held = self.held, []
        if batch:
            t = threading.Thread(target=self._deliver_all, args=(batch,), daemon=True)
            self._threads.append(t)
            t.start()
        return len(batch)

    @staticmethod
    def _public(item: dict) -> dict:
        return {"url": item["url"], "out_bill_no": item["out_bill_no"], "state": item["state"]}

    def _deliver_all(self, batch: list[dict]) -> None:
        for item in batch:
            self._deliver(item)

    def _deliver(self, item: dict) -> None:
        delays = [0.0] + list(self.config.get("notify_retry_delays", [0.2, 0.5, 1.0, 2.0]))
        for attempt, delay in enumerate(delays, 1):
            time.sleep(delay)
            body = item["body"]  # the same notification (same id) on every retry, freshly signed
            try:
                r = self.http.post(item["url"], data=body, timeout=5,
                                   headers={"Content-Type": "application/json", **self.sign_headers(body)})
                status, ok = r.status_code, r.status_code in (200, 204)
            except requests.RequestException as exc:
                status, ok = repr(exc), False
            with self.lock:
                self.notifications.append({**self._public(item), "attempt": attempt, "status": status, "ok": ok})
            if ok:
                return

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until every notification in flight was delivered or gave up (for tests and demos)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                alive = [t for t in self._threads if t.is_alive()]
                self._threads = alive
            if not alive:
                return True
            if time.monotonic() > deadline:
                return False
            alive[0].join(timeout=0.05)

    def ledger(self) -> dict:
        with self.lock:
            return {"balance": self.balance, "paid_total": sum(p["amount"] for p in self.payouts),
                    "payouts": [dict(p) for p in self.payouts],
                    "bills": [{"out_bill_no": b["out_bill_no"], "transfer_bill_no": b["transfer_bill_no"],
                               "state": b["state"], "fail_reason": b["fail_reason"], **b["content"],
                               "user_name": "***" if b["content"]["user_name"] else None}
                              for b in self.bills.values()]}
