"""The pure commission rules, as tables a merchant or an accountant can check line by line: what a sale earns
(integer fen, always rounded down), which rate applies, who earns, what a refund leaves, and which state moves
a commission may make."""
from itertools import product

import pytest

from app.commissions.models import COMMISSION_STATES
from app.commissions.rules import (ChainMember, IllegalTransition, Rate, commission_fen, earners, money_account_for,
                                   remaining_after_refunds, resolve_bps, transition)


# -- commission_fen: floor(paid × bps / 10000) --------------------------------------------------------------------

@pytest.mark.parametrize("paid_fen, bps, expected", [
    (9999, 1000, 999),          # ¥99.99 at 10 %: 999.9 fen, the 0.9 fen stays with the merchant
    (10000, 1000, 1000),        # ¥100.00 at 10 %: exactly ¥10.00
    (10000, 500, 500),          # level 2 at 5 %
    (999, 333, 33),             # 3.33 % of ¥9.99 = 33.27 fen
    (1001, 333, 33),            # 33.33 fen
    (19999, 5, 9),              # 0.05 % of ¥199.99 = 9.9995 fen, never rounded up to 10
    (12345, 1234, 1523),        # 1523.373 fen
    (1, 9999, 0),               # a 1-fen sale earns nothing even at 99.99 %
    (0, 1000, 0),               # a free line
    (10000, 0, 0),              # a 0 % rate
    (10000, 10000, 10000),      # 100 %: the whole line
    (10_000_000_000, 1, 1_000_000),  # ¥1 亿 at 0.01 %: ¥1 万
    (2**53 + 1, 10000, 2**53 + 1),     # integer arithmetic: exact where a float would drop the last fen
])
def test_a_commission_is_the_rate_of_the_paid_amount_rounded_down_to_the_fen(paid_fen, bps, expected):
    assert commission_fen(paid_fen, bps) == expected


@pytest.mark.parametrize("paid_fen, bps", [
    (-1, 1000),     # a negative amount
    (100, -1),      # a negative rate
    (100, 10001),   # more than 100 %
    (99.99, 1000),  # yuan as a float instead of integer fen
    (100, 10.5),    # a fractional basis point
    ("100", 1000),  # a string from a careless caller
    (True, 1000),   # a bool is not an amount
])
def test_anything_but_integer_fen_and_0_to_10000_bps_is_refused(paid_fen, bps):
    with pytest.raises(ValueError):
        commission_fen(paid_fen, bps)


# -- resolve_bps: the most specific rate wins (grade, then category, then first/repeat order) ---------------------

PLAN = (
    Rate("*", 1, "*", "any", 1000),         # everyone, level 1: 10 %
    Rate("*", 2, "*", "any", 500),          # everyone, level 2: 5 %
    Rate("*", 1, "wine", "any", 3000),      # wine, level 1: 30 %
    Rate("*", 1, "*", "first", 2000),       # a buyer's first order, level 1: 20 %
    Rate("gold", 1, "*", "any", 1500),      # gold partners, level 1: 15 %
    Rate("gold", 1, "wine", "first", 4000),  # gold partners, wine, first order: 40 %
    Rate("*", 2, "wine", "repeat", 800),    # wine re-orders, level 2: 8 %
)


@pytest.mark.parametrize("grade, level, category, is_first, bps", [
    ("", 1, "food", False, 1000),       # nothing special: the base rate
    ("", 1, "food", True, 2000),        # a first order beats the base rate
    ("", 1, "wine", False, 3000),       # a category beats the base rate
    ("", 1, "wine", True, 3000),        # ... and beats first/repeat
    ("gold", 1, "food", False, 1500),   # a grade beats the base rate
    ("gold", 1, "food", True, 1500),    # ... beats first/repeat
    ("gold", 1, "wine", False, 1500),   # ... and beats a category
    ("gold", 1, "wine", True, 4000),    # grade + category + first order: the most specific of all
    ("silver", 1, "food", False, 1000),  # a grade with no rate of its own falls back to everyone's
    ("", 2, "food", False, 500),        # level 2 has its own rates
    ("", 2, "wine", False, 800),        # a wine re-order at level 2
    ("", 2, "wine", True, 500),         # a repeat-only rate does not apply to a first order
    ("gold", 2, "food", False, 500),    # gold's level-1 rate is not a level-2 rate
])
def test_the_most_specific_matching_rate_applies(grade, level, category, is_first, bps):
    assert resolve_bps(PLAN, grade, level, category, is_first) == bps


def test_no_matching_rate_pays_nothing():
    assert resolve_bps(PLAN, "gold", 3, "wine", True) == 0  # there is no level 3
    assert resolve_bps((), "", 1, "food", False) == 0  # an empty plan
    assert resolve_bps((Rate("*", 1, "wine", "any", 3000),), "", 1, "food", False) == 0


def test_a_gold_partner_earns_40_percent_of_a_first_wine_order_rounded_down():
    assert commission_fen(9999, resolve_bps(PLAN, "gold", 1, "wine", True)) == 3999  # 3999.6 fen


