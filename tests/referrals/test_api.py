"""Referral endpoints as partners, clerks, managers and operators use them."""
import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.identity import tokens
from app.identity.operators import create_operator
from app.referrals import binding, codes, partners, stores
from app.referrals.saved_rules import update_rules
from tests.factories import make_member, make_partner, member_headers

pytestmark = pytest.mark.sqlite  # also runs on SQLite (embedded mode): LIEBIAN_TEST_DB=sqlite


def as_operator(rt, session):
    op = create_operator(session, f"ops{session.info.setdefault('n', 0)}", "correct horse battery")
    session.commit()
    return {"Authorization": "Bearer " + tokens.issue(rt.settings.secret_key, "operator", op.id)}


def test_partner_gets_a_code_and_a_scannable_share_qr(client, session, rt):
    import zxingcpp
    from PIL import Image
    import io

    p = make_partner(session)
    session.commit()
    body = client.get("/api/mp/code", headers=member_headers(rt, p.id)).get_json()
    assert body["share_url"].endswith("/s/" + body["scene"])
    png = client.get("/api/mp/code.png?channel=share_qr", headers=member_headers(rt, p.id))
    assert png.mimetype == "image/png"
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)))
    assert decoded[0].text == body["share_url"]
    # Asking again returns the same code, not a new one.
    assert client.get("/api/mp/code", headers=member_headers(rt, p.id)).get_json()["scene"] == body["scene"]


def test_consumer_has_no_code(client, session, rt):
    c = make_member(session)
    session.commit()
    r = client.get("/api/mp/code", headers=member_headers(rt, c.id))
    assert (r.status_code, r.get_json()["code"]) == (403, "not_a_partner")


def test_mini_program_launch_with_a_scene_binds(client, session, rt):
    p = make_partner(session)
    code = codes.ensure_personal_code(session, p.id)
    fan = make_member(session)
    session.commit()
    r = client.post("/api/mp/touch", json={"scene": code.scene}, headers=member_headers(rt, fan.id))
    assert r.get_json() == {"outcome": "bound", "bound": True}


def test_partner_sees_direct_referrals_masked_and_second_level_count(client, session, rt):
    p = make_partner(session, "Partner")
    code = codes.ensure_personal_code(session, p.id)
    kid = make_member(session, "张小明")
    binding.touch(session, scene=code.scene, member_id=kid.id, channel="mini_launch")
    partners.make_partner(session, kid.id, "everyone")
    kid_code = codes.ensure_personal_code(session, kid.id)
    for _ in range(3):
        g = make_member(session)
        binding.touch(session, scene=kid_code.scene, member_id=g.id, channel="oa_scan")
    session.commit()
    referrals = client.get("/api/mp/referrals", headers=member_headers(rt, p.id)).get_json()
    assert referrals["direct_count"] == 1 and referrals["second_level_count"] == 3
    assert referrals["direct"][0]["nickname"] == "张**" and referrals["direct"][0]["channel"] == "mini_launch"
    # The level-1 partner sees only their own direct referrals: the kid's view differs.
    assert client.get("/api/mp/referrals", headers=member_headers(rt, kid.id)).get_json()["direct_count"] == 3
    # "Team" is the captain's team only (app/teams): the old path is gone, not an alias.
    assert client.get("/api/mp/team", headers=member_headers(rt, p.id)).status_code == 404


def test_consumer_cannot_read_direct_referrals(client, session, rt):
    c = make_member(session)
    session.commit()
    assert client.get("/api/mp/referrals", headers=member_headers(rt, c.id)).status_code == 403


def test_store_manager_sees_per_clerk_figures_of_their_own_store_only(client, session, rt):
    shop, other = stores.create_store(session, "A"), stores.create_store(session, "B")
    manager, clerk, stranger = make_member(session, "M"), make_member(session, "C"), make_member(session, "X")
    stores.assign_staff(session, manager.id, shop.id, "manager")
    stores.assign_staff(session, clerk.id, shop.id, "clerk")
    stores.assign_staff(session, stranger.id, other.id, "clerk")
    code = codes.ensure_personal_code(session, clerk.id)
    for _ in range(2):
        binding.touch(session, scene=code.scene, member_id=make_member(session).id, channel="oa_subscribe")
    session.commit()
    body = client.get("/api/mp/store/figures", headers=member_headers(rt, manager.id)).get_json()
    assert body["store_id"] == shop.id
    assert [(c["clerk_id"], c["new_customers"]) for c in body["clerks"]] == [(clerk.id, 2)]
    assert client.get("/api/mp/store/figures", headers=member_headers(rt, clerk.id)).status_code == 403
    assert client.get("/api/mp/staff/figures", headers=member_headers(rt, clerk.id)).get_json()["new_customers"] == 2


