"""Teams as operators use them: a team with a captain, campaign codes attributed to it, and what scanning one does."""
import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.errors import Conflict
from app.members.merge import merge_members
from app.members.models import Identity, Member
from app.referrals import binding, codes, partners
from app.referrals.models import Binding, ReferralCode, Touch
from app.teams import service as teams
from tests.factories import make_member, make_partner
from tests.referrals.test_api import as_operator

pytestmark = pytest.mark.sqlite  # also runs on SQLite (embedded mode): LIEBIAN_TEST_DB=sqlite


def scan(session, code, person):
    return binding.touch(session, scene=code.scene, member_id=person.id, channel="oa_subscribe", new_follower=True)


def test_a_team_code_binds_the_scanner_to_the_captain_and_records_the_code(session):
    cap = make_partner(session, "队长")
    team = teams.create_team(session, name="望京一队", captain_id=cap.id)
    code = teams.create_team_code(session, team.id, label="门店海报")
    fan = make_member(session)

    result = scan(session, code, fan)

    assert (result.outcome, result.bound) == ("bound", True)
    session.refresh(fan)
    assert fan.referrer_id == cap.id
    b = session.scalar(select(Binding).where(Binding.member_id == fan.id))
    assert (b.referrer_id, b.code_id) == (cap.id, code.id)
    assert session.scalar(select(Touch.code_id).where(Touch.member_id == fan.id)) == code.id


def test_an_explicit_clerk_or_partner_on_a_team_code_wins_over_the_captain(session):
    cap, other = make_partner(session, "队长"), make_partner(session, "推广员")
    team = teams.create_team(session, name="一队", captain_id=cap.id)
    code = teams.create_team_code(session, team.id, label="x", referrer_id=other.id)
    fan = make_member(session)
    scan(session, code, fan)
    session.refresh(fan)
    assert (fan.referrer_id, code.team_id) == (other.id, team.id)


def test_scanning_a_team_qr_in_wechat_binds_to_the_captain(client, session, rt, emulator, live_app):
    from wechat.clients import official_account

    cap = make_partner(session, "队长")
    team = teams.create_team(session, name="地推队", captain_id=cap.id)
    session.commit()
    r = client.post("/api/admin/codes", json={"label": "传单", "team_id": team.id}, headers=as_operator(rt, session))
    assert r.status_code == 201 and r.get_json()["referrer_id"] == cap.id and r.get_json()["team_id"] == team.id
    code = session.get(ReferralCode, r.get_json()["id"])
    codes.ensure_oa_ticket(session, official_account(rt.settings, rt.redis), code)
    session.commit()

    person = emulator.sim("persons", nickname="小李")
    assert emulator.sim(f"persons/{person['pid']}/scan", ticket=code.oa_ticket)["delivered"]

    session.expire_all()
    ident = session.scalar(select(Identity).where(Identity.kind == "oa_openid",
                                                  Identity.value == person["openids"][rt.settings.wechat_app_id]))
    assert session.get(Member, ident.member_id).referrer_id == cap.id
    assert session.scalar(select(Binding.code_id).where(Binding.member_id == ident.member_id)) == code.id


def test_codes_for_an_archived_or_unknown_team_are_refused(client, session, rt):
    cap = make_partner(session, "队长")
    team = teams.create_team(session, name="旧队", captain_id=cap.id)
    teams.archive_team(session, team.id)
    session.commit()
    ops = as_operator(rt, session)

    archived = client.post("/api/admin/codes", json={"label": "x", "team_id": team.id}, headers=ops)
    unknown = client.post("/api/admin/codes", json={"label": "x", "team_id": team.id + 999}, headers=ops)

    assert (archived.status_code, archived.get_json()["code"]) == (409, "team_archived")
    assert (unknown.status_code, unknown.get_json()["code"]) == (404, "team_not_found")
    assert session.scalar(select(ReferralCode.id)) is None


def test_the_captain_must_be_an_active_partner(client, session, rt):
    consumer = make_member(session)
    frozen = make_partner(session, "冻结")
    partners.set_partner_status(session, frozen.id, "frozen")
    session.commit()
    ops = as_operator(rt, session)

    for member_id in (consumer.id, frozen.id):
        r = client.post("/api/admin/teams", json={"name": "队", "captain_id": member_id}, headers=ops)
        assert (r.status_code, r.get_json()["code"]) == (422, "captain_not_partner")
    r = client.post("/api/admin/teams", json={"name": "队", "captain_id": 10**9}, headers=ops)
    assert (r.status_code, r.get_json()["code"]) == (404, "member_not_found")
    assert client.get("/api/admin/teams", headers=ops).get_json()["items"] == []


def test_a_captain_frozen_later_gets_no_new_team_codes_until_the_captain_changes(session):
    cap = make_partner(session, "队长")
    team = teams.create_team(session, name="一队", captain_id=cap.id)
    partners.set_partner_status(session, cap.id, "frozen")
    with pytest.raises(Conflict) as refused:
        teams.create_team_code(session, team.id, label="x")
    assert refused.value.code == "captain_inactive"
    new_cap = make_partner(session, "新队长")
    teams.change_captain(session, team.id, new_cap.id)
    assert teams.create_team_code(session, team.id, label="x").referrer_id == new_cap.id


