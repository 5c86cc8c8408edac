"""A merge moves money with balanced journal entries; the books still check out."""
from app.ledger.service import check_ledger, member_account, member_balances, platform_account, post_entry
from app.members.merge import merge_members
from tests.factories import make_member


def credit(session, member_id, kind, fen, key):
    post_entry(session, key, [(platform_account(session, "commission_expense"), fen),
                              (member_account(session, member_id, kind), -fen)], kind="test")


def test_merging_two_earners_adds_their_balances_and_keeps_the_ledger_exact(session):
    a, b = make_member(session, "A"), make_member(session, "B")
    credit(session, a.id, "available", 1_000, "t1")
    credit(session, b.id, "available", 2_345, "t2")
    before_a, before_b = member_balances(session, a.id), member_balances(session, b.id)
    merge_members(session, a.id, b.id, "unionid")
    merge_members(session, a.id, b.id, "unionid")  # replay: nothing moves twice
    session.commit()
    after = member_balances(session, a.id)
    assert after["available"] == before_a["available"] + before_b["available"]
    assert all(v == 0 for v in member_balances(session, b.id).values())
    assert check_ledger(session).ok
