"""JSON request bodies are read safely before any handler sees them.

Python's json module recurses once per nesting level: `[` repeated 100,000 times is a RecursionError (a 500)
rather than a refusal, and a number of more than 4,300 digits is a ValueError that webargs does not expect. So
every JSON body is checked here first, once, and refused with the error envelope:

- nested deeper than MAX_DEPTH: 400 `json_too_deep`;
- not valid JSON (syntax, encoding, an oversized number): 400 `malformed_json`, in the API and in the shop
  webhook alike.

Views that read their raw body themselves (the signed shop webhook: the signature comes first) are marked with
`@reads_raw_json` and call `load(raw)` after their own checks."""
from __future__ import annotations

import json
import re
from itertools import accumulate

from apiflask import APIFlask
from flask import request

from app.errors import DomainError

MAX_DEPTH = 32  # the deepest body we take (a poster spec or a webhook batch) nests about 6 levels

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = re.compile(rb"[^\[\]{}]+")


class MalformedJson(DomainError):
    status = 400
    code = "malformed_json"

    def __init__(self):
        super().__init__("The request body is not valid JSON.")


class JsonTooDeep(DomainError):
    status = 400
    code = "json_too_deep"

    def __init__(self):
        super().__init__(f"The request body nests deeper than {MAX_DEPTH} levels.", details={"max_depth": MAX_DEPTH})


def nesting_depth_exceeds(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects nest deeper than `limit` anywhere in `raw` (brackets inside strings do not
    count). Cheap for ordinary bodies: a body with fewer brackets than the limit is not even scanned."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    brackets = _NOT_BRACKETS.sub(b"", _STRINGS.sub(b"", raw))
    return max(accumulate(1 if b in b"[{" else -1 for b in brackets), default=0) > limit


def load(raw: bytes, **kwargs):
    """json.loads with a depth bound; raises JsonTooDeep or MalformedJson (DomainErrors: 400 in the envelope).
    Keyword arguments go to json.loads (the webhook refuses floats with parse_float)."""
    if nesting_depth_exceeds(raw):
        raise JsonTooDeep()
    try:
        return json.loads(raw, **kwargs)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, a number beyond 4,300 digits
        raise MalformedJson() from None


def reads_raw_json(fn):
    """Mark a view that parses its own raw body with `load` (so the check below leaves it alone)."""
    fn.reads_raw_json = True
    return fn


def install(app: APIFlask) -> None:
    @app.before_request
    def _check_json_body():
        if not request.environ.get("CONTENT_TYPE"):  # no JSON body without a content type (most GETs)
            return
        if not request.is_json or request.content_length == 0:
            return
        view = app.view_functions.get(request.endpoint)
        if view is None or getattr(view, "reads_raw_json", False):
            return
        raw = request.get_data(cache=True)
        if raw.strip():
            load(raw)
