"""Partner status is one truth: the code a member is shown says what a scan of it does, and no image is made of a
code that does not bind."""
from __future__ import annotations

import pytest

from app.identity import tokens
from app.referrals import binding, codes, partners, stores
from app.referrals.rules import code_standing
from tests.factories import make_member

CHANNELS = ("oa_qr", "mini_code", "share_qr")


def _auth(rt, member_id: int) -> dict:
    return {"Authorization": "Bearer " + tokens.issue(rt.settings.secret_key, "member", member_id)}


def _partner_with_code(session):
    p = make_member(session, "伙伴")
    partners.make_partner(session, p.id, "designated")
    code = codes.ensure_personal_code(session, p.id)
    session.commit()
    return p, code


@pytest.mark.parametrize("status", ["frozen", "revoked"])
def test_a_frozen_or_revoked_partners_code_says_so_and_gives_no_image(client, session, rt, status):
    p, code = _partner_with_code(session)
    partners.set_partner_status(session, p.id, status)
    session.commit()
    body = client.get("/api/mp/code", headers=_auth(rt, p.id)).get_json()
    assert (body["scene"], body["status"], body["images"]) == (code.scene, status, {})
    expected = "partner_frozen" if status == "frozen" else "code_revoked"
    for channel in CHANNELS:
        r = client.get(f"/api/mp/code.png?channel={channel}", headers=_auth(rt, p.id))
        assert (r.status_code, r.get_json()["code"]) == (403, expected)
    # What the member is shown is what a scan does.
    fan = make_member(session)
    assert binding.touch(session, scene=code.scene, member_id=fan.id, channel="oa_scan").outcome == "code_inactive"


def test_an_unfrozen_partners_code_is_active_again(client, session, rt):
    p, code = _partner_with_code(session)
    partners.set_partner_status(session, p.id, "frozen")
    partners.set_partner_status(session, p.id, "active")
    session.commit()
    body = client.get("/api/mp/code", headers=_auth(rt, p.id)).get_json()
    assert (body["status"], sorted(body["images"])) == ("active", sorted(CHANNELS))
    assert client.get("/api/mp/code.png?channel=share_qr", headers=_auth(rt, p.id)).status_code == 200


def test_an_operator_revoked_code_says_revoked(client, session, rt):
    p, code = _partner_with_code(session)
    codes.revoke_code(session, code.id)
    session.commit()
    # The partner is still active: asking again makes them a new code, which binds.
    body = client.get("/api/mp/code", headers=_auth(rt, p.id)).get_json()
    assert body["status"] == "active" and body["scene"] != code.scene


def test_a_clerk_who_left_the_store_has_an_inactive_code(client, session, rt):
    shop = stores.create_store(session, "静安店")
    clerk = make_member(session, "店员", roles=("consumer", "clerk"))
    stores.assign_staff(session, clerk.id, shop.id, "clerk")
    code = codes.ensure_personal_code(session, clerk.id)
    stores.end_assignment(session, clerk.id)
    session.commit()
    body = client.get("/api/mp/code", headers=_auth(rt, clerk.id)).get_json()
    assert (body["scene"], body["status"]) == (code.scene, "inactive")
    r = client.get("/api/mp/code.png?channel=share_qr", headers=_auth(rt, clerk.id))
    assert (r.status_code, r.get_json()["code"]) == (403, "code_inactive")


def test_the_scan_rule_and_the_shown_status_are_one_rule():
    # kind, code status, partner status, on staff, names a referrer -> standing
    assert code_standing("partner", "active", "active", False, True) == "active"
    assert code_standing("partner", "active", "frozen", True, True) == "frozen"
    assert code_standing("partner", "active", None, False, True) == "revoked"
    assert code_standing("partner", "revoked", "active", False, True) == "revoked"
    assert code_standing("clerk", "active", None, False, True) == "inactive"
    assert code_standing("campaign", "active", None, False, False) == "active"
    assert code_standing("campaign", "active", "frozen", False, True) == "frozen"
