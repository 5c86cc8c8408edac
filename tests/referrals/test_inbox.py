"""Launch-day mode: scan events queued to a Redis stream, bound in batches by a consumer."""
import pytest
from sqlalchemy import func, select

from app.members.models import Member
from app.referrals import binding, codes, inbox
from app.referrals.binding import IncomingTouch
from app.referrals.touches import wechat_touch
from app.referrals.models import Binding, Touch
from tests.factories import make_partner

pytestmark = pytest.mark.sqlite  # also runs on SQLite (embedded mode): LIEBIAN_TEST_DB=sqlite


def test_queued_scans_are_bound_by_the_consumer_once(rt, session, partner_scene):
    p, scene = partner_scene
    for i in range(50):
        inbox.accept(rt.redis, f"open-{i}", scene, True, 1_800_000_000 + i)
    inbox.accept(rt.redis, "open-0", scene, True, 1_800_000_000)  # WeChat's retry slipped past the dedupe
    assert inbox.drain_once(rt, "c1", count=500, block_ms=10) == 51
    assert inbox.drain_once(rt, "c1", count=500, block_ms=10) == 0
    assert session.scalar(select(func.count()).select_from(Binding)) == 50
    assert session.scalar(select(func.count()).select_from(Touch)) == 50
    assert session.scalar(select(func.count()).select_from(Member).where(Member.referrer_id == p.id)) == 50
    assert inbox.backlog(rt.redis) == 0


def test_a_consumer_that_died_before_acking_leaves_its_events_to_another(rt, session, partner_scene, monkeypatch):
    p, scene = partner_scene
    for i in range(5):
        inbox.accept(rt.redis, f"open-{i}", scene, True, 1_800_000_000 + i)

    def die(*_a, **_k):
        raise SystemExit("killed mid-batch")

    monkeypatch.setattr(inbox, "process_touches", die)
    with pytest.raises(SystemExit):
        inbox.drain_once(rt, "doomed", count=500, block_ms=10)
    monkeypatch.undo()
    monkeypatch.setattr(inbox, "CLAIM_IDLE_MS", 0)  # the survivor claims at once instead of after 30 s
    assert inbox.drain_once(rt, "survivor", count=500, block_ms=10) == 5
    assert session.scalar(select(func.count()).select_from(Binding)) == 5


def test_reprocessing_a_committed_batch_changes_nothing(rt, session, partner_scene):
    """Crash between commit and XACK: the batch comes round again; event keys make it a no-op."""
    p, scene = partner_scene
    touches = [wechat_touch(f"o{i}", scene, True, 1_800_000_000 + i) for i in range(3)]
    with rt.session() as s:
        binding.process_touches(s, touches)
    again = [wechat_touch(f"o{i}", scene, True, 1_800_000_000 + i) for i in range(3)]
    with rt.session() as s:
        assert binding.process_touches(s, again) == [None, None, None]
    assert session.scalar(select(func.count()).select_from(Touch)) == 3


def test_one_batch_with_touches_of_the_same_person_for_two_codes_binds_the_first(session, partner_scene):
    p, scene = partner_scene
    q = make_partner(session, "Q")
    other = codes.ensure_personal_code(session, q.id).scene
    results = binding.process_touches(session, [
        IncomingTouch(channel="oa_subscribe", scene=scene, openid="same-person", event_key="k1"),
        IncomingTouch(channel="oa_scan", scene=other, openid="same-person", event_key="k2"),
    ])
    assert [r.outcome for r in results] == ["bound", "already_bound"]
    assert session.scalar(select(func.count()).select_from(Binding)) == 1


def test_a_batch_retried_after_a_deadlock_recreates_its_new_members(session, partner_scene, monkeypatch):
    """The retry runs in a fresh savepoint: members created by the aborted attempt are gone and made again."""
    from sqlalchemy.exc import OperationalError

    p, scene = partner_scene
    real = binding._MemberState.write_binds
    calls = {"n": 0}

    def deadlock_once(self, results, incoming):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("UPDATE members", {}, Exception("deadlock detected"))
        return real(self, results, incoming)

    monkeypatch.setattr(binding._MemberState, "write_binds", deadlock_once)
    results = binding.process_touches(session, [IncomingTouch(channel="oa_subscribe", scene=scene, openid="new-one",
                                                              event_key="k-new")])
    session.commit()
    assert results[0].outcome == "bound" and calls["n"] == 2
    assert session.scalar(select(func.count()).select_from(Member).where(Member.referrer_id == p.id)) == 1
