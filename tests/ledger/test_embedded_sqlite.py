"""Embedded mode (`make run`: SQLite, no PostgreSQL) settles orders through the same services."""
from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from app.commissions.plans import create_plan
from app.commissions.service import mature_due_commissions
from app.db import import_all_models, make_engine, make_session_factory
from app.ledger.service import check_ledger, member_balances
from app.members.models import Identity, Member, MemberRole
from app.migrate import upgrade_database
from app.orders.service import ingest_order_event
from tests.ledger.conftest import completed, days_ago, paid, refunded


def test_the_order_lifecycle_works_on_sqlite(rt, tmp_path):
    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    upgrade_database(url)
    import_all_models()
    engine = make_engine(url)
    s = make_session_factory(engine)()
    grand = Member(nickname="grand")
    s.add(grand)
    s.flush()
    parent = Member(nickname="parent", referrer_id=grand.id)
    s.add(parent)
    s.flush()
    buyer = Member(nickname="buyer", referrer_id=parent.id)
    s.add(buyer)
    s.flush()
    s.add_all([MemberRole(member_id=grand.id, role="partner"), MemberRole(member_id=parent.id, role="partner"),
               Identity(member_id=buyer.id, kind="unionid", value="u-buyer")])
    create_plan(s, rates=[{"level": 1, "bps": 1000}, {"level": 2, "bps": 500}], hold_days=0,
                effective_from=datetime(2020, 1, 1, tzinfo=timezone.utc), allow_backdating=True)
    s.commit()
    ingest_order_event(s, paid("SO1", "u-buyer", 10000, at=days_ago(2)))
    assert ingest_order_event(s, paid("SO1", "u-buyer", 10000, at=days_ago(2)))["status"] == "duplicate"
    ingest_order_event(s, completed("SO1", at=days_ago(1)))
    ingest_order_event(s, refunded("SO1", "R1", 2500))
    s.commit()
    assert mature_due_commissions(s, now=datetime.now(timezone.utc) + timedelta(minutes=1)) == 2
    s.commit()
    assert member_balances(s, parent.id) == {"pending": 0, "available": 750, "withdrawing": 0}
    assert member_balances(s, grand.id)["available"] == 375
    assert check_ledger(s).ok
    assert s.execute(text("SELECT COUNT(*) FROM journal_entries")).scalar() == 6
    s.close()
    engine.dispose()
