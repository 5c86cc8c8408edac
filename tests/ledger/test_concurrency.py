"""Races with real threads, on PostgreSQL and on the embedded SQLite: duplicated deliveries commit once, nothing
is lost or doubled."""
import pytest
from sqlalchemy import select, text

from app.commissions.models import Commission
from app.errors import DomainError
from app.ledger.service import check_ledger, member_balances
from app.orders.models import Order
from app.orders.service import ingest_order_event
from tests.factories import completed, paid, refunded
from tests.racing import in_transaction, race

# On SQLite a locking read takes the database's write lock (app.db); before that, a completed delivery racing
# its paid was lost and racing refunds went past the paid amount there.
pytestmark = pytest.mark.sqlite


def deliver_at_once(rt, events):
    """Deliver events at the same instant from separate threads, each in its own transaction: each one's status,
    or the code of the domain error that refused it (any other exception is returned as is, failing the test)."""
    outcomes = race(len(events), in_transaction(rt, lambda s, i: ingest_order_event(s, events[i])["status"]))
    return [o.code if isinstance(o, DomainError) else o for o in outcomes]


def test_two_identical_paid_deliveries_racing_commit_once(rt, session, world):
    _, parent, buyer = world.chain()
    world.plan()
    session.commit()
    for n in range(5):
        results = deliver_at_once(rt, [paid(f"SO{n}", world.unionid(buyer), 10000)] * 2)
        assert sorted(results) == ["applied", "duplicate"]
    session.expire_all()
    assert session.execute(text("SELECT COUNT(*) FROM commissions")).scalar() == 10
    assert member_balances(session, parent.id)["pending"] == 5000
    assert check_ledger(session).ok


def test_a_new_buyers_first_orders_racing_create_one_member(rt, session, world):
    world.plan()
    session.commit()
    results = deliver_at_once(rt, [paid("SO1", None, 100, mini_openid="o-racer"),
                                   paid("SO2", None, 100, mini_openid="o-racer")])
    assert results == ["applied", "applied"]
    buyers = session.scalars(select(Order.buyer_id)).all()
    assert len(set(buyers)) == 1
    firsts = session.scalars(select(Order.is_first_order)).all()
    assert sorted(firsts) == [False, True]  # exactly one first order, even racing


def test_completed_racing_its_paid_is_never_lost(rt, session, world):
    _, _, buyer = world.chain()
    world.plan(hold_days=3)
    session.commit()
    for n in range(8):
        deliver_at_once(rt, [completed(f"SO{n}"), paid(f"SO{n}", world.unionid(buyer), 10000)])
    session.expire_all()
    assert set(session.scalars(select(Order.status)).all()) == {"completed"}
    assert session.scalar(select(Commission.id).where(Commission.mature_at.is_(None))) is None
    assert session.execute(text("SELECT COUNT(*) FROM parked_order_events")).scalar() == 0


def test_racing_refunds_never_exceed_the_paid_amount(rt, session, world):
    _, parent, buyer = world.chain()
    world.plan()
    session.commit()
    ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000))
    session.commit()
    results = deliver_at_once(rt, [refunded("SO1", "R1", 6000), refunded("SO1", "R2", 6000)])
    assert sorted(results) == ["applied", "refund_exceeds_paid"]
    session.expire_all()
    assert session.scalar(select(Order.refunded_fen)) == 6000
    assert member_balances(session, parent.id)["pending"] == 400
    assert check_ledger(session).ok


def test_many_orders_under_the_same_partners_in_parallel_never_deadlock(rt, session, world):
    """Every paid order touches the same hot platform account; foreign-key KEY SHARE locks on it must never
    meet a FOR UPDATE (that deadlocked before balance rows were locked FOR NO KEY UPDATE)."""
    _, parent, _ = world.chain()
    buyers = [world.member(f"b{i}", referrer=parent) for i in range(6)]
    world.plan()
    session.commit()
    for round_ in range(4):
        results = deliver_at_once(rt, [paid(f"SO{round_}-{i}", world.unionid(b), 1000 + i)
                                       for i, b in enumerate(buyers)])
        assert results == ["applied"] * len(buyers)
    session.expire_all()
    assert check_ledger(session).ok
    assert member_balances(session, parent.id)["pending"] == sum(100 for _ in range(24))
