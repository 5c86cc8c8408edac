"""/_sim: simulate people and control faults (demo and test back door; not part of WeChat)."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from wechat.emulator.common import body_json, emu
from wechat.emulator.paydesk import PayErr

bp = Blueprint("sim", __name__, url_prefix="/_sim")


@bp.errorhandler(KeyError)
def _missing(e):
    return jsonify({"error": str(e.args[0] if e.args else e)}), 404


@bp.errorhandler(ValueError)
def _bad(e):
    return jsonify({"error": str(e)}), 400


@bp.errorhandler(PayErr)
def _pay(e: PayErr):
    return jsonify({"code": e.code, "message": e.message}), e.status


@bp.post("/reset")
def reset():
    emu().reset()
    return jsonify({"ok": True})


@bp.post("/persons")
def create_person():
    b = body_json(request)
    allowed = {"nickname", "headimgurl", "unionid", "phone", "snapshot", "following", "pid", "real_name"}
    return jsonify(emu().create_person(**{k: v for k, v in b.items() if k in allowed}))


@bp.get("/persons/<ref>")
def get_person(ref):
    return jsonify(emu().person(ref))


@bp.post("/oauth/login")
def oauth_login():
    """Who the OAuth authorize page treats as the logged-in WeChat user (null: a new person each time)."""
    ref = body_json(request).get("person")
    emu().world.current_person = emu().world.person(ref).pid if ref else None
    return jsonify({"ok": True})


@bp.post("/persons/<ref>/oauth_code")
def oauth_code(ref):
    b = body_json(request)
    return jsonify({"code": emu().oauth_code(ref, b.get("scope", "snsapi_base"), bool(b.get("snapshot")))})


@bp.post("/persons/<ref>/wx_login")
def wx_login(ref):
    return jsonify({"code": emu().wx_login(ref)})


@bp.post("/persons/<ref>/open_miniprogram")
def open_miniprogram(ref):
    b = body_json(request)
    return jsonify(emu().open_miniprogram(ref, b.get("scene"), b.get("page", "pages/index/index")))


@bp.post("/persons/<ref>/phone_code")
def phone_code(ref):
    return jsonify({"code": emu().phone_code(ref)})


@bp.post("/persons/<ref>/consent")
def consent(ref):
    b = body_json(request)
    emu().grant_consent(ref, b["template_id"], int(b.get("count", 1)))
    return jsonify(emu().person(ref))


@bp.post("/persons/<ref>/subscribe_request")
def subscribe_request(ref):
    """The person answers wx.requestSubscribeMessage: {"choices": {template_id: "accept"|"reject"|"ban"}}.
    Returns what the mini-program's success callback receives (report it to POST /api/mp/subscriptions)."""
    return jsonify(emu().request_subscribe(ref, body_json(request).get("choices") or {}))


@bp.post("/persons/<ref>/block_templates")
def block_templates(ref):
    """The person refuses the account's template messages: sends succeed, delivery reports say failed."""
    emu().world.person(ref).blocks_templates = bool(body_json(request).get("block", True))
    return jsonify(emu().person(ref))


@bp.post("/templates")
def add_template():
    """Pick a template: {"template_id", "kind": "subscribe"|"template", "fields": ["thing1", "amount2", ...]}.
    Once any template is registered, sends with another id answer 40037."""
    b = body_json(request)
    return jsonify(emu().world.add_template(b["template_id"], b["kind"], b.get("fields") or []))


@bp.post("/messages/reports")
def template_reports():
    """Push the TEMPLATESENDJOBFINISH events of template messages sent so far."""
    return jsonify(emu().push_template_reports())


@bp.post("/persons/<ref>/scan")
def scan(ref):
    """Scan a service-account QR code: {"ticket": ...} or {"scene": ...} (the scene the code carries)."""
    b = body_json(request)
    return jsonify(emu().scan(ref, ticket=b.get("ticket"), scene=b.get("scene")))


