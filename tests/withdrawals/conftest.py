"""World-building for withdrawals: funded partners who exist in the emulated WeChat, operators, and a way to
run the payout jobs (real RQ on the test Redis, worked in this process) until nothing is left to do."""
from __future__ import annotations

import itertools

import pytest

from app.crypto import encrypt
from app.ledger.service import member_account, platform_account, post_entry
from tests.conftest import tune_payouts
from tests.factories import make_partner

_fund = itertools.count(1)


@pytest.fixture(autouse=True)
def _fast_payouts(rt):
    """No real waiting in tests: tiny backoff and acceptance grace (each test may raise them again)."""
    tune_payouts(rt, accept_grace=0, backoff_base=0, http_timeout=1)


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


@pytest.fixture
def operator_headers(client, session):
    from app.identity.operators import create_operator

    create_operator(session, "reviewer", "correct horse battery")
    session.commit()
    token = client.post("/api/admin/login", json={"username": "reviewer", "password": "correct horse battery"})
    return {"Authorization": "Bearer " + token.get_json()["access_token"]}


def set_rule(session, **values):
    from app.withdrawals.service import set_rule as _set

    _set(session, "*", values, actor="test")
    session.commit()
