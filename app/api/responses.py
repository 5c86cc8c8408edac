"""Documenting success answers in the OpenAPI description without reshaping them.

`@bp.output(Schema)` also dumps the handler's return value through the schema (dropping any key it does not
declare); these helpers only describe: `@bp.doc(responses=ok("the withdrawal", WithdrawalOut, 201))`.
tests/test_openapi_responses.py checks that every operation documents its success this way or with `output`."""
from __future__ import annotations

from functools import cache

import orjson
from apiflask import Schema
from apiflask.fields import Boolean, List, Nested
from flask import Response, current_app


def ok(description: str, schema=None, status: int = 200, content_type: str = "application/json") -> dict:
    """{status: response}: a success `description` and, for JSON, its `schema` (a marshmallow schema class);
    other content types are documented as binary."""
    response: dict = {"description": description}
    if content_type != "application/json":
        response["content"] = {content_type: {"schema": {"type": "string", "format": "binary"}}}
    elif schema is not None:
        response["content"] = {content_type: {"schema": schema}}
    return {status: response}


def redirects(description: str) -> dict:
    return {302: {"description": description, "headers": {"Location": {"schema": {"type": "string"}}}}}


@cache
def list_of(schema: type[Schema], key: str = "items") -> type[Schema]:
    """The schema of `{key: [item, ...]}`, named after the item's schema (`WithdrawalOut` -> `WithdrawalList`)."""
    return Schema.from_dict({key: List(Nested(schema))}, name=schema.__name__.removesuffix("Out") + "List")


class OkOut(Schema):
    ok = Boolean()


def fast_json(data) -> Response:
    """`data` as a JSON answer encoded by orjson, for the hot reads: a board's fifty rows encode in a tenth of the
    standard library's time. Keys keep their order; text stays UTF-8, as JSON_AS_ASCII=False does."""
    return current_app.response_class(orjson.dumps(data), mimetype="application/json")
