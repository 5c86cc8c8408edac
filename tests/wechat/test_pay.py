"""WeChat Pay v3 merchant transfer against the emulator: signed both ways, idempotent, honest about unknowns."""
from __future__ import annotations

import json
import time

import pytest
import requests

from wechat.errors import PayError, PayNotFound, PayNotificationRejected, PayUnknownOutcome
from wechat.keys import generate_private_pem, public_pem_of
from wechat.pay import WeChatPay


@pytest.fixture
def pay(settings) -> WeChatPay:
    return WeChatPay(settings)


@pytest.fixture
def payee(emulator, settings):
    p = emulator.sim("persons", nickname="推广员")
    return p["openids"][settings.wechat_miniapp_id]


def test_bill_waits_for_the_user_then_success_is_notified_and_paid_once(pay, payee, emulator, live_app,
                                                                         transfer_handler):
    bill = pay.create_transfer_bill("W0001", payee, 1234, "佣金提现")
    assert bill["state"] == "WAIT_USER_CONFIRM" and bill["package_info"] and bill["transfer_bill_no"]
    assert pay.query_transfer_bill("W0001")["state"] == "WAIT_USER_CONFIRM"
    emulator.sim("pay/bills/W0001/confirm")
    assert emulator.pay.wait_idle()
    assert [(r["out_bill_no"], r["state"], r["transfer_amount"]) for r in transfer_handler] == [
        ("W0001", "SUCCESS", 1234)]
    assert pay.query_transfer_bill("W0001")["state"] == "SUCCESS"
    ledger = emulator.sim("pay/ledger", method="GET")
    assert [(p["out_bill_no"], p["amount"]) for p in ledger["payouts"]] == [("W0001", 1234)]


def test_same_out_bill_no_same_content_is_the_same_bill_different_content_is_refused(pay, payee):
    a = pay.create_transfer_bill("W0002", payee, 500, "佣金提现")
    b = pay.create_transfer_bill("W0002", payee, 500, "佣金提现")
    assert a["transfer_bill_no"] == b["transfer_bill_no"]
    with pytest.raises(PayError) as e:
        pay.create_transfer_bill("W0002", payee, 501, "佣金提现")
    assert (e.value.http_status, e.value.code) == (400, "INVALID_REQUEST")


def test_definite_rejections(pay, payee, emulator):
    emulator.sim("pay/settings", balance=1000)
    with pytest.raises(PayError) as poor:
        pay.create_transfer_bill("W0003", payee, 1001, "x")
    assert poor.value.code == "NOT_ENOUGH"
    with pytest.raises(PayError) as stranger:
        pay.create_transfer_bill("W0004", "oNotAUserOfThisApp", 100, "x")
    assert stranger.value.code == "OPENID_MISMATCH"
    with pytest.raises(PayError) as big:
        pay.create_transfer_bill("W0005", payee, 200_000, "x")
    assert big.value.code == "PARAM_ERROR"  # from 2,000 yuan the real name is required
    with pytest.raises(PayNotFound):
        pay.query_transfer_bill("W9999")


def test_real_name_is_sent_encrypted_with_the_wechatpay_public_key(pay, payee, emulator):
    pay.create_transfer_bill("W0006", payee, 250_000, "佣金提现", user_name="张三")
    assert emulator.pay.bills["W0006"]["content"]["user_name"] == "张三"


def test_cancel_and_ignore_return_the_money(pay, payee, emulator, live_app, transfer_handler):
    emulator.sim("pay/settings", balance=10_000)
    pay.create_transfer_bill("W0007", payee, 3000, "x")
    pay.create_transfer_bill("W0008", payee, 2000, "x")
    assert emulator.pay.balance == 5000
    assert pay.cancel_transfer_bill("W0007")["state"] in ("CANCELING", "CANCELLED")
    emulator.sim("pay/bills/W0008/ignore")
    assert pay.query_transfer_bill("W0007")["state"] == "CANCELLED"
    assert pay.query_transfer_bill("W0008")["state"] == "CANCELLED"
    assert emulator.pay.balance == 10_000
    emulator.pay.wait_idle()
    assert sorted(r["out_bill_no"] for r in transfer_handler) == ["W0007", "W0008"]
    assert emulator.sim("pay/ledger", method="GET")["payouts"] == []


def test_timeout_after_processing_is_an_unknown_outcome_resolved_by_query(settings, payee, emulator):
    emulator.sim("faults", target="pay.create", kind="timeout", seconds=1.5, phase="after", count=1)
    impatient = WeChatPay(settings, timeout=(1, 0.5))
    with pytest.raises(PayUnknownOutcome):
        impatient.create_transfer_bill("W0010", payee, 100, "x")
    assert WeChatPay(settings).query_transfer_bill("W0010")["state"] == "WAIT_USER_CONFIRM"


