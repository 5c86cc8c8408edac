"""Fitting values to WeChat's field types (pure). A subscribe-message key names its type with a number after it
("thing1", "amount2"); a value WeChat would refuse for length or form is cut or reformatted here, never sent.

| type | WeChat's rule | here |
|---|---|---|
| thing | 20 characters | cut to 19 + "…" |
| phrase | 5 characters, words only (no digits or symbols) | digits and symbols dropped, cut to 5 |
| name | 10 characters | cut to 10 |
| amount | a number with up to 2 decimals, optional ¥ / 元 | integer fen -> "12.30元" |
| number | digits, 32 | integer -> its digits |
| character_string | letters, digits, symbols, 32 | other characters dropped, cut to 32 |
| letter | letters, 32 | |
| time / date | a date (and time) | a UTC datetime or ISO string -> China time "2026-12-01 18:05" / "2026-12-01" |
| (untyped: first, keyword1, remark) | 200 characters | cut |

An empty value is refused by WeChat, so it becomes a placeholder ("-", or "0" for numbers)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8))
LIMITS = {"thing": 20, "phrase": 5, "name": 10, "character_string": 32, "number": 32, "letter": 32, "symbol": 5,
          "amount": 16, "time": 32, "date": 32, "phone_number": 17, "car_number": 8}
UNTYPED_LIMIT = 200
_NOT_CHARSTRING = re.compile(r"[^0-9A-Za-z_\-.:@#/+]")
_NOT_WORD = re.compile(r"[\W\d_]", re.UNICODE)


def field_type(key: str) -> str:
    return key.rstrip("0123456789")


def yuan(fen: int) -> str:
    """Integer fen as yuan with two decimals, from integers only: 4560 -> "45.60", -5 -> "-0.05"."""
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def _cut(text: str, limit: int, ellipsis: bool = False) -> str:
    if len(text) <= limit:
        return text
    return text[:limit - 1] + "…" if ellipsis else text[:limit]


def _moment(value) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


def fit(key: str, value) -> str:
    """The string WeChat accepts for `value` in the field `key`."""
    kind = field_type(key)
    if kind == "amount":
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{yuan(value)}元"
        text = re.sub(r"[^0-9.\-]", "", str(value or ""))
        return f"{text}元" if re.fullmatch(r"-?\d{1,9}(\.\d{1,2})?", text) else "0.00元"
    if kind in ("time", "date"):
        when = _moment(value)
        if when is None:
            return "-" if not value else _cut(str(value), LIMITS[kind])
        local = when.astimezone(CHINA)
        return local.strftime("%Y-%m-%d %H:%M" if kind == "time" else "%Y-%m-%d")
    text = "" if value is None else str(value)
    if kind == "number":
        digits = re.sub(r"[^0-9]", "", text)
        return _cut(("-" if text.startswith("-") and digits else "") + (digits or "0"), LIMITS["number"])
    if kind == "character_string":
        return _cut(_NOT_CHARSTRING.sub("", text), LIMITS[kind]) or "-"
    if kind == "letter":
        return _cut(re.sub(r"[^A-Za-z]", "", text), LIMITS[kind]) or "x"
    if kind == "phrase":
        return _cut(_NOT_WORD.sub("", text), LIMITS[kind]) or "通知"
    text = " ".join(text.split())  # no line breaks or runs of spaces in a one-line field
    if kind in ("thing", "name"):
        return _cut(text, LIMITS[kind], ellipsis=kind == "thing") or "-"
    limit = LIMITS.get(kind, UNTYPED_LIMIT)
    return _cut(text, limit) or "-"


def build_data(fields: dict, values: dict) -> dict:
    """WeChat's `data`: {key: {"value": fitted}} for each mapped key (key -> value name in `values`)."""
    return {key: {"value": fit(key, values.get(name))} for key, name in fields.items()}
