"""Maturation on PostgreSQL: rows a concurrent refund holds are skipped and matured by the next run; the ledger check
holds the commission -> maturation entry link (the column has no foreign key)."""
import pytest
from sqlalchemy import func, select, text

from app.commissions.models import Commission
from app.commissions.service import mature_due_commissions
from app.ledger.models import JournalEntry
from app.ledger.service import check_ledger, member_balances
from app.orders.service import ingest_order_event
from tests.factories import completed, days_ago, paid


def _matured_orders(session, world, n=3, l2=500):
    grand, parent, buyer = world.chain()
    world.plan(l1=1000, l2=l2, hold_days=0)
    for i in range(1, n + 1):
        ingest_order_event(session, paid(f"SO{i}", world.unionid(buyer), 10000, at=days_ago(2)))
        ingest_order_event(session, completed(f"SO{i}", at=days_ago(1)))
    return grand, parent


def test_a_commission_locked_by_a_concurrent_refund_is_skipped_then_matured_by_the_next_run(rt, session, world):
    grand, parent = _matured_orders(session, world, n=3, l2=0)
    session.commit()
    first, locked_id = session.scalars(select(Commission.id).order_by(Commission.id).limit(2)).all()
    other = rt.sessions()
    try:
        # What a refund does before reversing: lock the commission row. Maturation must not wait for it.
        other.execute(text("SELECT id FROM commissions WHERE id = :id FOR UPDATE"), {"id": locked_id})
        assert mature_due_commissions(session) == 2
        session.commit()
        assert member_balances(session, parent.id) == {"pending": 1000, "available": 2000, "withdrawing": 0}
    finally:
        other.rollback()
        other.close()
    assert mature_due_commissions(session) == 1
    session.commit()
    assert session.get(Commission, locked_id).state == "available"
    keys = session.scalars(select(JournalEntry.key).where(JournalEntry.kind == "commission_matured")).all()
    assert sorted(keys) == sorted([f"maturation:{first}:{parent.id}", f"maturation:{locked_id}:{parent.id}"])
    assert member_balances(session, parent.id) == {"pending": 0, "available": 3000, "withdrawing": 0}
    assert mature_due_commissions(session) == 0
    report = check_ledger(session)
    assert report.ok, report.as_dict()


@pytest.mark.sqlite
def test_the_ledger_check_reports_a_matured_commission_whose_entry_link_is_broken(app, session, world):
    grand, parent = _matured_orders(session, world, n=2)
    assert mature_due_commissions(session) == 4
    assert check_ledger(session).ok
    c1, c2, c3 = session.scalars(select(Commission).where(Commission.earner_id == parent.id)
                                 .order_by(Commission.id)).all() + [
        session.scalar(select(Commission).where(Commission.earner_id == grand.id).order_by(Commission.id))]
    missing = (session.scalar(select(func.max(JournalEntry.id))) or 0) + 1000
    grand_entry = c3.mature_entry_id
    session.execute(text("UPDATE commissions SET mature_entry_id = :e WHERE id = :id"), {"e": missing, "id": c1.id})
    # the other earner's maturation entry: it exists, but it never credited this commission's earner
    session.execute(text("UPDATE commissions SET mature_entry_id = :e WHERE id = :id"), {"e": grand_entry, "id": c2.id})
    session.execute(text("UPDATE commissions SET mature_entry_id = NULL WHERE id = :id"), {"id": c3.id})
    report = check_ledger(session)
    assert not report.ok
    assert report.broken_maturation_links == sorted([
        {"commission_id": c1.id, "earner_id": parent.id, "state": "available", "mature_entry_id": missing},
        {"commission_id": c2.id, "earner_id": parent.id, "state": "available", "mature_entry_id": grand_entry},
        {"commission_id": c3.id, "earner_id": grand.id, "state": "available", "mature_entry_id": None},
    ], key=lambda r: r["commission_id"])
    assert report.as_dict()["broken_maturation_links"] == report.broken_maturation_links
    # balances themselves are still right: only the link is what is wrong
    assert not report.mismatched_accounts and not report.unbalanced_entries and not report.pending_mismatches

    session.commit()
    from click.testing import CliRunner

    from app.ledger.cli import register_ledger_cli

    if "ledger" not in app.cli.commands:
        register_ledger_cli(app)
    cli = CliRunner().invoke(app.cli, ["ledger", "check"])
    assert cli.exit_code == 1
    assert f"BROKEN LINK commission {c1.id} (available, earner {parent.id}) names maturation entry {missing}" \
        in cli.output
