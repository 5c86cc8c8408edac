"""TEMPLATESENDJOBFINISH: WeChat's delivery report of a template message, verified by the callback (signature,
safe mode, dedupe) and recorded against the message it names."""
from __future__ import annotations

from app.notifications.service import record_template_report
from wechat.registry import register_push_handler


def _template_finished(session, message, _rt):
    try:
        msgid = int(message.id)
    except (TypeError, ValueError):
        return None
    record_template_report(session, message.source, msgid, message.status or "")
    return None


register_push_handler("templatesendjobfinish", _template_finished)
