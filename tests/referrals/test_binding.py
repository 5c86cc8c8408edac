"""Binding through touches, on PostgreSQL and (all but the races) on SQLite."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.db import utcnow
from app.members.models import Member
from app.referrals import binding, codes, partners, stores
from app.referrals.models import Binding, Touch
from app.referrals.saved_rules import update_rules
from tests.factories import make_member, make_partner
from tests.racing import errors, in_transaction, race


def partner_with_code(session, name="P"):
    p = make_partner(session, name)
    return p, codes.ensure_personal_code(session, p.id)


def referrer_of(session, member_id):
    return session.scalar(select(Member.referrer_id).where(Member.id == member_id))


@pytest.mark.sqlite
def test_a_scan_binds_the_scanner_to_the_code_owner_and_logs_it(session):
    p, code = partner_with_code(session)
    fan = make_member(session)
    result = binding.touch(session, scene=code.scene, member_id=fan.id, channel="oa_subscribe", new_follower=True)
    session.commit()
    assert result.outcome == "bound" and referrer_of(session, fan.id) == p.id
    t = session.scalar(select(Touch))
    assert (t.code_id, t.member_id, t.channel, t.new_follower, t.outcome) == (
        code.id, fan.id, "oa_subscribe", True, "bound")
    b = session.scalar(select(Binding))
    assert (b.member_id, b.referrer_id, b.kind, b.channel) == (fan.id, p.id, "bind", "oa_subscribe")


@pytest.mark.sqlite
def test_scene_is_opaque_and_never_the_member_id(session):
    p, code = partner_with_code(session)
    assert str(p.id) not in code.scene and len(code.scene) <= 32 and code.scene.isalnum()


@pytest.mark.sqlite
def test_no_self_referral(session):
    p, code = partner_with_code(session)
    assert binding.touch(session, scene=code.scene, member_id=p.id, channel="oa_scan").outcome == "self"
    assert referrer_of(session, p.id) is None


@pytest.mark.sqlite
def test_no_cycle(session):
    a, code_a = partner_with_code(session, "A")
    b, code_b = partner_with_code(session, "B")
    assert binding.touch(session, scene=code_a.scene, member_id=b.id, channel="oa_scan").outcome == "bound"
    # A scanning B's code would make A under B under A.
    assert binding.touch(session, scene=code_b.scene, member_id=a.id, channel="oa_scan").outcome == "cycle"
    session.commit()
    assert referrer_of(session, a.id) is None
    assert session.scalar(select(Touch.outcome).where(Touch.member_id == a.id)) == "cycle"


@pytest.mark.sqlite
def test_longer_cycles_are_refused_too(session):
    a, code_a = partner_with_code(session, "A")
    b, code_b = partner_with_code(session, "B")
    c, code_c = partner_with_code(session, "C")
    binding.touch(session, scene=code_a.scene, member_id=b.id, channel="oa_scan")   # B under A
    binding.touch(session, scene=code_b.scene, member_id=c.id, channel="oa_scan")   # C under B
    assert binding.touch(session, scene=code_c.scene, member_id=a.id, channel="oa_scan").outcome == "cycle"


@pytest.mark.sqlite
def test_revoked_code_and_frozen_partner_bind_nobody_but_are_logged(session):
    p, code = partner_with_code(session)
    fan1, fan2 = make_member(session), make_member(session)
    partners.set_partner_status(session, p.id, "frozen")
    assert binding.touch(session, scene=code.scene, member_id=fan1.id, channel="oa_scan").outcome == "code_inactive"
    partners.set_partner_status(session, p.id, "active")
    codes.revoke_code(session, code.id)
    assert binding.touch(session, scene=code.scene, member_id=fan2.id, channel="oa_scan").outcome == "code_inactive"
    session.commit()
    assert referrer_of(session, fan1.id) is None and referrer_of(session, fan2.id) is None
    assert session.scalar(select(func.count()).select_from(Touch)) == 2


@pytest.mark.sqlite
def test_a_campaign_code_stops_binding_while_its_partner_is_frozen_and_after_its_clerk_leaves(session):
    p = make_partner(session, "P")
    flyer = codes.create_campaign_code(session, label="flyer", referrer_id=p.id)
    shop = stores.create_store(session, "S")
    clerk = make_member(session, "C")
    stores.assign_staff(session, clerk.id, shop.id, "clerk")
    counter = codes.create_campaign_code(session, label="counter", referrer_id=clerk.id, store_id=shop.id)
    fans = [make_member(session) for _ in range(4)]
    partners.set_partner_status(session, p.id, "frozen")
    assert binding.touch(session, scene=flyer.scene, member_id=fans[0].id, channel="oa_scan").outcome == "code_inactive"
    partners.set_partner_status(session, p.id, "active")
    assert binding.touch(session, scene=flyer.scene, member_id=fans[1].id, channel="oa_scan").outcome == "bound"
    assert binding.touch(session, scene=counter.scene, member_id=fans[2].id, channel="oa_scan").outcome == "bound"
    stores.end_assignment(session, clerk.id)
    late = binding.touch(session, scene=counter.scene, member_id=fans[3].id, channel="oa_scan")
    assert late.outcome == "code_inactive"
    session.commit()
    assert [referrer_of(session, f.id) for f in fans] == [None, p.id, clerk.id, None]


@pytest.mark.sqlite
def test_unknown_scene_is_logged_and_binds_nobody(session):
    fan = make_member(session)
    assert binding.touch(session, scene="nope", member_id=fan.id, channel="mini_launch").outcome == "unknown_code"
    assert session.scalar(select(Touch.scene)) == "nope"


@pytest.mark.sqlite
def test_permanent_first_touch_keeps_the_first_referrer(session):
    p1, c1 = partner_with_code(session, "P1")
    p2, c2 = partner_with_code(session, "P2")
    fan = make_member(session)
    binding.touch(session, scene=c1.scene, member_id=fan.id, channel="oa_scan")
    later = utcnow() + timedelta(days=400)
    second = binding.touch(session, scene=c2.scene, member_id=fan.id, channel="oa_scan", now=later)
    assert second.outcome == "already_bound"
    assert referrer_of(session, fan.id) == p1.id


@pytest.mark.sqlite
def test_protection_period_then_rebind_recorded_as_history(session):
    update_rules(session, {"duration": "protection", "protection_days": 30})
    p1, c1 = partner_with_code(session, "P1")
    p2, c2 = partner_with_code(session, "P2")
    fan = make_member(session)
    t0 = utcnow()
    binding.touch(session, scene=c1.scene, member_id=fan.id, channel="oa_scan", now=t0)
    r = binding.touch(session, scene=c2.scene, member_id=fan.id, channel="oa_scan", now=t0 + timedelta(days=29))
    assert r.outcome == "protected" and referrer_of(session, fan.id) == p1.id
    r = binding.touch(session, scene=c2.scene, member_id=fan.id, channel="oa_scan", now=t0 + timedelta(days=31))
    assert r.outcome == "rebound" and referrer_of(session, fan.id) == p2.id
    history = session.execute(select(Binding.kind, Binding.referrer_id, Binding.previous_referrer_id)
                              .order_by(Binding.id)).all()
    assert history == [("bind", p1.id, None), ("rebind", p2.id, p1.id)]


@pytest.mark.sqlite
def test_last_touch_always_moves_to_the_latest_referrer(session):
    update_rules(session, {"duration": "last_touch"})
    p1, c1 = partner_with_code(session, "P1")
    p2, c2 = partner_with_code(session, "P2")
    fan = make_member(session)
    binding.touch(session, scene=c1.scene, member_id=fan.id, channel="oa_scan")
    binding.touch(session, scene=c2.scene, member_id=fan.id, channel="mini_launch")
    assert referrer_of(session, fan.id) == p2.id


@pytest.mark.sqlite
def test_new_members_only(session):
    update_rules(session, {"who": "new_only", "new_member_hours": 24})
    p, code = partner_with_code(session)
    newcomer, old_timer = make_member(session), make_member(session)
    old_timer.created_at = utcnow() - timedelta(days=10)
    session.flush()
    assert binding.touch(session, scene=code.scene, member_id=newcomer.id, channel="oa_scan").outcome == "bound"
    assert binding.touch(session, scene=code.scene, member_id=old_timer.id, channel="oa_scan").outcome == "not_new"


@pytest.mark.sqlite
def test_bind_at_first_purchase_waits_for_the_order(session):
    update_rules(session, {"when": "first_purchase"})
    p, code = partner_with_code(session)
    fan = make_member(session)
    assert binding.touch(session, scene=code.scene, member_id=fan.id, channel="oa_scan").outcome == "pending"
    assert referrer_of(session, fan.id) is None
    assert binding.confirm_pending_referral(session, fan.id).outcome == "bound"
    assert referrer_of(session, fan.id) == p.id
    assert binding.confirm_pending_referral(session, fan.id) is None  # only once


@pytest.mark.sqlite
def test_clerk_code_binds_to_the_clerk_and_records_the_store(session):
    shop = stores.create_store(session, "五道口店")
    clerk = make_member(session, "Clerk")
    stores.assign_staff(session, clerk.id, shop.id, "clerk")
    code = codes.ensure_personal_code(session, clerk.id)
    walk_in = make_member(session)
    assert binding.touch(session, scene=code.scene, member_id=walk_in.id, channel="oa_subscribe").outcome == "bound"
    b = session.scalar(select(Binding))
    assert (b.referrer_id, b.store_id) == (clerk.id, shop.id)


@pytest.mark.sqlite
def test_moving_a_clerk_keeps_where_past_customers_were_won(session):
    old, new = stores.create_store(session, "Old"), stores.create_store(session, "New")
    clerk = make_member(session, "Clerk")
    stores.assign_staff(session, clerk.id, old.id, "clerk")
    code = codes.ensure_personal_code(session, clerk.id)
    first = make_member(session)
    binding.touch(session, scene=code.scene, member_id=first.id, channel="oa_scan")
    stores.assign_staff(session, clerk.id, new.id, "clerk")
    code = codes.ensure_personal_code(session, clerk.id)
    second = make_member(session)
    binding.touch(session, scene=code.scene, member_id=second.id, channel="oa_scan")
    by_member = dict(session.execute(select(Binding.member_id, Binding.store_id)).all())
    assert by_member == {first.id: old.id, second.id: new.id}


def touch_at_once(rt, touches: list[tuple[str, int]]) -> list[str]:
    """(scene, member id) touches at the same instant, each in its own transaction: their outcomes."""
    outcomes = race(len(touches), in_transaction(rt, lambda s, i: binding.touch(
        s, scene=touches[i][0], member_id=touches[i][1], channel="oa_scan").outcome))
    assert not errors(outcomes), outcomes
    return outcomes


def test_two_codes_scanned_at_once_bind_exactly_one_referrer(rt, session):
    for _ in range(10):
        p1, c1 = partner_with_code(session, "P1")
        p2, c2 = partner_with_code(session, "P2")
        fan = make_member(session)
        session.commit()
        outcomes = touch_at_once(rt, [(c1.scene, fan.id), (c2.scene, fan.id)])
        assert sorted(outcomes) == ["already_bound", "bound"]
        assert session.scalar(select(func.count()).select_from(Binding).where(Binding.member_id == fan.id)) == 1
        assert referrer_of(session, fan.id) in (p1.id, p2.id)


def test_two_partners_scanning_each_other_at_once_never_make_a_cycle(rt, session):
    for _ in range(10):
        a, ca = partner_with_code(session, "A")
        b, cb = partner_with_code(session, "B")
        session.commit()
        outcomes = touch_at_once(rt, [(cb.scene, a.id), (ca.scene, b.id)])
        assert sorted(outcomes) == ["bound", "cycle"]
        session.expire_all()
        assert not (referrer_of(session, a.id) == b.id and referrer_of(session, b.id) == a.id)
