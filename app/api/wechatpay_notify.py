"""/wechatpay/notify/transfer: WeChat Pay's merchant-transfer notifications (MCHTRANSFER.BILL.FINISHED).

Verified and decrypted by wechat.pay (platform public key, freshness, AEAD_AES_256_GCM); then the registered
handler (withdrawals) runs, the session is committed once, and WeChat gets {"code": "SUCCESS"}. Anything that
fails verification is answered 4xx and nothing is recorded; a handler failure is answered 500 so WeChat
retries (notifications repeat anyway: handlers must be idempotent)."""
from __future__ import annotations

import logging
import os

from apiflask import APIBlueprint
from flask import jsonify, request

from app.api.web import db, runtime
from wechat.errors import PayNotificationRejected
from wechat.pay import WeChatPay
from wechat.registry import register_transfer_notification_handler, transfer_notification_handlers  # noqa: F401

log = logging.getLogger(__name__)
bp = APIBlueprint("wechatpay_notify", __name__, enable_openapi=False)


def _pay(rt) -> WeChatPay:
    """One verifying client per process runtime: building one parses the keys (and opens an HTTP pool)."""
    key = ("wechatpay_notify.client", os.getpid())
    client = rt.cache.get(key)
    if client is None:
        client = rt.cache[key] = WeChatPay(rt.settings)
    return client


def _fail(message: str, status: int):
    return jsonify({"code": "FAIL", "message": message}), status


@bp.post("/wechatpay/notify/transfer")
def transfer_notification():
    rt = runtime()
    try:
        resource = _pay(rt).open_notification(request.headers, request.get_data(cache=False))
    except PayNotificationRejected as exc:
        log.warning("wechatpay notification rejected: %s", exc)
        return _fail(str(exc), 401)
    handlers = transfer_notification_handlers()
    if not handlers:
        log.error("no transfer notification handler registered; WeChat Pay will retry")
        return _fail("not ready", 503)
    try:
        session = db()
        for handler in handlers:
            handler(session, resource, rt)
        session.commit()
    except Exception:
        db().rollback()
        log.exception("transfer notification handler failed for %s", resource.get("out_bill_no"))
        return _fail("handler error", 500)
    return jsonify({"code": "SUCCESS"}), 200
