"""WeChat Pay v3 merchant transfer (api.mch.weixin.qq.com/v3/fund-app/mch-transfer/...)."""
from __future__ import annotations

import json

from flask import Blueprint, request

from wechat.emulator.common import emu, guarded
from wechat.emulator.paydesk import PayErr

bp = Blueprint("pay", __name__)
BASE = "/v3/fund-app/mch-transfer/transfer-bills"


@bp.errorhandler(PayErr)
def _err(e: PayErr):
    return emu().pay.signed_json({"code": e.code, "message": e.message}, e.status)


def _verified() -> bytes:
    body = request.get_data()
    path_qs = request.full_path.rstrip("?") if request.query_string else request.path
    # DispatcherMiddleware moves the mount prefix into SCRIPT_NAME; the client signed the full path.
    emu().pay.verify_request(request.method, request.script_root + path_qs, request.headers, body)
    return body


@bp.post(BASE)
@guarded("pay.create")
def create():
    body = _verified()
    try:
        data = json.loads(body)
    except ValueError:
        raise PayErr(400, "PARAM_ERROR", "请求体不是合法的JSON") from None
    e = emu()
    return e.pay.signed_json(e.pay.create(e.world, data, request.headers.get("Wechatpay-Serial")))


@bp.get(f"{BASE}/out-bill-no/<out_bill_no>")
@guarded("pay.query")
def query(out_bill_no):
    _verified()
    return emu().pay.signed_json(emu().pay.query(out_bill_no=out_bill_no))


@bp.get(f"{BASE}/transfer-bill-no/<transfer_bill_no>")
@guarded("pay.query")
def query_by_transfer_no(transfer_bill_no):
    _verified()
    return emu().pay.signed_json(emu().pay.query(transfer_bill_no=transfer_bill_no))


@bp.post(f"{BASE}/out-bill-no/<out_bill_no>/cancel")
@guarded("pay.cancel")
def cancel(out_bill_no):
    _verified()
    return emu().pay.signed_json(emu().pay.cancel(out_bill_no))
