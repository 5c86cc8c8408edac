"""Teams and boards: partners, captains, shop orders through the real order intake, tokens."""
from __future__ import annotations

import pytest

from app.identity import tokens
from app.identity.operators import create_operator
from app.referrals import partners
from tests.factories import World


class BoardWorld(World):
    def partner(self, nickname: str = "", referrer=None):
        m = self.member(nickname, referrer=referrer)
        partners.make_partner(self.s, m.id, "designated")
        return m


@pytest.fixture
def world(session):
    w = BoardWorld(session)
    w.plan()
    return w


def member_headers(rt, member_id: int) -> dict:
    return {"Authorization": "Bearer " + tokens.issue(rt.settings.secret_key, "member", member_id)}


@pytest.fixture
def operator_headers(rt, session):
    op = create_operator(session, "boards-ops", "correct horse battery")
    session.commit()
    return {"Authorization": "Bearer " + tokens.issue(rt.settings.secret_key, "operator", op.id)}


@pytest.fixture(autouse=True)
def fresh_top_cache():
    """The shared top-N and live contest standings live in the process; a test must not see the previous test's."""
    from app.boards.contests import clear_shared
    from app.boards.store import clear_cache

    clear_cache()
    clear_shared()
    yield
    clear_cache()
    clear_shared()
