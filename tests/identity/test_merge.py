import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.fraud.models import RiskFlag
from app.identity.linking import attach_identity
from app.members.merge import MergeRefused, merge_members
from app.members.models import Identity, Member, MemberMerge
from app.members.service import get_member, roles_of
from tests.factories import make_member, make_partner


def test_same_unionid_on_two_channels_becomes_one_member(session):
    alice = make_partner(session, "Alice", mini_openid="mini-alice", unionid="u-1")
    oa_alice = make_member(session, "Alice OA", oa_openid="oa-alice")
    survivor = attach_identity(session, oa_alice.id, "unionid", "u-1")
    session.commit()

    assert survivor.id == alice.id
    assert get_member(session, oa_alice.id).id == alice.id  # old id follows the merge
    kinds = set(session.scalars(select(Identity.kind).where(Identity.member_id == alice.id)))
    assert kinds == {"mini_openid", "unionid", "oa_openid"}
    assert "partner" in roles_of(session, alice.id)
    assert session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "member.merged")) == 1


def test_merge_keeps_referrer_and_moves_downline(session):
    boss = make_partner(session, "Boss")
    a = make_member(session, "A", referrer=boss)
    b = make_partner(session, "B")
    fan = make_member(session, "fan", referrer=b)
    kept = merge_members(session, a.id, b.id, "phone")
    session.commit()
    assert kept.id == a.id and kept.referrer_id == boss.id
    session.refresh(fan)
    assert fan.referrer_id == a.id


def test_merge_is_idempotent(session):
    a, b = make_member(session), make_member(session)
    merge_members(session, a.id, b.id, "unionid")
    merge_members(session, a.id, b.id, "unionid")
    merge_members(session, b.id, a.id, "unionid")
    session.commit()
    assert session.scalar(select(func.count()).select_from(MemberMerge)) == 1
    assert session.get(Member, b.id).merged_into_id == a.id


def test_merge_that_joins_two_different_referrers_is_refused_and_flagged(session):
    r1, r2 = make_partner(session), make_partner(session)
    a, b = make_member(session, referrer=r1), make_member(session, referrer=r2)
    with pytest.raises(MergeRefused):
        merge_members(session, a.id, b.id, "unionid")
    session.commit()
    assert session.get(Member, b.id).status == "active"
    flag = session.scalar(select(RiskFlag))
    assert flag.kind == "merge_refused" and flag.details["reason"] == "different_referrers"


def test_merge_that_would_make_a_referral_cycle_is_refused(session):
    a = make_partner(session, "A")
    b = make_member(session, "B", referrer=a)  # A recruited B; proving A and B are one person would be self-referral
    with pytest.raises(MergeRefused) as err:
        merge_members(session, a.id, b.id, "phone")
    assert err.value.details["reason"] == "referral_cycle"


def test_openid_already_linked_elsewhere_is_a_conflict_not_a_merge(session):
    make_member(session, oa_openid="oa-x")
    other = make_member(session)
    from app.errors import Conflict

    with pytest.raises(Conflict):
        attach_identity(session, other.id, "oa_openid", "oa-x")


def test_merging_a_partner_account_keeps_their_code_binding_to_the_person(session):
    from app.referrals import binding, codes, partners

    old = make_member(session, "old web account")
    partner_side = make_partner(session, "mini-program partner")
    code = codes.ensure_personal_code(session, partner_side.id)
    kept = merge_members(session, old.id, partner_side.id, "unionid")
    fan = make_member(session)
    result = binding.touch(session, scene=code.scene, member_id=fan.id, channel="oa_scan")
    assert result.outcome == "bound" and result.referrer_id == kept.id
    assert partners.partner_status(session, kept.id) == "active"