# -- earners: who earns on an order (at most two levels) ----------------------------------------------------------

def m(id_, partner=True, active=True, flagged=False, grade=""):
    return ChainMember(id_, active, partner, grade, flagged)


BUYER, BUYER_PARTNER = m(1, partner=False), m(1)
REF, RR = m(2), m(3)


@pytest.mark.parametrize("buyer, referrer, referrers_referrer, self_purchase, expected", [
    (BUYER, REF, RR, False, [(1, 2), (2, 3)]),                    # the buyer's referrer, then theirs
    (BUYER, REF, None, False, [(1, 2)]),                          # no second level above
    (BUYER, None, None, False, []),                               # an unreferred buyer pays nobody
    (BUYER, m(2, partner=False), RR, False, [(2, 3)]),            # a consumer referrer earns nothing ...
    (BUYER, REF, m(3, partner=False), False, [(1, 2)]),           # ... at either level
    (BUYER, m(2, active=False), RR, False, [(2, 3)]),             # nor does an inactive (merged, banned) one
    (BUYER, m(2, partner=False), m(3, partner=False), False, []),  # nothing is passed further up
    (BUYER, m(2, flagged=True), RR, False, [(1, 2), (2, 3)]),     # a fraud flag holds the money, it still accrues
    (BUYER_PARTNER, REF, RR, True, [(1, 1), (2, 2)]),             # self-purchase: the partner buyer is level 1
    (BUYER_PARTNER, REF, RR, False, [(1, 2), (2, 3)]),            # self-purchase off: the usual two levels
    (BUYER, REF, RR, True, [(1, 2), (2, 3)]),                     # self-purchase on, but the buyer is no partner
    (m(1, active=False), REF, RR, True, [(1, 2), (2, 3)]),        # ... or not active
    (BUYER_PARTNER, m(2, partner=False), RR, True, [(1, 1)]),     # self-purchase never reaches a third member
    (BUYER, REF, REF, False, [(1, 2)]),                           # one member at both levels earns once
    (BUYER_PARTNER, REF, BUYER_PARTNER, False, [(1, 2)]),         # a buyer never earns level 2 on their own order
])
def test_who_earns_on_an_order(buyer, referrer, referrers_referrer, self_purchase, expected):
    got = earners(buyer, referrer, referrers_referrer, self_purchase)
    assert [(level, member.id) for level, member in got] == expected


# -- remaining_after_refunds: what is left of a commission after refunds of its order ----------------------------

@pytest.mark.parametrize("amount_fen, paid_fen, refunded_fen, left", [
    (1000, 10000, 0, 1000),       # no refund
    (1000, 10000, 2500, 750),     # a quarter refunded: a quarter reversed
    (99, 999, 333, 66),           # floor(99 × 666 / 999)
    (49, 999, 333, 32),           # floor(49 × 666 / 999) = 32.67
    (99, 999, 666, 33),           # two partial refunds reverse what one of their total would
    (99, 999, 999, 0),            # a full refund reverses everything
    (0, 0, 0, 0),                 # a free order
])
def test_a_refund_reverses_the_refunded_share_of_the_commission(amount_fen, paid_fen, refunded_fen, left):
    assert remaining_after_refunds(amount_fen, paid_fen, refunded_fen) == left


@pytest.mark.parametrize("refunded_fen", [-1, 10001])
def test_refunds_outside_the_paid_amount_are_refused(refunded_fen):
    with pytest.raises(ValueError):
        remaining_after_refunds(1000, 10000, refunded_fen)


# -- the state table ---------------------------------------------------------------------------------------------

LEGAL = {
    ("pending", "mature"): "available",       # hold period over: the partner can withdraw it
    ("pending", "hold"): "held",              # a fraud flag on the earner
    ("held", "release"): "pending",           # the flag dismissed
    ("pending", "reverse_all"): "reversed",   # the order refunded in full ...
    ("held", "reverse_all"): "reversed",
    ("available", "reverse_all"): "reversed",  # ... even after it matured (the balance may go negative)
    ("pending", "cancel"): "canceled",        # confirmed fraud
    ("held", "cancel"): "canceled",
    ("available", "cancel"): "canceled",
}
ACTIONS = ("mature", "hold", "release", "reverse_all", "cancel")


@pytest.mark.parametrize("state, action", sorted(LEGAL))
def test_legal_moves(state, action):
    assert transition(state, action) == LEGAL[(state, action)]


@pytest.mark.parametrize("state, action", [p for p in product(COMMISSION_STATES, ACTIONS) if p not in LEGAL])
def test_every_other_move_is_refused(state, action):
    # e.g. a held commission never matures, a reversed or canceled one never moves again
    with pytest.raises(IllegalTransition) as refused:
        transition(state, action)
    assert (refused.value.state, refused.value.move) == (state, action)
    assert str(refused.value) == f"a {state} commission cannot be {action}"


@pytest.mark.parametrize("state, account", [
    ("pending", "pending"), ("held", "pending"), ("available", "available"), ("reversed", None), ("canceled", None)])
def test_where_a_commissions_money_sits_in_each_state(state, account):
    assert money_account_for(state) == account
