"""No poster is made of a code that does not bind: a frozen or revoked partner asks and is told why."""
from __future__ import annotations

import pytest

from app.posters.jobs import prerender_member
from app.posters.models import PosterRender
from app.referrals import partners
from tests.factories import make_partner, member_headers
from tests.posters.test_api import create_reference_template


@pytest.mark.parametrize("status, code", [("frozen", "partner_frozen"), ("revoked", "code_revoked")])
def test_a_frozen_or_revoked_partner_gets_no_poster(client, session, rt, operator_headers, status, code):
    create_reference_template(client, operator_headers)
    partner = make_partner(session, "张小凡")
    session.commit()
    assert client.get("/api/mp/posters", headers=member_headers(rt, partner.id)).status_code == 200
    partners.set_partner_status(session, partner.id, status)
    session.commit()
    r = client.get("/api/mp/posters", headers=member_headers(rt, partner.id))
    assert (r.status_code, r.get_json()["code"]) == (403, code)


def test_the_pre_render_makes_no_poster_for_a_frozen_partner(client, session, rt, operator_headers):
    template = create_reference_template(client, operator_headers)
    partner = make_partner(session, "张小凡")
    session.commit()
    partners.set_partner_status(session, partner.id, "frozen")
    session.commit()
    assert prerender_member(rt, partner.id, template["id"]) == 0
    assert session.query(PosterRender).filter_by(member_id=partner.id).count() == 0