@bp.post("/persons/<ref>/merchant_transfer")
def merchant_transfer(ref):
    """The person confirms a transfer in WeChat, as wx.requestMerchantTransfer does: the body is the `confirm`
    object of a withdrawal awaiting confirmation ({"mchId", "appId", "package"})."""
    b = body_json(request)
    person = emu().world.person(ref)
    appid = b.get("appId") or emu().world.mini["appid"]
    return jsonify(emu().pay.confirm_package(person.openid(appid), appid, b.get("mchId"), b.get("package")))


@bp.post("/persons/<ref>/follow")
def follow(ref):
    return jsonify(emu().follow(ref))


@bp.post("/persons/<ref>/unsubscribe")
def unsubscribe(ref):
    return jsonify(emu().unsubscribe(ref))


@bp.post("/persons/<ref>/text")
def text(ref):
    return jsonify(emu().send_text(ref, body_json(request).get("content", "")))


@bp.get("/messages")
def messages():
    """Messages sent (subscribe and template), oldest first; ?pid= or ?kind= narrow them."""
    pid, kind = request.args.get("pid"), request.args.get("kind")
    return jsonify([m for m in emu().world.messages
                    if (not pid or m["pid"] == pid) and (not kind or m["kind"] == kind)])


@bp.get("/pushes")
def pushes():
    return jsonify(emu().world.pushes)


@bp.post("/tokens/expire")
def expire_tokens():
    emu().world.expire_tokens(body_json(request).get("appid"))
    return jsonify({"ok": True})


@bp.post("/tokens/revoke")
def revoke_tokens():
    emu().world.revoke_tokens(body_json(request).get("appid"))
    return jsonify({"ok": True})


@bp.get("/faults")
def faults():
    return jsonify(emu().faults.describe())


@bp.post("/faults")
def add_fault():
    b = body_json(request)
    allowed = {"target", "kind", "seconds", "error", "phase", "count", "rate"}
    emu().faults.add(**{k: v for k, v in b.items() if k in allowed})
    return jsonify(emu().faults.describe())


@bp.delete("/faults")
def clear_faults():
    emu().faults.clear()
    return jsonify({"ok": True})


@bp.post("/faults/notify")
def notify_fault():
    b = body_json(request)
    emu().faults.add_notify(b["mode"], int(b.get("count", 1)))
    return jsonify(emu().faults.describe())


@bp.post("/faults/push")
def push_fault():
    emu().faults.push_repeat = int(body_json(request).get("repeat", 3))
    return jsonify(emu().faults.describe())


@bp.get("/pay/ledger")
def ledger():
    return jsonify(emu().pay.ledger())


@bp.post("/pay/settings")
def pay_settings():
    b = body_json(request)
    with emu().pay.lock:
        if "balance" in b:
            emu().pay.balance = int(b["balance"])
        if "auto_confirm" in b:
            emu().pay.auto_confirm = bool(b["auto_confirm"])
        if "hold_cancels" in b:
            emu().pay.hold_cancels = bool(b["hold_cancels"])
    return jsonify(emu().pay.ledger())


@bp.post("/pay/bills/<out_bill_no>/<outcome>")
def settle(out_bill_no, outcome):
    if outcome not in ("confirm", "ignore", "fail", "cancelled"):
        return jsonify({"error": "outcome is confirm, ignore, fail or cancelled"}), 404
    b = body_json(request)
    return jsonify(emu().pay.settle(out_bill_no, outcome, b.get("fail_reason", "PAYEE_ACCOUNT_ABNORMAL")))


@bp.get("/pay/notifications")
def notifications():
    return jsonify(emu().pay.notifications)


@bp.post("/pay/notifications/flush")
def flush():
    return jsonify({"released": emu().pay.flush_held()})


@bp.post("/pay/notifications/wait")
def wait():
    return jsonify({"idle": emu().pay.wait_idle(float(body_json(request).get("timeout", 30)))})
