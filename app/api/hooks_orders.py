"""The shop's signed server-to-server webhook: paid, completed and refunded orders."""
from __future__ import annotations

from sqlalchemy.exc import OperationalError

from apiflask import APIBlueprint, Schema
from apiflask.fields import Dict, List, String
from flask import request

from app.api import json_body
from app.api.web import db, runtime
from app.api.fields import AMOUNT_NOT_INTEGER
from app.api.responses import ok
from app.errors import ValidationFailed
from app.orders.service import MAX_BATCH, ingest_order_event, ingest_order_events
from app.orders.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, refuse_if_processed, remember_processed, verify

bp = APIBlueprint("hooks_orders", __name__, tag="shop webhook")


class ShopResultOut(Schema):
    status = String(metadata={"description": "one event: applied, duplicate or parked (with what it did: "
                                             "order_id, commissions created or reversed, ...)"})
    results = List(Dict(), metadata={"description": "a batch: one result per event, in order; `rejected` ones "
                                                    "carry `error` {code, message, status, details}"})


def _strict_json(raw: bytes):
    """The body as JSON (400 `malformed_json` or `json_too_deep`, as everywhere in the API); a decimal
    anywhere is refused, not truncated: amounts are integer fen."""
    def no_floats(value):
        raise ValidationFailed("Amounts are integer fen; decimals are refused.", code=AMOUNT_NOT_INTEGER)

    return json_body.load(raw, parse_float=no_floats, parse_constant=no_floats)


@bp.post("/hooks/shop/orders")
@json_body.reads_raw_json  # the signature is checked before the body is read
@bp.doc(summary="Shop order events (paid | completed | refunded), one or a batch, HMAC-signed",
        description=(f"Headers: `{TIMESTAMP_HEADER}` (Unix seconds) and `{SIGNATURE_HEADER}` = hex "
                     "HMAC-SHA256(SHOP_WEBHOOK_SECRET, \"<timestamp>.<raw body>\"). Body: one event, "
                     "`{event, order_id, occurred_at?, buyer{unionid|mini_openid|oa_openid, nickname?}, "
                     "lines[{product_id, category, quantity, paid_fen}], payer_openid?}` for paid (payer_openid: "
                     "who paid at WeChat Pay, when not the buyer); `{event, order_id, occurred_at?}` for completed; "
                     "`{event, order_id, refund_id, amount_fen, occurred_at?}` for "
                     "refunded. Replays answer 200 with status `duplicate`; a completed before its paid answers "
                     f"202 `parked`. Or a batch: `{{\"events\": [event, ...]}}` with 1 to {MAX_BATCH} events, "
                     "applied in one transaction (all `paid` first, then the others in order) and answered 200 "
                     "with `{results: [...]}`, one per event: its status, or `rejected` with its `error` "
                     "`{code, message, status, details}` (a rejected event changes nothing; the others apply). "
                     "See docs/ledger.md."),
        responses=ok("applied or duplicate (or a batch's per-event results)", ShopResultOut)
        | ok("parked until the paid event arrives", ShopResultOut, 202)
        | {400: "the body is not valid JSON (`malformed_json`) or nests too deep (`json_too_deep`)",
           401: "missing, stale or wrong signature", 404: "refund for an unknown order",
           409: "replayed request or conflicting event", 422: "invalid event or batch"})
def shop_order_event():
    raw = request.get_data(cache=True)
    rt = runtime()
    signature = verify(rt.settings.shop_webhook_secret, request.headers.get(TIMESTAMP_HEADER),
                       request.headers.get(SIGNATURE_HEADER), raw)
    nonce = refuse_if_processed(rt.redis, signature)
    body = _strict_json(raw)
    batch = isinstance(body, dict) and "events" in body and "event" not in body
    for attempt in range(3):
        try:
            # idempotent: a racing twin answers "duplicate", so a retry after a deadlock is safe
            result = ingest_order_events(db(), body["events"]) if batch else ingest_order_event(db(), body)
            db().commit()
            break
        except OperationalError as err:
            db().rollback()
            if attempt == 2 or getattr(err.orig, "sqlstate", None) not in _RETRYABLE:
                raise
    remember_processed(rt.redis, nonce)
    if batch:
        return {"results": result}, 200
    return result, (202 if result["status"] == "parked" else 200)


# deadlock_detected, serialization_failure: PostgreSQL aborted this transaction to let a racing one through
_RETRYABLE = {"40P01", "40001"}
