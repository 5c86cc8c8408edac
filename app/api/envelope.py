"""One JSON error shape for the whole API: {code, message, status, details}.

Every failure (domain errors, validation, unknown routes, wrong methods, malformed or oversized bodies,
and anything unexpected) answers with it."""
from __future__ import annotations

import logging

from apiflask import APIFlask, HTTPError
from flask import jsonify, request
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException

from app.api.fields import AMOUNT_NOT_INTEGER, is_amount_error
from app.errors import DomainError

log = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    502: "upstream_error",
    503: "unavailable",
}


def error_response(status: int, code: str, message: str, details: dict | None = None):
    resp = jsonify({"code": code, "message": message, "status": status, "details": details or {}})
    resp.status_code = status
    return resp


def _malformed_json() -> bool:
    return request.is_json and bool(request.get_data(cache=True)) and request.get_json(silent=True) is None


def install(app: APIFlask) -> None:
    @app.error_processor
    def _apiflask_error(error: HTTPError):
        details = error.detail or {}
        code = (error.extra_data or {}).get("code") or CODES.get(error.status_code, "error")
        message = error.message
        if error.status_code == 422 and is_amount_error(details):
            code, message = AMOUNT_NOT_INTEGER, "Amounts and rates are JSON integers (fen, basis points); see details."
        elif error.status_code == 422:
            message = "Some fields are missing or invalid; see details."
        elif error.status_code == 400 and _malformed_json():
            code, message = "malformed_json", "The request body is not valid JSON."
        resp = error_response(error.status_code, code, message,
                              details if isinstance(details, dict) else {"detail": details})
        if error.headers:
            resp.headers.update(error.headers)
        return resp

    @app.errorhandler(DomainError)
    def _domain_error(err: DomainError):
        return error_response(err.status, err.code, err.message, err.details)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        status = err.code or 500
        if status == 400 and _malformed_json():
            return error_response(400, "malformed_json", "The request body is not valid JSON.")
        return error_response(status, CODES.get(status, "error"), err.description or err.name)

    @app.errorhandler(DataError)
    def _data_error(err: DataError):
        # A value the database cannot hold (an id beyond BIGINT, a date out of range) is the caller's input.
        from app.api.web import db

        db().rollback()
        return error_response(422, "value_out_of_range", "A value in the request is out of range.")

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        if isinstance(err, HTTPException):
            return _http_error(err)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Something went wrong on our side; it has been logged.")
