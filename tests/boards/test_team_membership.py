"""Team membership as captains and partners see it: join with the invite code, one team at a time, leave, be
removed or moved, with the history kept; a captain sees each member's figures counted from joining."""
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from app.members.service import roles_of
from app.orders.service import ingest_order_event
from app.referrals import binding
from app.teams import membership
from app.teams import service as teams
from app.teams.models import TeamMembershipChange
from tests.boards.conftest import member_headers
from tests.factories import paid


def _team(world, name="望京一队"):
    cap = world.partner("队长")
    team = teams.create_team(world.s, name=name, captain_id=cap.id)
    world.s.commit()
    return cap, team


def test_a_partner_joins_with_the_invite_code_and_the_captain_sees_them(client, rt, session, world):
    cap, team = _team(world)
    mine = client.get("/api/mp/team", headers=member_headers(rt, cap.id)).get_json()
    assert mine["is_captain"] and mine["name"] == "望京一队"
    code = mine["invite_code"]
    assert code in mine["invite_path"]
    p = world.partner("小王")
    session.commit()

    joined = client.post("/api/mp/team/join", json={"invite_code": code.lower()}, headers=member_headers(rt, p.id))

    assert joined.status_code == 200
    body = joined.get_json()
    assert (body["name"], body["is_captain"], body["invite_code"], body["members"]) == ("望京一队", False, None, None)
    members = client.get("/api/mp/team", headers=member_headers(rt, cap.id)).get_json()["members"]
    assert sorted(m["nickname"] for m in members) == ["小王", "队长"]


def test_the_captain_role_shows_in_the_profile_and_goes_with_the_captaincy(client, rt, session, world):
    cap, team = _team(world)
    assert "captain" in client.get("/api/mp/me", headers=member_headers(rt, cap.id)).get_json()["roles"]
    other = world.partner("新队长")
    teams.change_captain(session, team.id, other.id)
    session.commit()
    assert "captain" not in roles_of(session, cap.id)
    assert "captain" in roles_of(session, other.id)
    assert membership.membership(session, other.id).team_id == team.id


def test_one_team_at_a_time(client, rt, session, world):
    _, a = _team(world, "A队")
    _, b = _team(world, "B队")
    p = world.partner()
    code_a, code_b = membership.invite_code(session, a), membership.invite_code(session, b)
    session.commit()
    assert client.post("/api/mp/team/join", json={"invite_code": code_a},
                       headers=member_headers(rt, p.id)).status_code == 200
    again = client.post("/api/mp/team/join", json={"invite_code": code_b}, headers=member_headers(rt, p.id))
    assert again.status_code == 409 and again.get_json()["code"] == "already_in_team"
    session.expire_all()
    assert membership.membership(session, p.id).team_id == a.id


def test_only_active_partners_join_and_a_wrong_code_is_a_404(client, rt, session, world):
    _, team = _team(world)
    consumer = world.member("顾客")
    code = membership.invite_code(session, team)
    session.commit()
    r = client.post("/api/mp/team/join", json={"invite_code": code}, headers=member_headers(rt, consumer.id))
    assert r.status_code == 422 and r.get_json()["code"] == "team_join_not_partner"
    r = client.post("/api/mp/team/join", json={"invite_code": "NOPE"}, headers=member_headers(rt, consumer.id))
    assert r.status_code == 404


def test_leaving_removal_and_moving_are_recorded_with_who_and_when(client, rt, session, world, operator_headers):
    cap, team = _team(world, "A队")
    _, other = _team(world, "B队")
    p, q = world.partner("p"), world.partner("q")
    membership.join_by_invite(session, p.id, membership.invite_code(session, team))
    membership.join_by_invite(session, q.id, membership.invite_code(session, team))
    session.commit()

    assert client.post("/api/mp/team/leave", headers=member_headers(rt, cap.id)).status_code == 409  # captain stays
    assert client.post("/api/mp/team/leave", headers=member_headers(rt, p.id)).status_code == 200
    stranger = world.partner()
    session.commit()
    assert client.delete(f"/api/mp/team/members/{q.id}", headers=member_headers(rt, stranger.id)).status_code == 403
    assert client.delete(f"/api/mp/team/members/{q.id}", headers=member_headers(rt, cap.id)).status_code == 200
    assert client.put(f"/api/admin/teams/{other.id}/members/{p.id}", headers=operator_headers).status_code == 200

    history = client.get(f"/api/admin/teams/{team.id}/history", headers=operator_headers).get_json()["items"]
    seen = [(h["member_id"], h["action"], h["actor_kind"], h["actor_id"]) for h in reversed(history)]
    assert (p.id, "left", "member", p.id) in seen
    assert (q.id, "removed", "captain", cap.id) in seen
    moved = session.scalars(select(TeamMembershipChange).where(TeamMembershipChange.member_id == p.id)
                            .order_by(TeamMembershipChange.id)).all()
    assert [(c.action, c.to_team_id) for c in moved] == [("joined", team.id), ("left", None), ("joined", other.id)]
    assert all(c.at is not None for c in moved)


def test_archiving_a_team_releases_its_members(client, rt, session, world, operator_headers):
    cap, team = _team(world)
    p = world.partner()
    membership.join_by_invite(session, p.id, membership.invite_code(session, team))
    session.commit()
    assert client.patch(f"/api/admin/teams/{team.id}", json={"status": "archived"},
                        headers=operator_headers).status_code == 200
    session.expire_all()
    assert membership.membership(session, p.id) is None
    assert "captain" not in roles_of(session, cap.id)


def test_a_team_campaign_code_binds_new_members_into_the_team(session, world, work):
    cap, team = _team(world)
    code = teams.create_team_code(session, team.id, label="海报")
    fan = world.member("粉丝")
    binding.touch(session, scene=code.scene, member_id=fan.id, channel="oa_subscribe", new_follower=True)
    session.commit()
    work()
    seat = membership.membership(session, fan.id)
    assert seat is not None and (seat.team_id, seat.via) == (team.id, "code")


def test_figures_count_from_joining(client, rt, session, world):
    cap, team = _team(world)
    p = world.partner("p")
    buyer_before = world.member("早", referrer=p)
    buyer_after = world.member("晚", referrer=p)
    session.commit()
    long_ago = (datetime.now(timezone.utc) - timedelta(days=2)).isoformat()
    ingest_order_event(session, paid("SO-before", world.unionid(buyer_before), 5000, at=long_ago))
    session.commit()
    membership.join_by_invite(session, p.id, membership.invite_code(session, team))
    session.commit()
    ingest_order_event(session, paid("SO-after", world.unionid(buyer_after), 3000))
    session.commit()

    members = client.get("/api/mp/team", headers=member_headers(rt, cap.id)).get_json()["members"]
    row = next(m for m in members if m["member_id"] == p.id)
    assert row["sales_fen"] == 3000
    assert row["commission_fen"] == 300
