"""Strict schema fields for request bodies, shared by every blueprint.

JSON bodies are taken literally: an integer is a JSON integer. Marshmallow's `Integer` would turn 150.9 into 150
and "100" into 100; these refuse both (and booleans, which Python counts as integers).

- `Int`: any integer in a JSON body (ids, counts, days, ranks); a wrong type is a `validation_error`.
- `Fen`: an amount of money in integer fen; `Bps`: a rate in basis points (1000 = 10 %). A value that is not a
  JSON integer answers 422 `amount_not_integer`, the code the shop webhook uses for the same mistake, never a
  truncated value and never "below minimum".
- `Text`: a human-facing string that must say something (a name, a label, a reason): surrounding whitespace is
  stripped and a blank value is refused whenever one is sent.

Query strings are text by nature: query schemas keep `apiflask.fields.Integer`."""
from __future__ import annotations

from apiflask.fields import Integer, String
from marshmallow import ValidationError

AMOUNT_NOT_INTEGER = "amount_not_integer"
MAX_FEN = 10 ** 12  # ten billion yuan, as the shop webhook: anything above is a unit mistake
MAX_BPS = 10_000

FEN_INVALID = "Amounts are integer fen: a JSON integer, not a decimal, a string or a boolean."
BPS_INVALID = "Rates are integer basis points (1000 = 10%): a JSON integer, not a decimal, a string or a boolean."
BLANK = "Must not be blank."

# The messages that make a validation error answer `amount_not_integer` (app/api/envelope.py).
AMOUNT_MESSAGES = frozenset({FEN_INVALID, BPS_INVALID})


class Int(Integer):
    """A JSON integer, nothing else: 1.5, 1.0, "1" and true are refused."""

    default_error_messages = {"invalid": "Not a valid integer: a JSON integer is required (not a decimal, a "
                                         "string or a boolean)."}

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _validated(self, value):
        if type(value) is not int:  # bool is a subclass of int; floats and strings are not integers here
            raise self.make_error("invalid", input=value)
        return value


class Fen(Int):
    """Integer fen, at most MAX_FEN in either direction."""

    default_error_messages = {"invalid": FEN_INVALID,
                              "too_large": f"Amounts are at most {MAX_FEN} fen."}

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {}).setdefault("description", "integer fen (1 yuan = 100)")
        super().__init__(**kwargs)

    def _validated(self, value):
        value = super()._validated(value)
        if abs(value) > MAX_FEN:
            raise self.make_error("too_large")
        return value


class Bps(Int):
    """Integer basis points, 0 to 10000 (validators may narrow it)."""

    default_error_messages = {"invalid": BPS_INVALID,
                              "range": f"Rates are basis points from 0 to {MAX_BPS}."}

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {}).setdefault("description", "basis points: 1000 = 10%")
        super().__init__(**kwargs)

    def _validated(self, value):
        value = super()._validated(value)
        if not 0 <= value <= MAX_BPS:
            raise self.make_error("range")
        return value


class Text(String):
    """A string that means something to a person: stripped, and refused when blank."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        text = text.strip()
        if not text:
            raise ValidationError(BLANK)
        return text


def is_amount_error(messages) -> bool:
    """Whether a validation error's messages (nested dicts and lists) include a Fen or Bps type error."""
    if isinstance(messages, dict):
        return any(is_amount_error(v) for v in messages.values())
    if isinstance(messages, (list, tuple)):
        return any(is_amount_error(v) for v in messages)
    return messages in AMOUNT_MESSAGES
