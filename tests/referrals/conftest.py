"""Fixtures shared by the referral tests."""
import pytest

from app.referrals import codes, partners
from tests.factories import make_member


@pytest.fixture
def partner_scene(session):
    """A committed partner and the scene of their personal code."""
    p = make_member(session, "P")
    partners.make_partner(session, p.id, "designated")
    scene = codes.ensure_personal_code(session, p.id).scene
    session.commit()
    return p, scene
