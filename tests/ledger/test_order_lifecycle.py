"""Orders from the shop through commissions to available money, as a partner and an accountant see it."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from app.commissions.models import Commission
from app.commissions.service import (cancel_commissions_for_fraud, hold_open_commissions, mature_due_commissions,
                                     release_held_commissions)
from app.errors import Conflict, NotFound, ValidationFailed
from app.fraud.service import raise_flag
from app.ledger.service import check_ledger, member_account, member_balances, post_entry
from app.members.models import Identity
from app.orders.models import Order
from app.orders.service import ingest_order_event
from tests.factories import completed, days_ago, paid, refunded

pytestmark = pytest.mark.sqlite  # also runs on SQLite (embedded mode): LIEBIAN_TEST_DB=sqlite

LATER = datetime.now(timezone.utc) + timedelta(days=30)


def commissions(session, order_id):
    return {c.level: c for c in session.scalars(select(Commission).where(Commission.order_id == order_id))}


def assert_books_ok(session):
    report = check_ledger(session)
    assert report.ok, report.as_dict()


def test_paid_order_credits_both_referrers_pending_rounded_down_per_line(session, world):
    grand, parent, buyer = world.chain()
    world.plan(l1=1000, l2=333)
    out = ingest_order_event(session, paid("SO1", world.unionid(buyer), 999, 1001))
    # L1: floor(999*10%) + floor(1001*10%) = 99 + 100; L2: floor(999*3.33%) + floor(1001*3.33%) = 33 + 33
    assert [(c["level"], c["earner_id"], c["amount_fen"]) for c in out["commissions"]] == [
        (1, parent.id, 199), (2, grand.id, 66)]
    assert member_balances(session, parent.id)["pending"] == 199
    assert member_balances(session, grand.id)["pending"] == 66
    assert member_balances(session, buyer.id)["pending"] == 0
    assert_books_ok(session)


def test_a_replayed_paid_event_changes_nothing(session, world):
    grand, parent, buyer = world.chain()
    world.plan()
    ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000))
    again = ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000))
    assert again["status"] == "duplicate"
    assert member_balances(session, parent.id)["pending"] == 1000
    assert session.execute(text("SELECT COUNT(*) FROM journal_entries")).scalar() == 2


def test_a_paid_event_with_other_lines_for_a_known_order_is_refused(session, world):
    _, _, buyer = world.chain()
    world.plan()
    ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000))
    with pytest.raises(Conflict) as err:
        ingest_order_event(session, paid("SO1", world.unionid(buyer), 20000))
    assert err.value.code == "order_event_conflict"


def test_only_two_levels_are_ever_paid_even_in_a_deep_tree(session, world):
    top = world.member("top", partner=True)
    grand = world.member("grand", referrer=top, partner=True)
    parent = world.member("parent", referrer=grand, partner=True)
    buyer = world.member("buyer", referrer=parent, partner=True)
    world.plan()
    out = ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000))
    assert {c["earner_id"] for c in out["commissions"]} == {parent.id, grand.id}
    assert member_balances(session, top.id)["pending"] == 0


def test_a_referrer_who_is_not_a_partner_earns_nothing_and_nothing_moves_up(session, world):
    grand = world.member("grand", partner=True)
    parent = world.member("parent", referrer=grand, partner=False)
    buyer = world.member("buyer", referrer=parent)
    world.plan()
    out = ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000))
    assert [(c["level"], c["earner_id"], c["amount_fen"]) for c in out["commissions"]] == [(2, grand.id, 500)]


def test_self_purchase_pays_the_partner_buyer_level_one_and_their_referrer_level_two(session, world):
    grand, parent, _ = world.chain()
    world.plan(self_purchase=True)
    out = ingest_order_event(session, paid("SO1", world.unionid(parent), 10000))
    assert [(c["level"], c["earner_id"]) for c in out["commissions"]] == [(1, parent.id), (2, grand.id)]


def test_self_purchase_off_pays_the_partner_buyer_nothing(session, world):
    grand, parent, _ = world.chain()
    world.plan(self_purchase=False)
    out = ingest_order_event(session, paid("SO1", world.unionid(parent), 10000))
    assert [(c["level"], c["earner_id"]) for c in out["commissions"]] == [(1, grand.id)]


def test_an_unknown_buyer_is_created_once_from_their_openid(session, world):
    world.plan()
    first = ingest_order_event(session, paid("SO1", None, 100, mini_openid="o-new-1", nickname="小明"))
    second = ingest_order_event(session, paid("SO2", None, 100, mini_openid="o-new-1"))
    assert first["buyer_id"] == second["buyer_id"]
    assert first["is_first_order"] and not second["is_first_order"]
    assert session.scalar(select(Identity.member_id).where(Identity.value == "o-new-1")) == first["buyer_id"]


def test_unionid_wins_over_openid_when_both_are_known(session, world):
    world.plan()
    a = world.member("a")
    b = world.member("b")
    session.add(Identity(member_id=b.id, kind="mini_openid", value="o-b"))
    out = ingest_order_event(session, paid("SO1", world.unionid(a), 100, mini_openid="o-b"))
    assert out["buyer_id"] == a.id


def test_completed_then_hold_period_then_available(session, world):
    grand, parent, buyer = world.chain()
    world.plan(hold_days=7)
    ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000, at=days_ago(10)))
    ingest_order_event(session, completed("SO1", at=days_ago(8)))
    assert mature_due_commissions(session) == 2
    assert member_balances(session, parent.id) == {"pending": 0, "available": 1000, "withdrawing": 0}
    assert member_balances(session, grand.id)["available"] == 500
    assert {c.state for c in commissions(session, 1).values()} == {"available"}
    assert mature_due_commissions(session) == 0
    assert_books_ok(session)


def test_nothing_matures_inside_the_hold_period_or_before_completion(session, world):
    _, parent, buyer = world.chain()
    world.plan(hold_days=7)
    ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000))
    ingest_order_event(session, paid("SO2", world.unionid(buyer), 10000))
    ingest_order_event(session, completed("SO1"))
    assert mature_due_commissions(session) == 0
    assert mature_due_commissions(session, now=LATER) == 2  # SO1's two levels; SO2 never completed
    assert member_balances(session, parent.id) == {"pending": 1000, "available": 1000, "withdrawing": 0}
    assert_books_ok(session)


def test_completed_before_paid_is_parked_and_applied_when_paid_arrives(session, world):
    _, parent, buyer = world.chain()
    world.plan(hold_days=0)
    assert ingest_order_event(session, completed("SO1", at=days_ago(1)))["status"] == "parked"
    assert ingest_order_event(session, completed("SO1", at=days_ago(1)))["status"] == "parked"
    out = ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000, at=days_ago(2)))
    assert out["applied_parked"] == ["completed"]
    order = session.scalar(select(Order).where(Order.shop_order_id == "SO1"))
    assert order.status == "completed"
    assert mature_due_commissions(session) == 2
    assert member_balances(session, parent.id)["available"] == 1000
    assert session.execute(text("SELECT COUNT(*) FROM parked_order_events")).scalar() == 0


def test_a_duplicated_completed_changes_nothing(session, world):
    _, _, buyer = world.chain()
    world.plan()
    ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000))
    ingest_order_event(session, completed("SO1", at=days_ago(0.5)))
    first = commissions(session, 1)[1].mature_at
    assert ingest_order_event(session, completed("SO1"))["status"] == "duplicate"
    assert commissions(session, 1)[1].mature_at == first


def test_partial_refunds_reverse_proportionally_at_both_levels_and_never_exceed(session, world):
    grand, parent, buyer = world.chain()
    world.plan(l1=1000, l2=500)
    ingest_order_event(session, paid("SO1", world.unionid(buyer), 999))  # L1 99, L2 49
    ingest_order_event(session, refunded("SO1", "R1", 333))
    # remaining = floor(99 * 666 / 999) = 66, floor(49 * 666 / 999) = 32
    assert member_balances(session, parent.id)["pending"] == 66
    assert member_balances(session, grand.id)["pending"] == 32
    ingest_order_event(session, refunded("SO1", "R2", 333))
    ingest_order_event(session, refunded("SO1", "R3", 333))
    assert member_balances(session, parent.id)["pending"] == 0
    assert member_balances(session, grand.id)["pending"] == 0
    c = commissions(session, 1)
    assert (c[1].state, c[1].reversed_fen, c[2].state, c[2].reversed_fen) == ("reversed", 99, "reversed", 49)
    assert session.scalar(select(Order.status)) == "refunded"
    assert_books_ok(session)


def test_a_replayed_refund_is_recognised_and_a_changed_one_refused(session, world):
    _, parent, buyer = world.chain()
    world.plan()
    ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000))
    ingest_order_event(session, refunded("SO1", "R1", 5000))
    assert ingest_order_event(session, refunded("SO1", "R1", 5000))["status"] == "duplicate"
    with pytest.raises(Conflict) as err:
        ingest_order_event(session, refunded("SO1", "R1", 4000))
    assert err.value.code == "refund_conflict"
    assert member_balances(session, parent.id)["pending"] == 500


def test_a_refund_above_the_paid_amount_is_refused_and_changes_nothing(session, world):
    _, parent, buyer = world.chain()
    world.plan()
    ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000))
    ingest_order_event(session, refunded("SO1", "R1", 6000))
    with pytest.raises(ValidationFailed) as err:
        ingest_order_event(session, refunded("SO1", "R2", 4001))
    assert err.value.code == "refund_exceeds_paid"
    assert member_balances(session, parent.id)["pending"] == 400


def test_a_refund_for_an_unknown_order_is_refused(session, world):
    with pytest.raises(NotFound) as err:
        ingest_order_event(session, refunded("NOPE", "R1", 100))
    assert err.value.code == "order_not_found"


@pytest.mark.parametrize("amount", [-1, 10.0, 10.5, "100", True, None])
def test_amounts_that_are_not_non_negative_integer_fen_are_refused(session, world, amount):
    world.plan()
    with pytest.raises(ValidationFailed) as err:
        ingest_order_event(session, paid("SO1", "u-1", amount))
    assert err.value.code in ("amount_not_integer", "amount_out_of_range")
    assert session.execute(text("SELECT COUNT(*) FROM orders")).scalar() == 0


def test_a_refund_after_maturity_and_withdrawal_leaves_a_negative_balance_repaid_by_later_earnings(session, world):
    _, parent, buyer = world.chain()
    world.plan(hold_days=0)
    ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000, at=days_ago(2)))
    ingest_order_event(session, completed("SO1", at=days_ago(1)))
    mature_due_commissions(session)
    # the withdrawals engineer's move: all available money goes to withdrawing
    post_entry(session, "withdrawal:1:request", [(member_account(session, parent.id, "available"), -1000),
                                                 (member_account(session, parent.id, "withdrawing"), 1000)],
               "withdrawal_requested")
    ingest_order_event(session, refunded("SO1", "R1", 10000))
    assert member_balances(session, parent.id) == {"pending": 0, "available": -1000, "withdrawing": 1000}
    ingest_order_event(session, paid("SO2", world.unionid(buyer), 30000, at=days_ago(2)))
    ingest_order_event(session, completed("SO2", at=days_ago(1)))
    mature_due_commissions(session)
    assert member_balances(session, parent.id)["available"] == 2000  # 3000 earned, 1000 repaid first
    assert_books_ok(session)


def test_plan_versions_settle_each_order_by_the_version_active_when_it_was_paid(session, world):
    _, parent, buyer = world.chain()
    now = datetime.now(timezone.utc)
    world.plan(l1=1000, effective_from=now - timedelta(days=30))
    world.plan(l1=2000, effective_from=now - timedelta(days=5))
    old = ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000, at=days_ago(10)))
    new = ingest_order_event(session, paid("SO2", world.unionid(buyer), 10000, at=days_ago(1)))
    assert old["commissions"][0]["amount_fen"] == 1000
    assert new["commissions"][0]["amount_fen"] == 2000
    assert old["plan_id"] != new["plan_id"]


def test_category_overrides_and_first_versus_repeat_rates(session, world):
    _, parent, buyer = world.chain()
    world.plan(rates=[{"level": 1, "bps": 1000}, {"level": 1, "bps": 3000, "category": "wine"},
                      {"level": 1, "bps": 2000, "order_kind": "first"}])
    first = ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000, category="food"))
    repeat = ingest_order_event(session, paid("SO2", world.unionid(buyer), 10000, category="food"))
    wine = ingest_order_event(session, paid("SO3", world.unionid(buyer), 10000, category="wine"))
    assert [o["commissions"][0]["amount_fen"] for o in (first, repeat, wine)] == [2000, 1000, 3000]


def test_the_earners_grade_picks_the_rate(session, world):
    from app.grades.service import create_grade, grant_grade

    _, parent, buyer = world.chain()
    create_grade(session, code="partner", rank=1)
    create_grade(session, code="gold", rank=2)
    world.plan(rates=[{"level": 1, "bps": 1000}, {"level": 1, "bps": 1500, "grade": "gold"}])
    before = ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000))
    grant_grade(session, parent.id, "gold", reason="top seller", actor="operator:1")
    after = ingest_order_event(session, paid("SO2", world.unionid(buyer), 10000))
    assert (before["commissions"][0]["amount_fen"], after["commissions"][0]["amount_fen"]) == (1000, 1500)


def test_an_open_fraud_flag_holds_new_commissions_until_released(session, world):
    _, parent, buyer = world.chain()
    world.plan(hold_days=0)
    flag = raise_flag(session, parent.id, "velocity")
    out = ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000, at=days_ago(2)))
    assert out["commissions"][0]["state"] == "held"
    ingest_order_event(session, completed("SO1", at=days_ago(1)))
    assert mature_due_commissions(session) == 1  # only the unflagged level 2
    assert member_balances(session, parent.id)["available"] == 0
    flag.status = "dismissed"
    session.flush()
    assert release_held_commissions(session, parent.id) == 1
    assert mature_due_commissions(session) == 1
    assert member_balances(session, parent.id)["available"] == 1000
    assert_books_ok(session)


def test_a_flag_raised_after_paid_stops_maturation(session, world):
    _, parent, buyer = world.chain()
    world.plan(hold_days=0)
    ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000, at=days_ago(2)))
    ingest_order_event(session, completed("SO1", at=days_ago(1)))
    raise_flag(session, parent.id, "spike")
    hold_open_commissions(session, parent.id)
    assert mature_due_commissions(session) == 1
    assert commissions(session, 1)[1].state == "held"


def test_confirmed_fraud_cancels_open_commissions_and_returns_the_money(session, world):
    _, parent, buyer = world.chain()
    world.plan()
    ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000))
    ingest_order_event(session, refunded("SO1", "R1", 2000))
    assert cancel_commissions_for_fraud(session, parent.id) == 1
    assert member_balances(session, parent.id)["pending"] == 0
    assert commissions(session, 1)[1].state == "canceled"
    ingest_order_event(session, refunded("SO1", "R2", 2000))  # nothing left to reverse for the canceled one
    assert member_balances(session, parent.id)["pending"] == 0
    assert_books_ok(session)


def test_a_third_level_commission_cannot_even_be_stored(session, world):
    from sqlalchemy.exc import IntegrityError

    _, parent, buyer = world.chain()
    world.plan()
    ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000))
    with pytest.raises(IntegrityError):
        with session.begin_nested():
            session.execute(text("UPDATE commissions SET level = 3 WHERE level = 2"))


def test_a_whole_order_life_settles_to_the_fen(session, world):
    """Paid twice (a replay), completed, a quarter refunded, matured: what each partner can withdraw."""
    grand, parent, buyer = world.chain()
    world.plan(l1=1000, l2=500, hold_days=0)
    session.commit()
    event = paid("SO1", world.unionid(buyer), 10000, at=days_ago(2))
    ingest_order_event(session, event)
    assert ingest_order_event(session, event)["status"] == "duplicate"
    ingest_order_event(session, completed("SO1", at=days_ago(1)))
    ingest_order_event(session, refunded("SO1", "R1", 2500))
    session.commit()
    assert mature_due_commissions(session, now=datetime.now(timezone.utc) + timedelta(minutes=1)) == 2
    session.commit()
    assert member_balances(session, parent.id) == {"pending": 0, "available": 750, "withdrawing": 0}
    assert member_balances(session, grand.id) == {"pending": 0, "available": 375, "withdrawing": 0}
    # two accruals, two reversals, one maturation per earner
    assert session.execute(text("SELECT COUNT(*) FROM journal_entries")).scalar() == 6
    assert_books_ok(session)
