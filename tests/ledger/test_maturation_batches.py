"""Maturation posts one entry per earner and batch; every commission points at the entry that matured it."""
import pytest
from sqlalchemy import func, select

from app.commissions.models import Commission
from app.commissions.service import mature_due_commissions
from app.ledger.models import JournalEntry, JournalLine
from app.ledger.service import check_ledger, member_balances
from app.orders.service import ingest_order_event
from tests.factories import completed, days_ago, paid, refunded

pytestmark = pytest.mark.sqlite  # also runs on SQLite (embedded mode): LIEBIAN_TEST_DB=sqlite


def test_one_entry_per_earner_and_batch_linked_from_each_commission_and_never_twice(session, world):
    grand, parent, buyer = world.chain()
    world.plan(l1=1000, l2=500, hold_days=0)
    for n, amount in enumerate((10000, 20000, 30000), 1):
        ingest_order_event(session, paid(f"SO{n}", world.unionid(buyer), amount, at=days_ago(2)))
        ingest_order_event(session, completed(f"SO{n}", at=days_ago(1)))
    ingest_order_event(session, refunded("SO3", "R1", 15000))  # half of SO3: its commissions net half

    assert mature_due_commissions(session) == 6
    entries = session.scalars(select(JournalEntry).where(JournalEntry.kind == "commission_matured")
                              .order_by(JournalEntry.key)).all()
    first = session.scalar(select(func.min(Commission.id)))
    assert sorted(e.key for e in entries) == sorted([f"maturation:{first}:{parent.id}",
                                                     f"maturation:{first}:{grand.id}"])
    for member, expected in ((parent, 1000 + 2000 + 1500), (grand, 500 + 1000 + 750)):
        entry = next(e for e in entries if e.key.endswith(f":{member.id}"))
        lines = session.scalars(select(JournalLine.amount_fen).where(JournalLine.entry_id == entry.id)).all()
        assert sorted(lines) == [-expected, expected]
        linked = session.scalars(select(Commission.mature_entry_id).where(Commission.earner_id == member.id)).all()
        assert linked == [entry.id] * 3
        assert member_balances(session, member.id) == {"pending": 0, "available": expected, "withdrawing": 0}

    assert mature_due_commissions(session) == 0  # a re-run matures nothing twice
    assert session.scalar(select(func.count()).select_from(JournalEntry)
                          .where(JournalEntry.kind == "commission_matured")) == 2
    report = check_ledger(session)
    assert report.ok, report.as_dict()


def test_small_batches_post_separate_entries_that_add_up(session, world):
    grand, parent, buyer = world.chain()
    world.plan(l1=1000, l2=0, hold_days=0)
    for n in range(1, 6):
        ingest_order_event(session, paid(f"SO{n}", world.unionid(buyer), 1000 * n, at=days_ago(2)))
        ingest_order_event(session, completed(f"SO{n}", at=days_ago(1)))
    matured = []
    while (n := mature_due_commissions(session, batch_size=2)):
        matured.append(n)
    assert matured == [2, 2, 1]
    assert session.scalar(select(func.count()).select_from(JournalEntry)
                          .where(JournalEntry.kind == "commission_matured")) == 3
    assert member_balances(session, parent.id) == {"pending": 0, "available": 1500, "withdrawing": 0}
    assert session.scalar(select(func.count()).select_from(Commission)
                          .where(Commission.mature_entry_id.is_(None))) == 0
    report = check_ledger(session)
    assert report.ok, report.as_dict()
