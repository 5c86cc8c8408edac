"""The shop's signed server-to-server webhook: paid, completed and refunded orders."""
from __future__ import annotations

import json

from apiflask import APIBlueprint
from flask import request

from app.api.web import db, runtime
from app.errors import ValidationFailed
from app.orders.service import ingest_order_event
from app.orders.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, refuse_if_processed, remember_processed, verify

bp = APIBlueprint("hooks_orders", __name__, tag="shop webhook")


def _strict_json(raw: bytes):
    def no_floats(value):  # amounts are integer fen; 100.0 is refused, not truncated
        raise ValidationFailed("Amounts are integer fen; decimals are refused.", code="amount_not_integer")

    try:
        return json.loads(raw, parse_float=no_floats, parse_constant=no_floats)
    except ValueError:
        raise ValidationFailed("The body is not valid JSON.", code="malformed_json") from None


@bp.post("/hooks/shop/orders")
@bp.doc(summary="Shop order event (paid | completed | refunded), HMAC-signed",
        description=(f"Headers: `{TIMESTAMP_HEADER}` (Unix seconds) and `{SIGNATURE_HEADER}` = hex "
                     "HMAC-SHA256(SHOP_WEBHOOK_SECRET, \"<timestamp>.<raw body>\"). Body: "
                     "`{event, order_id, occurred_at?, buyer{unionid|mini_openid|oa_openid, nickname?}, "
                     "lines[{product_id, category, quantity, paid_fen}]}` for paid; `{event, order_id, "
                     "occurred_at?}` for completed; `{event, order_id, refund_id, amount_fen, occurred_at?}` for "
                     "refunded. Replays answer 200 with status `duplicate`; a completed before its paid answers "
                     "202 `parked`. See docs/ledger.md."),
        responses={200: "applied or duplicate", 202: "parked until the paid event arrives",
                   401: "missing, stale or wrong signature", 404: "refund for an unknown order",
                   409: "replayed request or conflicting event", 422: "invalid event"})
def shop_order_event():
    raw = request.get_data(cache=True)
    rt = runtime()
    signature = verify(rt.settings.shop_webhook_secret, request.headers.get(TIMESTAMP_HEADER),
                       request.headers.get(SIGNATURE_HEADER), raw)
    nonce = refuse_if_processed(rt.redis, signature)
    result = ingest_order_event(db(), _strict_json(raw))  # idempotent: a racing twin answers "duplicate"
    db().commit()
    remember_processed(rt.redis, nonce)
    return result, (202 if result["status"] == "parked" else 200)
