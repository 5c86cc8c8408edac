"""Fixtures shared by the referral tests."""
import pytest

from app.referrals import codes
from tests.factories import make_partner


@pytest.fixture
def partner_scene(session):
    """A committed partner and the scene of their personal code."""
    p = make_partner(session, "P")
    scene = codes.ensure_personal_code(session, p.id).scene
    session.commit()
    return p, scene
