"""Role checks and token handling through the HTTP API."""
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.identity import miniapp
from app.identity.operators import create_operator
from app.members.models import ApiSession
from tests.factories import make_member, member_headers


def operator_headers(client, session):
    create_operator(session, "ops", "correct horse battery")
    session.commit()
    token = client.post("/api/admin/login", json={"username": "ops", "password": "correct horse battery"}).get_json()
    return {"Authorization": "Bearer " + token["access_token"]}


def test_member_sees_own_profile_only_through_their_token(client, session, rt):
    alice, bob = make_member(session, "Alice"), make_member(session, "Bob")
    session.commit()
    assert client.get("/api/mp/me", headers=member_headers(rt, alice.id)).get_json()["nickname"] == "Alice"
    assert client.get("/api/mp/me", headers=member_headers(rt, bob.id)).get_json()["nickname"] == "Bob"


def test_member_token_cannot_call_the_admin_api(client, session, rt):
    alice, bob = make_member(session, "Alice"), make_member(session, "Bob")
    session.commit()
    r = client.get(f"/api/admin/members/{bob.id}", headers=member_headers(rt, alice.id))
    assert r.status_code == 403 and r.get_json()["code"] == "operator_required"  # signed in, at the wrong door
    r = client.post(f"/api/admin/members/{alice.id}/roles", json={"role": "partner"},
                    headers=member_headers(rt, alice.id))
    assert r.status_code == 403


def test_operator_grants_and_revokes_roles_and_it_is_audited(client, session):
    headers = operator_headers(client, session)
    alice = make_member(session, "Alice")
    session.commit()
    r = client.post(f"/api/admin/members/{alice.id}/roles", json={"role": "partner"}, headers=headers)
    assert r.status_code == 200 and "partner" in r.get_json()["roles"]
    r = client.delete(f"/api/admin/members/{alice.id}/roles/partner", headers=headers)
    assert "partner" not in r.get_json()["roles"]
    actions = [a.action for a in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == ["member.role_granted", "member.role_revoked"]


def test_unknown_role_is_a_validation_error(client, session):
    headers = operator_headers(client, session)
    alice = make_member(session)
    session.commit()
    r = client.post(f"/api/admin/members/{alice.id}/roles", json={"role": "emperor"}, headers=headers)
    assert r.status_code == 422 and r.get_json()["details"]["json"]["role"]


def test_wrong_operator_password_is_refused_without_saying_which_part_was_wrong(client, session):
    operator_headers(client, session)
    r1 = client.post("/api/admin/login", json={"username": "ops", "password": "nope"})
    r2 = client.post("/api/admin/login", json={"username": "nobody", "password": "nope"})
    assert r1.status_code == r2.status_code == 401
    assert r1.get_json() == r2.get_json()


def test_refresh_token_rotates_and_a_reused_one_revokes_the_login(client, session, rt):
    alice = make_member(session)
    row, refresh = miniapp._new_session(session, alice.id, "fam1", None)
    session.commit()
    first = client.post("/api/mp/token/refresh", json={"refresh_token": refresh})
    assert first.status_code == 200
    new_refresh = first.get_json()["refresh_token"]
    assert new_refresh != refresh
    headers = {"Authorization": "Bearer " + first.get_json()["access_token"]}
    assert client.get("/api/mp/me", headers=headers).status_code == 200

    replay = client.post("/api/mp/token/refresh", json={"refresh_token": refresh})
    assert replay.status_code == 401 and replay.get_json()["code"] == "refresh_reused"
    # The thief's replay also kills the legitimate newer token.
    after = client.post("/api/mp/token/refresh", json={"refresh_token": new_refresh})
    assert after.status_code == 401
    assert all(r.revoked_at for r in session.scalars(select(ApiSession)))


def test_bad_inputs_get_the_error_envelope(client):
    r = client.post("/api/mp/login", data="{nope", content_type="application/json")
    assert (r.status_code, r.get_json()["code"]) == (400, "malformed_json")
    r = client.post("/api/mp/login", json={"code": 12})
    assert (r.status_code, r.get_json()["code"]) == (422, "validation_error")
    assert "code" in r.get_json()["details"]["json"]
    r = client.post("/api/mp/login", data="x" * (2 << 20), content_type="application/json")
    assert (r.status_code, r.get_json()["code"]) == (413, "payload_too_large")
    r = client.get("/api/mp/me", headers={"Authorization": "Bearer forged"})
    assert (r.status_code, r.get_json()["code"]) == (401, "token_invalid")


def test_a_member_token_already_verified_still_expires_and_a_forged_one_is_still_refused(client, session, rt,
                                                                                         monkeypatch):
    """Signatures are checked once per process; the token's age is checked on every request."""
    import time as clock

    from app.identity import tokens

    m = make_member(session, "Poller")
    session.commit()
    token = tokens.issue(rt.settings.secret_key, "member", m.id)
    headers = {"Authorization": "Bearer " + token}
    assert client.get("/api/mp/leaderboard", headers=headers).status_code == 200
    claims = tokens.verify(rt.settings.secret_key, "member", token)
    claims["sub"] = 0  # a caller changing its copy does not change what the next request is told
    assert tokens.verify(rt.settings.secret_key, "member", token)["sub"] == m.id

    later = clock.time() + tokens.MEMBER_TTL + 1
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    for path in ("/api/mp/leaderboard", "/api/mp/me"):
        r = client.get(path, headers=headers)
        assert (r.status_code, r.get_json()["code"]) == (401, "token_expired"), path
    flipped = "A" if token[-5] != "A" else "B"  # inside the signature (the last character may be padding bits)
    forged = {"Authorization": "Bearer " + token[:-5] + flipped + token[-4:]}
    assert client.get("/api/mp/me", headers=forged).get_json()["code"] == "token_invalid"
