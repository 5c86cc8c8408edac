"""The stream consumer gathers a trickle of scans into batches (linger) and creates its group when missing."""
from __future__ import annotations

import types

import pytest
from sqlalchemy import func, select

from app.members.models import Member
from app.referrals import inbox
from app.referrals.models import Binding, Touch

pytestmark = pytest.mark.sqlite  # also runs on SQLite (embedded mode): LIEBIAN_TEST_DB=sqlite


def _bound(session, partner_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Member).where(Member.referrer_id == partner_id))


def test_scans_arriving_while_the_consumer_lingers_join_its_batch(rt, session, partner_scene, monkeypatch):
    p, scene = partner_scene
    for i in range(3):
        inbox.accept(rt.redis, f"early-{i}", scene, True, 1_800_000_000 + i)
    slept = []

    def more_arrive(seconds):  # WeChat delivers four more scans (one a retry) while the consumer waits
        slept.append(seconds)
        for i in range(4):
            inbox.accept(rt.redis, f"late-{i % 3}", scene, True, 1_800_000_100 + i % 3)

    monkeypatch.setattr(inbox, "time", types.SimpleNamespace(sleep=more_arrive))
    assert inbox.drain_once(rt, "c1", count=500, block_ms=10, linger_ms=80) == 7
    assert slept == [0.08]
    assert _bound(session, p.id) == 6 and session.scalar(select(func.count()).select_from(Binding)) == 6
    assert session.scalar(select(func.count()).select_from(Touch)) == 6
    assert inbox.backlog(rt.redis) == 0


def test_a_full_batch_is_bound_without_lingering(rt, session, partner_scene, monkeypatch):
    p, scene = partner_scene
    for i in range(5):
        inbox.accept(rt.redis, f"o-{i}", scene, True, 1_800_000_000 + i)
    monkeypatch.setattr(inbox, "time", types.SimpleNamespace(sleep=lambda s: pytest.fail("lingered on a full batch")))
    assert inbox.drain_once(rt, "c1", count=3, block_ms=10, linger_ms=500) == 3
    assert inbox.drain_once(rt, "c1", count=3, block_ms=10, linger_ms=0) == 2
    assert _bound(session, p.id) == 5


def test_an_empty_stream_lingers_for_nothing_and_the_group_is_made_on_first_use(rt, session, monkeypatch):
    monkeypatch.setattr(inbox, "time", types.SimpleNamespace(sleep=lambda s: pytest.fail("lingered on nothing")))
    assert not rt.redis.exists(inbox.STREAM)
    assert inbox.drain_once(rt, "c1", count=10, block_ms=10, linger_ms=500) == 0
    assert [g["name"] for g in rt.redis.xinfo_groups(inbox.STREAM)] == [inbox.GROUP.encode()]
    assert inbox.backlog(rt.redis) == 0
