"""Property: whatever the shop sends, in whatever order, however often, the books stay exact.

Random sequences of paid / completed / refunded events, replays, maturation runs and fraud flags, applied the way
the webhook applies them (each event in its own transaction, rolled back on error), always leave every entry
balanced, every cached balance equal to its derived sum, reversals exactly proportional, and no commission
beyond the buyer's second-level referrer."""
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select, text

from app.commissions.models import Commission
from app.commissions.rules import remaining_after_refunds
from app.commissions.service import cancel_commissions_for_fraud, mature_due_commissions, release_held_commissions
from app.errors import DomainError
from app.fraud.service import raise_flag
from app.ledger.service import check_ledger
from app.members.models import Member
from app.orders.models import Order
from app.orders.service import ingest_order_event
from tests.factories import completed, paid, refunded

pytestmark = pytest.mark.sqlite  # also runs on SQLite (embedded mode): LIEBIAN_TEST_DB=sqlite

ORDERS = st.sampled_from(["A", "B", "C", "D"])
STEP = st.one_of(
    st.tuples(st.just("paid"), ORDERS, st.integers(0, 4), st.lists(st.integers(0, 99999), min_size=1, max_size=3),
              st.sampled_from(["", "wine"])),
    st.tuples(st.just("completed"), ORDERS),
    st.tuples(st.just("refunded"), ORDERS, st.sampled_from(["R1", "R2", "R3"]), st.integers(1, 120000)),
    st.tuples(st.just("mature"), st.integers(0, 20)),
    st.tuples(st.just("replay"), st.integers(0, 40)),
    st.tuples(st.just("flag"), st.integers(0, 3)),
    st.tuples(st.just("resolve"), st.integers(0, 3), st.sampled_from(["dismissed", "confirmed"])),
)


def _members(world):
    top = world.member("top", partner=True)
    grand = world.member("grand", referrer=top, partner=True)
    parent = world.member("parent", referrer=grand, partner=True)
    buyer = world.member("buyer", referrer=parent)
    return [top, grand, parent, buyer]


def _apply(session, fn):
    """One webhook delivery / job run: its own savepoint, rolled back on a domain error."""
    try:
        with session.begin_nested():
            fn()
    except DomainError:
        pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, min_size=1, max_size=25))
def test_random_event_sequences_keep_the_books_exact(rt, world, steps):
    session = world.s
    try:
        members = _members(world)
        world.plan(rates=[{"level": 1, "bps": 1000}, {"level": 2, "bps": 500},
                          {"level": 1, "bps": 3333, "category": "wine"}], self_purchase=True, hold_days=7)
        delivered = []
        now = datetime.now(timezone.utc)
        for step in steps:
            kind = step[0]
            if kind == "paid":
                _, order, who, amounts, category = step
                buyer = world.unionid(members[who]) if who < 4 else None
                extra = {} if who < 4 else {"mini_openid": "o-walk-in"}
                event = paid(order, buyer, *amounts, category=category, **extra)
                if buyer is None:
                    event["buyer"].pop("unionid")
            elif kind == "completed":
                event = completed(step[1])
            elif kind == "refunded":
                event = refunded(step[1], step[2], step[3])
            elif kind == "replay":
                if not delivered:
                    continue
                event = delivered[step[1] % len(delivered)]
            elif kind == "mature":
                _apply(session, lambda d=step[1]: mature_due_commissions(session, now=now + timedelta(days=d)))
                continue
            elif kind == "flag":
                _apply(session, lambda m=members[step[1]]: raise_flag(session, m.id, "test"))
                continue
            else:
                member = members[step[1]]

                def resolve(member=member, outcome=step[2]):
                    session.execute(text("UPDATE risk_flags SET status = :s WHERE member_id = :m AND status = 'open'"),
                                    {"s": outcome, "m": member.id})
                    if outcome == "confirmed":
                        cancel_commissions_for_fraud(session, member.id)
                    else:
                        release_held_commissions(session, member.id)

                _apply(session, resolve)
                continue
            delivered.append(event)
            _apply(session, lambda e=event: ingest_order_event(session, e))

        report = check_ledger(session)
        assert report.ok, report.as_dict()
        orders = {o.id: o for o in session.scalars(select(Order))}
        for c in session.scalars(select(Commission)):
            order = orders[c.order_id]
            assert c.level in (1, 2)
            # earner is the buyer (self-purchase, level 1) or within two referral steps above them
            chain, m = [], session.get(Member, order.buyer_id)
            for _ in range(2):
                m = session.get(Member, m.referrer_id) if m and m.referrer_id else None
                chain.append(m.id if m else None)
            assert c.earner_id in ({order.buyer_id, chain[0]} if c.level == 1 else {chain[0], chain[1]})
            assert 0 <= c.reversed_fen <= c.amount_fen
            if c.state != "canceled":
                expected = c.amount_fen - remaining_after_refunds(c.amount_fen, order.paid_fen, order.refunded_fen)
                assert c.reversed_fen == expected
        assert session.execute(text(
            "SELECT COUNT(*) FROM commissions GROUP BY order_id HAVING COUNT(*) > 2")).first() is None
        assert all(o.refunded_fen <= o.paid_fen for o in orders.values())
    finally:
        session.rollback()
        session.execute(text("DELETE FROM risk_flags"))
        session.commit()
