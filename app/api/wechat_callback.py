"""/wechat/callback: WeChat's service-account message push (GET URL check, POST messages and events).

Thin: verify and parse (wechat.push), claim the delivery atomically so WeChat's retries run handlers once,
run the registered handlers (light DB work only: WeChat gives up after 5 s), commit once, reply."""
from __future__ import annotations

import logging

from apiflask import APIBlueprint
from flask import Response, request

from app.api.web import lazy_db, opened_db, runtime
from wechat import push
from wechat.errors import PushRejected
from wechat.registry import handlers_claim_delivery, push_handlers, register_push_handler  # noqa: F401 - re-exported

log = logging.getLogger(__name__)
bp = APIBlueprint("wechat_callback", __name__, enable_openapi=False)


def _text(body: str, status: int = 200) -> Response:
    """A plain-text answer ("success", "forbidden", the URL check's echostr): never markup, whatever it holds."""
    resp = Response(body, status=status, mimetype="text/plain")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def _xml(body: str) -> Response:
    """A passive reply: XML when there is one, else WeChat's plain "success"."""
    return Response(body, mimetype="application/xml") if body.startswith("<") else _text(body)


@bp.get("/wechat/callback")
def verify_url():
    try:
        return _text(push.check_url(runtime().settings, request.args))
    except PushRejected as exc:
        log.warning("wechat url check rejected: %s", exc)
        return _text("forbidden", 403)


@bp.post("/wechat/callback")
def receive():
    rt = runtime()
    try:
        message = push.open_push(rt.settings, request.args, request.get_data(cache=False))
    except PushRejected as exc:
        log.warning("wechat push rejected: %s", exc)
        return _text("forbidden", 403)
    handlers = push_handlers(push.handler_key(message))
    message.delivery_claimed = not handlers_claim_delivery(handlers, rt)
    if message.delivery_claimed and not push.claim_delivery(rt.redis, message):
        return _text("success")  # WeChat's retry of a delivery we already took
    reply = None
    try:
        for handler in handlers:
            answer = handler(lazy_db, message, rt)  # text, or {"articles": [...]} for news
            if reply is None and answer:
                reply = answer
        session = opened_db()  # stream-mode scans never open it
        if session is not None and session.in_transaction():
            session.commit()
    except Exception:
        session = opened_db()
        if session is not None:
            session.rollback()
        if message.delivery_claimed:
            push.release_delivery(rt.redis, message)
        log.exception("wechat push handler failed for %s", push.handler_key(message))
        return _text("error", 500)
    return _xml(push.render_reply(rt.settings, message, reply, request.args))
