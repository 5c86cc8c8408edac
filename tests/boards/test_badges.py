"""Badges as a partner sees them: earned once per milestone, whatever replays and races, shown in the profile,
the badge list with progress, and on the boards; operators add their own thresholds (audited)."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.boards import contests
from app.boards.jobs import freeze_contests
from app.boards.models import MemberBadge
from app.boards.subscribers import badge_referral_orders
from app.db import utcnow
from app.events import Event, record
from app.events.models import DomainEvent
from app.orders.service import ingest_order_event
from app.teams import membership
from app.teams import service as teams
from tests.boards.conftest import member_headers
from tests.boards.test_boards import sell
from tests.factories import paid
from tests.racing import errors, race


def earned(session, member_id):
    session.expire_all()
    return sorted(session.scalars(select(MemberBadge.badge).where(MemberBadge.member_id == member_id)))


def badge_events(session, member_id):
    rows = session.scalars(select(DomainEvent).where(DomainEvent.name == "badge.earned")).all()
    return sorted(e.data["badge"] for e in rows if e.data["member_id"] == member_id)


def test_first_referral_order_is_awarded_once_under_racing_and_replayed_events(rt, session, world, work):
    partner = world.partner("推广员")
    b1, b2 = world.member("顾客1", referrer=partner), world.member("顾客2", referrer=partner)
    session.commit()
    for i, b in enumerate((b1, b2)):
        ingest_order_event(session, paid(f"SO{i}", world.unionid(b), 1000))
    session.commit()
    paid_events = [Event(e.id, e.name, e.data, e.occurred_at) for e in session.scalars(
        select(DomainEvent).where(DomainEvent.name == "order.paid").order_by(DomainEvent.id))]
    # Two different orders and a second delivery of each, all at the same instant.
    outcomes = race(4, lambda i: badge_referral_orders(rt, paid_events[i % 2]))
    assert not errors(outcomes), outcomes
    work(lease=0)  # the outbox delivers both events once more: receipts make them no-ops
    assert earned(session, partner.id) == ["first_referral_order"]
    assert badge_events(session, partner.id) == ["first_referral_order"]
    assert session.scalar(select(func.count()).select_from(MemberBadge)) == 1


@pytest.mark.sqlite
def test_a_captain_earns_the_ten_member_team_badge_and_sees_it(client, rt, session, world, work):
    cap = world.partner("队长")
    team = teams.create_team(session, name="十人队", captain_id=cap.id)
    code = membership.invite_code(session, team)
    for i in range(9):
        membership.join_by_invite(session, world.partner(f"队员{i}").id, code)
    session.commit()
    work(lease=0)
    assert earned(session, cap.id) == []
    mine = client.get("/api/mp/badges", headers=member_headers(rt, cap.id)).get_json()["items"]
    team_10 = next(b for b in mine if b["code"] == "team_10")
    assert (team_10["value"], team_10["threshold"], team_10["earned_at"]) == (9, 10, None)
    membership.join_by_invite(session, world.partner("第十人").id, code)
    session.commit()
    work(lease=0)
    assert earned(session, cap.id) == ["team_10"]
    profile = client.get("/api/mp/me", headers=member_headers(rt, cap.id)).get_json()
    assert [b["code"] for b in profile["badges"]] == ["team_10"] and profile["badges"][0]["name"] == "十人团队"
    assert "captain" in profile["roles"]
    mine = client.get("/api/mp/badges", headers=member_headers(rt, cap.id)).get_json()["items"]
    assert next(b for b in mine if b["code"] == "team_10")["earned_at"]
    assert next(b for b in mine if b["code"] == "team_100")["earned_at"] is None


def test_first_withdrawal_and_contest_winner(rt, session, world, work):
    a, b = world.partner("甲"), world.partner("乙")
    ba, bb = world.member("a的顾客", referrer=a), world.member("b的顾客", referrer=b)
    session.commit()
    c = contests.create_contest(session, name="周赛", kind="member", metric="sales_fen",
                                starts_at=utcnow() - timedelta(days=1), ends_at=utcnow() + timedelta(hours=1))
    session.commit()
    sell(world, "SO-a", ba, 500)
    sell(world, "SO-b", bb, 900)
    work(lease=0)
    c.ends_at = utcnow()
    session.commit()
    assert freeze_contests(rt) == 1
    record(session, "withdrawal.paid", withdrawal_id=1, member_id=a.id, net_fen=100)
    session.commit()
    work(lease=0)
    assert earned(session, b.id) == ["contest_winner", "first_referral_order"]
    assert earned(session, a.id) == ["first_referral_order", "first_withdrawal"]


def test_operators_define_their_own_thresholds(client, rt, session, world, work, operator_headers):
    r = client.post("/api/admin/badges", headers=operator_headers,
                    json={"code": "three_orders", "name": "三单达人", "figure": "referral_orders", "threshold": 3})
    assert r.status_code == 201, r.get_json()
    again = client.post("/api/admin/badges", headers=operator_headers,
                        json={"code": "three_orders", "name": "x", "figure": "referral_orders", "threshold": 3})
    assert again.status_code == 409 and again.get_json()["code"] == "badge_exists"
    bad = client.post("/api/admin/badges", headers=operator_headers,
                      json={"code": "fast", "name": "x", "figure": "referral_orders", "threshold": 2.5})
    assert bad.status_code in (400, 422)
    off = client.patch("/api/admin/badges/first_referral_order", json={"active": False}, headers=operator_headers)
    assert off.status_code == 200 and off.get_json()["active"] is False
    partner = world.partner("推广员")
    buyers = [world.member(f"顾客{i}", referrer=partner) for i in range(3)]
    session.commit()
    for i, buyer in enumerate(buyers):
        sell(world, f"SO{i}", buyer, 100)
        work(lease=0)
    assert earned(session, partner.id) == ["three_orders"]  # the switched-off badge is no longer awarded
    actions = set(session.scalars(select(AuditEntry.action)))
    assert {"badge.defined", "badge.active"} <= actions