def test_changing_the_captain_does_not_move_codes_already_issued(session):
    old_cap, new_cap = make_partner(session, "老队长"), make_partner(session, "新队长")
    team = teams.create_team(session, name="一队", captain_id=old_cap.id)
    flyer = teams.create_team_code(session, team.id, label="已印传单")

    teams.change_captain(session, team.id, new_cap.id)
    new_flyer = teams.create_team_code(session, team.id, label="新传单")

    a, b = make_member(session), make_member(session)
    scan(session, flyer, a)
    scan(session, new_flyer, b)
    session.refresh(a)
    session.refresh(b)
    assert a.referrer_id == old_cap.id  # the printed flyer still credits the captain it was made for
    assert b.referrer_id == new_cap.id
    # Re-issuing is how an operator moves attribution: revoke, and the old flyer binds nobody any more.
    codes.revoke_code(session, flyer.id)
    c = make_member(session)
    assert scan(session, flyer, c).outcome == "code_inactive"


def test_names_are_unique_among_active_teams_only(session):
    cap = make_partner(session, "队长")
    first = teams.create_team(session, name="一队", captain_id=cap.id)
    with pytest.raises(Conflict) as refused:
        teams.create_team(session, name=" 一队 ", captain_id=cap.id)
    assert refused.value.code == "team_name_taken"
    teams.archive_team(session, first.id)
    again = teams.create_team(session, name="一队", captain_id=cap.id)
    assert again.id != first.id and again.status == "active"


def test_operator_manages_a_team_over_http_and_sees_its_codes_figures(client, session, rt):
    cap, cap2 = make_partner(session, "张队长"), make_partner(session, "李队长")
    session.commit()
    ops = as_operator(rt, session)

    created = client.post("/api/admin/teams", json={"name": "望京一队", "captain_id": cap.id}, headers=ops)
    assert created.status_code == 201
    team = created.get_json()
    assert team["captain"] == {"id": cap.id, "nickname": "张队长", "partner_status": "active"}
    assert team["status"] == "active" and team["created_by"] is not None
    dup = client.post("/api/admin/teams", json={"name": "望京一队", "captain_id": cap2.id}, headers=ops)
    assert (dup.status_code, dup.get_json()["code"]) == (409, "team_name_taken")

    code_id = client.post("/api/admin/codes", json={"label": "柜台", "team_id": team["id"]},
                          headers=ops).get_json()["id"]
    code = session.get(ReferralCode, code_id)
    fans = [make_member(session) for _ in range(2)]
    for fan in fans:
        scan(session, code, fan)
    scan(session, code, fans[0])  # a second scan by the same person: counted, not a second bind
    session.commit()

    detail = client.get(f"/api/admin/teams/{team['id']}", headers=ops).get_json()
    assert [(c["id"], c["label"], c["scans"], c["binds"]) for c in detail["codes"]] == [(code_id, "柜台", 3, 2)]
    assert (detail["figures"]["totals"]["scans"], detail["figures"]["totals"]["binds"]) == (3, 2)

    patched = client.patch(f"/api/admin/teams/{team['id']}", json={"name": "望京冠军队", "captain_id": cap2.id},
                           headers=ops).get_json()
    assert (patched["name"], patched["captain"]["id"]) == ("望京冠军队", cap2.id)
    # The code issued before the change still names the first captain.
    assert client.get(f"/api/admin/teams/{team['id']}", headers=ops).get_json()["codes"][0]["referrer_id"] == cap.id

    archived = client.patch(f"/api/admin/teams/{team['id']}", json={"status": "archived"}, headers=ops)
    assert archived.get_json()["status"] == "archived" and archived.get_json()["archived_at"]
    again = client.patch(f"/api/admin/teams/{team['id']}", json={"name": "复活"}, headers=ops)
    assert (again.status_code, again.get_json()["code"]) == (409, "team_archived")
    empty = client.patch(f"/api/admin/teams/{team['id']}", json={}, headers=ops)
    assert (empty.status_code, empty.get_json()["code"]) == (422, "nothing_to_change")

    listed = client.get("/api/admin/teams?status=archived", headers=ops).get_json()["items"]
    assert [t["name"] for t in listed] == ["望京冠军队"]
    assert client.get("/api/admin/teams?status=active", headers=ops).get_json()["items"] == []

    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.target_type == "team")
                              .order_by(AuditEntry.id)).all()
    assert actions == ["team.created", "team.renamed", "team.captain_changed", "team.archived"]


def test_team_endpoints_need_an_operator(client, session, rt):
    cap = make_partner(session, "队长")
    team = teams.create_team(session, name="一队", captain_id=cap.id)
    session.commit()
    assert client.post("/api/admin/teams", json={"name": "x", "captain_id": cap.id}).status_code == 401
    assert client.get("/api/admin/teams").status_code == 401
    assert client.get(f"/api/admin/teams/{team.id}").status_code == 401
    assert client.patch(f"/api/admin/teams/{team.id}", json={"status": "archived"}).status_code == 401
    session.expire_all()
    assert session.get(type(team), team.id).status == "active"
    ops = as_operator(rt, session)
    r = client.get(f"/api/admin/teams/{team.id + 1}", headers=ops)
    assert (r.status_code, r.get_json()["code"]) == (404, "team_not_found")


def test_a_merged_captain_keeps_captaincy_on_the_surviving_account(session):
    survivor = make_member(session, "老号")
    cap = make_partner(session, "新号")
    team = teams.create_team(session, name="一队", captain_id=cap.id)
    kept = merge_members(session, survivor.id, cap.id, "unionid")
    session.refresh(team)
    assert team.captain_id == kept.id == survivor.id
