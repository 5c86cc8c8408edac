"""Done-when for the embedded default (`make run`): a newcomer's whole loop, over HTTP, with nothing but the
served process (SQLite file, in-process Redis, the emulator mounted in the app, the periodic jobs in a thread)."""
from __future__ import annotations

import hashlib
import hmac
import json
import time

ORDER_FEN = 25800


def _shop(embedded, event: dict) -> dict:
    """The shop's signed webhook call, as the README describes it."""
    body = json.dumps(event).encode()
    ts = str(int(time.time()))
    sig = hmac.new(b"demo-shop-secret", f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return embedded.call("POST", "/hooks/shop/orders", data=body,
                         headers={"Content-Type": "application/json", "X-Liebian-Timestamp": ts,
                                  "X-Liebian-Signature": sig})


def _eventually(read, done, what: str, timeout: float = 30.0):
    """Poll `read()` until `done(value)`: the in-process scheduler works on its own clock."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"{what}: still {value!r}"
        time.sleep(0.1)


def test_a_newcomer_walks_the_whole_loop_in_the_embedded_default(embedded):
    seeded = embedded.cli("seed-demo")
    assert seeded.exit_code == 0, seeded.output

    # Sign in as the demo guest (a WeChat user of the emulator), then scan the demo partner's code as them.
    guest = embedded.login("demo-guest")
    partner = embedded.login("demo-partner")
    partner_id = embedded.call("GET", "/api/mp/me", partner)["id"]
    scene = embedded.call("GET", "/api/mp/code", partner)["scene"]
    assert embedded.call("GET", "/api/mp/me", guest)["referrer_id"] is None
    push = embedded.call("POST", "/_emulator/_sim/persons/demo-guest/scan", json={"scene": scene})
    assert push["delivered"] is True
    assert embedded.call("GET", "/api/mp/me", guest)["referrer_id"] == partner_id

    # The shop reports the guest's order paid and completed (signed webhook).
    before = embedded.call("GET", "/api/mp/earnings", partner)
    unionid = embedded.call("GET", "/_emulator/_sim/persons/demo-guest")["unionid"]
    paid = _shop(embedded, {"event": "paid", "order_id": "E2E-1", "buyer": {"unionid": unionid},
                            "lines": [{"product_id": "SKU-TEA", "quantity": 1, "paid_fen": ORDER_FEN}]})
    mine = [c for c in paid["commissions"] if c["earner_id"] == partner_id]
    assert [(c["level"], c["amount_fen"]) for c in mine] == [(1, ORDER_FEN // 10)]
    assert _shop(embedded, {"event": "completed", "order_id": "E2E-1"})["status"] == "applied"

    # The in-process schedule matures them (COMMISSION_MATURE_SECONDS=1 here; the demo plan holds 0 days).
    after = _eventually(lambda: embedded.call("GET", "/api/mp/earnings", partner),
                        lambda e: e["available_fen"] == before["available_fen"] + ORDER_FEN // 10,
                        "the partner's commission matured")
    assert after["pending_fen"] == before["pending_fen"]

    # A withdrawal: requested, approved in the console, confirmed by the partner in WeChat, paid.
    amount = after["available_fen"]
    w = embedded.call("POST", "/api/mp/withdrawals", partner, expect=201, json={"amount_fen": amount},
                      headers={"Idempotency-Key": "e2e-1"})
    assert w["state"] == "REVIEWING"
    admin = embedded.call("POST", "/api/admin/login", json={"username": "admin", "password": "liebian-demo"})
    approved = embedded.call("POST", f"/api/admin/withdrawals/{w['id']}/approve", admin["access_token"])
    assert approved["state"] in ("APPROVED", "SUBMITTING", "WAIT_USER_CONFIRM")
    waiting = _eventually(lambda: embedded.call("GET", f"/api/mp/withdrawals/{w['id']}", partner),
                          lambda v: v["state"] == "WAIT_USER_CONFIRM", "the bill reached WeChat")
    assert waiting["confirm"]["mchId"] and waiting["confirm"]["package"]
    embedded.call("POST", "/_emulator/_sim/persons/demo-partner/merchant_transfer", json=waiting["confirm"])
    done = _eventually(lambda: embedded.call("GET", f"/api/mp/withdrawals/{w['id']}", partner),
                       lambda v: v["final"], "the payout finished")
    assert done["state"] == "SUCCESS" and done["net_fen"] == amount
    person = embedded.call("GET", "/_emulator/_sim/persons/demo-partner")
    openid = person["openids"][embedded.rt.settings.wechat_miniapp_id]
    payouts = embedded.call("GET", "/_emulator/_sim/pay/ledger")["payouts"]
    assert [(p["openid"], p["amount"]) for p in payouts] == [(openid, amount)]
    assert embedded.call("GET", "/api/mp/earnings", partner)["available_fen"] == 0

    # The books balance, and /healthz says all is well (the scheduler ticks, nothing failing).
    check = embedded.cli("ledger", "check")
    assert check.exit_code == 0 and "OK" in check.output, check.output
    health = embedded.call("GET", "/healthz")
    assert health["ok"] is True and health["checks"]["scheduler"]["ok"] is True


def test_demo_people_and_their_bills_survive_a_restart(embedded):
    assert embedded.cli("seed-demo").exit_code == 0
    partner_id = embedded.call("GET", "/api/mp/me", embedded.login("demo-partner"))["id"]
    waiting = [b for b in embedded.call("GET", "/_emulator/_sim/pay/ledger")["bills"]
               if b["state"] == "WAIT_USER_CONFIRM"]
    assert len(waiting) == 1

    embedded.stop()
    embedded.start()  # a new process: new in-process Redis, a new emulator read from the instance folder

    partner = embedded.login("demo-partner")
    assert embedded.call("GET", "/api/mp/me", partner)["id"] == partner_id
    mine = embedded.call("GET", "/api/mp/withdrawals", partner)["withdrawals"]
    [w] = [x for x in mine if x["state"] == "WAIT_USER_CONFIRM"]
    embedded.call("POST", "/_emulator/_sim/persons/demo-partner/merchant_transfer", json=w["confirm"])
    done = _eventually(lambda: embedded.call("GET", f"/api/mp/withdrawals/{w['id']}", partner),
                       lambda v: v["final"], "the seeded payout finished")
    assert done["state"] == "SUCCESS"
    again = embedded.cli("seed-demo")
    assert again.exit_code == 0 and "already present" in again.output and f"member #{partner_id}" in again.output
