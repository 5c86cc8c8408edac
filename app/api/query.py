"""Query strings validated once per process: `@bp.input(Schema, location="query")`, documented the same way,
with each distinct query string's validated arguments kept (a board polled by thousands of members asks the same
few). Validation errors are not kept: each bad query is refused again, as `@bp.input` refuses it."""
from __future__ import annotations

from functools import lru_cache, wraps

from apiflask import APIBlueprint
from apiflask.schema_adapters.marshmallow import parser
from flask import request

KEPT = 1024  # distinct query strings remembered per endpoint


def cached_query(bp: APIBlueprint, schema_cls, arg_name: str = "query"):
    schema = schema_cls()

    @lru_cache(maxsize=KEPT)
    def parse(raw: bytes) -> dict:  # called for the current request, whose query string is `raw`
        return parser.parse(schema, request, location="query")

    def decorate(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            kwargs[arg_name] = dict(parse(request.query_string))  # a copy: the handler may not change the kept one
            return fn(*args, **kwargs)

        # Documented by @bp.input, which notes the query's schema in the view's `_spec` (a dict shared with the
        # wrapper it returns); that wrapper is not served, as it would parse the query string once more.
        wrapper.__dict__.setdefault("_spec", {})
        bp.input(schema_cls, location="query", arg_name=arg_name, validation=False)(wrapper)
        return wrapper

    return decorate
