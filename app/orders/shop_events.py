"""Parsing and validating shop order events. Pure: a dict in, a typed event out, or ValidationFailed.

Amounts must be JSON integers in fen: floats (even 100.0), strings, booleans and negatives are refused."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from app.errors import ValidationFailed

EVENTS = ("paid", "completed", "refunded")
BUYER_KEYS = ("unionid", "mini_openid", "oa_openid")
MAX_FEN = 10 ** 12  # ten billion yuan: anything above is a unit mistake, not an order
MAX_LINES = 500
MAX_QUANTITY = 1_000_000  # of one product on one line; the column is a 32-bit integer
CLOCK_SKEW = timedelta(minutes=10)


@dataclass(frozen=True)
class Line:
    product_id: str
    category: str
    quantity: int
    paid_fen: int


@dataclass(frozen=True)
class ShopEvent:
    event: str
    shop_order_id: str
    occurred_at: datetime
    buyer: dict | None = None  # paid: {unionid?, mini_openid?, oa_openid?, nickname?}
    lines: tuple[Line, ...] = ()
    refund_id: str | None = None
    amount_fen: int | None = None
    payer_openid: str | None = None  # paid: who paid at WeChat Pay (payer.openid), when the shop knows it

    @property
    def paid_fen(self) -> int:
        return sum(line.paid_fen for line in self.lines)


def _fail(message: str, code: str, **details):
    raise ValidationFailed(message, code=code, details=details)


def _ident(value, field: str, max_len: int = 64) -> str:
    if type(value) is int and value >= 0:
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        _fail(f"{field} must be a non-empty string of at most {max_len} characters.", "order_event_invalid",
              field=field)
    return value.strip()


def _fen(value, field: str, *, positive: bool = False) -> int:
    if type(value) is not int:
        _fail(f"{field} must be an integer number of fen (not a decimal, string or boolean).", "amount_not_integer",
              field=field)
    if value < 0 or (positive and value == 0) or value > MAX_FEN:
        _fail(f"{field} must be {'positive' if positive else 'zero or more'} and at most {MAX_FEN} fen.",
              "amount_out_of_range", field=field)
    return value


def _time(value, now: datetime) -> datetime:
    if value is None:
        return now
    if not isinstance(value, str):
        _fail("occurred_at must be an ISO 8601 time with a zone.", "order_event_invalid", field="occurred_at")
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        _fail("occurred_at must be an ISO 8601 time with a zone.", "order_event_invalid", field="occurred_at")
    if t.tzinfo is None:
        _fail("occurred_at needs a time zone (e.g. +08:00).", "order_event_invalid", field="occurred_at")
    if t.year < 2000:  # also keeps astimezone() from overflowing on year 1 with a positive offset
        _fail("occurred_at is implausibly old.", "order_event_invalid", field="occurred_at")
    if t > now + CLOCK_SKEW:
        _fail("occurred_at is in the future.", "order_event_invalid", field="occurred_at")
    return t.astimezone(timezone.utc)


def parse_shop_event(data, now: datetime) -> ShopEvent:
    if not isinstance(data, dict):
        _fail("The event must be a JSON object.", "order_event_invalid")
    kind = data.get("event")
    if kind not in EVENTS:
        _fail("event must be paid, completed or refunded.", "order_event_invalid", field="event")
    shop_order_id = _ident(data.get("order_id"), "order_id")
    occurred_at = _time(data.get("occurred_at"), now)
    if kind == "completed":
        return ShopEvent(kind, shop_order_id, occurred_at)
    if kind == "refunded":
        return ShopEvent(kind, shop_order_id, occurred_at, refund_id=_ident(data.get("refund_id"), "refund_id"),
                          amount_fen=_fen(data.get("amount_fen"), "amount_fen", positive=True))
    buyer = data.get("buyer")
    if not isinstance(buyer, dict) or not any(isinstance(buyer.get(k), str) and buyer.get(k) for k in BUYER_KEYS):
        _fail("buyer needs a unionid, mini_openid or oa_openid.", "buyer_missing", field="buyer")
    clean_buyer = {k: _ident(buyer[k], f"buyer.{k}", 128) for k in BUYER_KEYS if buyer.get(k)}
    nickname = buyer.get("nickname")
    clean_buyer["nickname"] = nickname[:64] if isinstance(nickname, str) else ""
    raw_lines = data.get("lines")
    if not isinstance(raw_lines, list) or not 1 <= len(raw_lines) <= MAX_LINES:
        _fail(f"lines must be a list of 1 to {MAX_LINES} items.", "order_event_invalid", field="lines")
    lines = []
    for i, item in enumerate(raw_lines):
        if not isinstance(item, dict):
            _fail("Each line must be an object.", "order_event_invalid", field=f"lines[{i}]")
        quantity = item.get("quantity")
        if type(quantity) is not int or not 1 <= quantity <= MAX_QUANTITY:
            _fail(f"quantity must be a positive integer of at most {MAX_QUANTITY}.", "order_event_invalid",
                  field=f"lines[{i}].quantity")
        category = item.get("category") or ""
        if not isinstance(category, str) or len(category) > 64:
            _fail("category must be a string of at most 64 characters.", "order_event_invalid",
                  field=f"lines[{i}].category")
        lines.append(Line(_ident(item.get("product_id"), f"lines[{i}].product_id"), category, quantity,
                          _fen(item.get("paid_fen"), f"lines[{i}].paid_fen")))
    payer = data.get("payer_openid")
    payer = _ident(payer, "payer_openid", 128) if payer not in (None, "") else None
    event = ShopEvent(kind, shop_order_id, occurred_at, buyer=clean_buyer, lines=tuple(lines), payer_openid=payer)
    if event.paid_fen > MAX_FEN:
        _fail("The order total is out of range.", "amount_out_of_range", field="lines")
    return event