def test_operator_campaign_code_stats_by_day(client, session, rt):
    headers = as_operator(rt, session)
    shop = stores.create_store(session, "Counter")
    clerk = make_member(session)
    stores.assign_staff(session, clerk.id, shop.id, "clerk")
    session.commit()
    r = client.post("/api/admin/codes", json={"label": "flyer", "referrer_id": clerk.id, "store_id": shop.id},
                    headers=headers)
    assert r.status_code == 201
    code = r.get_json()
    fans = [make_member(session) for _ in range(3)]
    for f in fans:
        binding.touch(session, scene=code["scene"], member_id=f.id, channel="oa_subscribe", new_follower=True)
    binding.touch(session, scene=code["scene"], member_id=fans[0].id, channel="oa_scan")  # a re-scan binds nothing
    session.commit()
    stats = client.get(f"/api/admin/codes/{code['id']}/stats", headers=headers).get_json()
    assert stats["totals"] == {"scans": 4, "follows": 3, "binds": 3, "conversion": 0.75}
    assert len(stats["by_day"]) == 1


def test_code_binds_count_people_bound_through_the_code_also_at_their_first_purchase(client, session, rt):
    headers = as_operator(rt, session)
    update_rules(session, {"when": "first_purchase"})
    p = make_member(session)
    partners.make_partner(session, p.id, "designated")
    code = codes.ensure_personal_code(session, p.id)
    buyer, browser = make_member(session), make_member(session)
    for fan in (buyer, browser):
        assert binding.touch(session, scene=code.scene, member_id=fan.id, channel="mini_launch").outcome == "pending"
    assert binding.confirm_pending_referral(session, buyer.id).outcome == "bound"  # the buyer's first order
    session.commit()
    stats = client.get(f"/api/admin/codes/{code.id}/stats", headers=headers).get_json()
    assert stats["totals"] == {"scans": 2, "follows": 0, "binds": 1, "conversion": 0.5}


def test_new_customers_count_people_not_their_rebindings(client, session, rt):
    update_rules(session, {"duration": "last_touch"})
    shop = stores.create_store(session, "A")
    manager, clerk, rival = make_member(session, "M"), make_member(session, "C"), make_member(session, "R")
    stores.assign_staff(session, manager.id, shop.id, "manager")
    stores.assign_staff(session, clerk.id, shop.id, "clerk")
    partners.make_partner(session, rival.id, "designated")
    mine, theirs = codes.ensure_personal_code(session, clerk.id), codes.ensure_personal_code(session, rival.id)
    fickle, loyal = make_member(session), make_member(session)
    for scene in (mine.scene, theirs.scene, mine.scene):  # won, lost to a partner, won back: one customer
        assert binding.touch(session, scene=scene, member_id=fickle.id, channel="oa_scan").bound
    binding.touch(session, scene=mine.scene, member_id=loyal.id, channel="oa_scan")
    session.commit()
    assert client.get("/api/mp/staff/figures", headers=member_headers(rt, clerk.id)).get_json()["new_customers"] == 2
    clerks = client.get("/api/mp/store/figures", headers=member_headers(rt, manager.id)).get_json()["clerks"]
    assert [(c["clerk_id"], c["new_customers"]) for c in clerks] == [(clerk.id, 2)]


def test_operator_rules_change_is_validated_and_audited(client, session, rt):
    headers = as_operator(rt, session)
    r = client.patch("/api/admin/referral-rules", json={"duration": "forever"}, headers=headers)
    assert r.status_code == 422 and "duration" in r.get_json()["details"]["json"]
    r = client.patch("/api/admin/referral-rules", json={"duration": "protection", "protection_days": 15},
                     headers=headers)
    assert r.get_json()["duration"] == "protection"
    assert session.scalar(select(AuditEntry.action)) == "referral_rules.updated"


def test_partner_application_review_flow(client, session, rt):
    headers = as_operator(rt, session)
    client.patch("/api/admin/referral-rules", json={"partner_policy": "application"}, headers=headers)
    applicant = make_member(session)
    session.commit()
    r = client.post("/api/mp/partner", json={"note": "I run a mums' group"}, headers=member_headers(rt, applicant.id))
    assert r.get_json()["status"] == "pending"
    again = client.post("/api/mp/partner", json={}, headers=member_headers(rt, applicant.id))
    assert (again.status_code, again.get_json()["code"]) == (409, "application_pending")
    app_id = client.get("/api/admin/partner-applications", headers=headers).get_json()["items"][0]["id"]
    r = client.post(f"/api/admin/partner-applications/{app_id}", json={"approve": True}, headers=headers)
    assert r.get_json()["status"] == "approved"
    assert "partner" in client.get("/api/mp/me", headers=member_headers(rt, applicant.id)).get_json()["roles"]


def test_freezing_a_partner_stops_their_code_binding(client, session, rt):
    headers = as_operator(rt, session)
    p = make_partner(session)
    code = codes.ensure_personal_code(session, p.id)
    fan = make_member(session)
    session.commit()
    client.post(f"/api/admin/partners/{p.id}/status", json={"status": "frozen"}, headers=headers)
    r = client.post("/api/mp/touch", json={"scene": code.scene}, headers=member_headers(rt, fan.id))
    assert r.get_json()["outcome"] == "code_inactive"
