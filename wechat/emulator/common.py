"""Shared helpers for the emulator's blueprints: the emulator handle and fault-injection wrapper."""
from __future__ import annotations

import json
import time
from functools import wraps

from flask import Response, current_app, jsonify


def emu():
    return current_app.extensions["wechat_emulator"]


def wx_json(data: dict, status: int = 200) -> Response:
    return Response(json.dumps(data, ensure_ascii=False), status=status, mimetype="application/json")


def _fault_response(op: str, error: str) -> Response:
    if error == "SYSTEM_ERROR":
        if op.startswith("pay."):
            return emu().pay.signed_json({"code": "SYSTEM_ERROR", "message": "系统错误"}, 500)
        return wx_json({"errcode": -1, "errmsg": "system error"})
    return Response(f"<html><body>{error} emulated upstream error</body></html>", status=int(error),
                    mimetype="text/html")


def guarded(op: str):
    """Apply the fault rules that match `op` around a route."""

    def deco(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            fired = emu().faults.take(op)
            for f in fired:
                if f.kind == "latency":
                    time.sleep(f.seconds)
            for f in fired:
                if f.phase == "before" and f.kind == "timeout":
                    time.sleep(f.seconds)
                    return Response("gateway timeout", status=504)
                if f.phase == "before" and f.kind == "error":
                    return _fault_response(op, f.error)
            resp = fn(*args, **kwargs)
            for f in fired:
                if f.phase == "after" and f.kind == "timeout":
                    time.sleep(f.seconds)
                if f.phase == "after" and f.kind == "error":
                    return _fault_response(op, f.error)
            return resp

        return wrapper

    return deco


def body_json(request) -> dict:
    try:
        data = json.loads(request.get_data() or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


__all__ = ["emu", "wx_json", "guarded", "body_json", "jsonify"]