@pytest.mark.parametrize("error", ["SYSTEM_ERROR", 502])
def test_system_errors_are_unknown_outcomes(pay, payee, emulator, error):
    emulator.sim("faults", target="pay.*", kind="error", error=error, phase="after", count=1)
    with pytest.raises(PayUnknownOutcome):
        pay.create_transfer_bill("W0011", payee, 100, "x")
    assert pay.create_transfer_bill("W0011", payee, 100, "x")["state"] == "WAIT_USER_CONFIRM"  # retried, same bill


def test_answers_not_signed_by_the_platform_key_are_unknown_outcomes(settings, payee):
    forged = WeChatPay(settings.with_(wechatpay_public_key=public_pem_of(generate_private_pem())))
    with pytest.raises(PayUnknownOutcome):
        forged.create_transfer_bill("W0012", payee, 100, "x")


def test_requests_not_signed_by_the_merchant_key_are_refused(settings, payee, emulator):
    impostor = WeChatPay(settings.with_(wechatpay_private_key=generate_private_pem()))
    with pytest.raises(PayError) as e:
        impostor.create_transfer_bill("W0013", payee, 100, "x")
    assert (e.value.http_status, e.value.code) == (401, "SIGN_ERROR")
    assert emulator.pay.bills == {}


def _notification(emulator, pay, payee):
    pay.create_transfer_bill("W0020", payee, 100, "x")
    bill = emulator.pay.bills["W0020"]
    body = emulator.pay.notification_body(bill)
    return body, emulator.pay.sign_headers(body)


def test_notification_signature_freshness_serial_and_decryption_are_checked(pay, payee, emulator, settings):
    body, headers = _notification(emulator, pay, payee)
    assert pay.open_notification(headers, body)["out_bill_no"] == "W0020"
    with pytest.raises(PayNotificationRejected):
        pay.open_notification(headers, body.replace(b"W", b"X") + b" ")
    with pytest.raises(PayNotificationRejected):
        pay.open_notification({**headers, "Wechatpay-Serial": "PUB_KEY_ID_OTHER"}, body)
    old = dict(headers, **{"Wechatpay-Timestamp": str(int(time.time()) - 3600)})
    with pytest.raises(PayNotificationRejected):
        pay.open_notification(old, body)
    wrong_key = WeChatPay(settings.with_(wechatpay_api_v3_key="0" * 32))
    with pytest.raises(PayNotificationRejected):
        wrong_key.open_notification(headers, body)


def test_notify_endpoint_refuses_forgeries_and_records_nothing(pay, payee, emulator, live_app, transfer_handler):
    body, headers = _notification(emulator, pay, payee)
    doc = json.loads(body)
    doc["resource"]["ciphertext"] = doc["resource"]["ciphertext"][::-1]
    forged = json.dumps(doc).encode()
    r = requests.post(f"{live_app}/wechatpay/notify/transfer", data=forged, headers=headers, timeout=10)
    assert r.status_code == 401 and r.json()["code"] == "FAIL"
    r = requests.post(f"{live_app}/wechatpay/notify/transfer", data=body, headers=headers, timeout=10)
    assert r.status_code == 200 and r.json() == {"code": "SUCCESS"}
    assert [n["out_bill_no"] for n in transfer_handler] == ["W0020"]


def test_duplicated_dropped_and_reordered_notifications(pay, payee, emulator, live_app, transfer_handler):
    emulator.sim("faults/notify", mode="duplicate", count=1)
    pay.create_transfer_bill("W0030", payee, 100, "x")
    emulator.sim("pay/bills/W0030/confirm")
    emulator.pay.wait_idle()
    assert [n["out_bill_no"] for n in transfer_handler] == ["W0030", "W0030"]

    transfer_handler.clear()
    emulator.sim("faults/notify", mode="drop", count=1)
    pay.create_transfer_bill("W0031", payee, 100, "x")
    emulator.sim("pay/bills/W0031/confirm")
    emulator.pay.wait_idle()
    assert transfer_handler == []  # only a query (reconciliation) can learn this one

    emulator.sim("faults/notify", mode="reorder", count=1)
    pay.create_transfer_bill("W0032", payee, 100, "x")
    pay.create_transfer_bill("W0033", payee, 100, "x")
    emulator.sim("pay/bills/W0032/confirm")
    emulator.sim("pay/bills/W0033/fail")
    emulator.pay.wait_idle()
    assert [(n["out_bill_no"], n["state"]) for n in transfer_handler] == [("W0033", "FAIL"), ("W0032", "SUCCESS")]
