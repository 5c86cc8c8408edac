"""World-building for withdrawals: funded partners who exist in the emulated WeChat, operators, and a way to
run the payout jobs (real RQ on the test Redis, worked in this process) until nothing is left to do."""
from __future__ import annotations

import itertools

import pytest
from rq import Queue, SimpleWorker

from app.crypto import encrypt
from app.ledger.service import member_account, platform_account, post_entry
from tests.factories import make_partner

_fund = itertools.count(1)


@pytest.fixture(autouse=True)
def _fast_payouts(monkeypatch):
    """No real waiting in tests: tiny backoff and acceptance grace (each test may raise them again)."""
    monkeypatch.setenv("PAYOUT_ACCEPT_GRACE", "0")
    monkeypatch.setenv("PAYOUT_BACKOFF_BASE", "0")
    monkeypatch.setenv("PAYOUT_HTTP_TIMEOUT", "1")


def fund(session, member_id: int, fen: int) -> None:
    """Commission that matured: commission_expense -> the member's available account."""
    post_entry(session, f"test:fund:{next(_fund)}",
               [(member_account(session, member_id, "available"), fen),
                (platform_account(session, "commission_expense"), -fen)], "test_funding")


@pytest.fixture
def partner_factory(session, emulator, settings):
    def make(available_fen: int = 100_000, real_name: str | None = None, in_wechat: bool = True):
        person = emulator.emu.create_person(nickname="推广员")
        openid = person["openids"][settings.wechat_miniapp_id] if in_wechat else f"o_stranger_{next(_fund)}"
        member = make_partner(session, mini_openid=openid)
        if real_name:
            member.real_name_enc = encrypt(settings.secret_key, real_name)
        fund(session, member.id, available_fen)
        session.commit()
        return member
    return make


@pytest.fixture
def partner(partner_factory):
    return partner_factory()


def member_headers(rt, member_id: int) -> dict:
    from app.identity import tokens

    return {"Authorization": "Bearer " + tokens.issue(rt.settings.secret_key, "member", member_id)}


@pytest.fixture
def operator_headers(client, session):
    from app.identity.operators import create_operator

    create_operator(session, "reviewer", "correct horse battery")
    session.commit()
    token = client.post("/api/admin/login", json={"username": "reviewer", "password": "correct horse battery"})
    return {"Authorization": "Bearer " + token.get_json()["access_token"]}


@pytest.fixture
def work(rt, redis):
    """work(): run every queued job and every due outbox row (sweeping with lease 0) until quiet."""
    from workers.outbox import sweep

    def run(rounds: int = 20, lease: float | None = None) -> None:
        queues = [Queue(q, connection=redis) for q in ("payouts", "default")]
        for _ in range(rounds):
            SimpleWorker(queues, connection=redis).work(burst=True, with_scheduler=False)
            if not sweep(lease=lease if lease is not None else 3600):
                return
    return run


def set_rule(session, **values):
    from app.withdrawals.service import set_rule as _set

    _set(session, "*", values, actor="test")
    session.commit()
