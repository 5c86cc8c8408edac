"""Notification tests: members who are emulator persons, templates picked in the emulator and configured for
every moment, no quiet hours and no pacing unless a test says so."""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app.events import record
from app.identity import tokens
from app.notifications.models import NotificationMessage
from app.notifications.moments import MOMENTS
from app.notifications.service import record_subscription_results, save_moment_config
from tests.factories import make_member


def sub_tpl(moment: str) -> str:
    return f"SUB_{moment.upper()}"


def oa_tpl(moment: str) -> str:
    return f"TPL_{moment.upper()}"


def tune_notify(rt, **changes) -> None:
    rt.settings = rt.settings.with_(notify=replace(rt.settings.notify, **changes))


@pytest.fixture
def nw(rt, session, emulator, settings):
    """The notification world: `.person(following=...)` -> (member, emulator person); `.grant(member, moment)`;
    `.event(name, **data)` records and commits; `.messages(member)` the rows; `.sent(person)` what WeChat got."""
    tune_notify(rt, quiet_start=0, quiet_end=0, rate_per_s=10_000.0, rate_burst=1000, retry_base=0.0)
    for name, m in MOMENTS.items():
        emulator.sim("templates", template_id=sub_tpl(name), kind="subscribe", fields=list(m.subscribe_fields))
        emulator.sim("templates", template_id=oa_tpl(name), kind="template", fields=list(m.template_fields))
        save_moment_config(session, name, {"subscribe": {"template_id": sub_tpl(name)},
                                           "template": {"template_id": oa_tpl(name)}})
    session.commit()

    def person(following: bool = False, nickname: str = "张三丰"):
        p = emulator.sim("persons", following=following)
        member = make_member(session, nickname, mini_openid=p["openids"][settings.wechat_miniapp_id],
                             oa_openid=p["openids"][settings.wechat_app_id])
        session.commit()
        return member, p

    def grant(member, p, moment: str, choice: str = "accept"):
        """The person answers wx.requestSubscribeMessage in WeChat and the mini-program reports it."""
        answer = emulator.sim(f"persons/{p['pid']}/subscribe_request", choices={sub_tpl(moment): choice})
        record_subscription_results(session, member.id, {k: v for k, v in answer.items() if k != "errMsg"})
        session.commit()

    def event(name: str, **data) -> int:
        event_id = record(session, name, **data)
        session.commit()
        return event_id

    def messages(member, moments=None) -> list[NotificationMessage]:
        """The member's message rows, of `moments` only when given (a paid withdrawal also earns a badge)."""
        session.expire_all()
        q = select(NotificationMessage).where(NotificationMessage.member_id == member.id)
        if moments is not None:
            q = q.where(NotificationMessage.moment.in_(moments))
        return list(session.scalars(q.order_by(NotificationMessage.id)))

    def sent(p, moments=None) -> list[dict]:
        out = emulator.sim(f"messages?pid={p['pid']}", method="GET")
        if moments is not None:
            templates = {t(m) for m in moments for t in (sub_tpl, oa_tpl)}
            out = [m for m in out if m["template_id"] in templates]
        return out

    def headers(member) -> dict:
        return {"Authorization": "Bearer " + tokens.issue(rt.settings.secret_key, "member", member.id)}

    return SimpleNamespace(person=person, grant=grant, event=event, messages=messages, sent=sent, headers=headers)


@pytest.fixture
def operator_headers(client, session):
    from app.identity.operators import create_operator

    create_operator(session, "notifier", "correct horse battery")
    session.commit()
    token = client.post("/api/admin/login", json={"username": "notifier", "password": "correct horse battery"})
    return {"Authorization": "Bearer " + token.get_json()["access_token"]}
