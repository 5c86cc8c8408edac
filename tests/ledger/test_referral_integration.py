"""Referrals and orders together: bind-at-first-purchase, and the store's first-order figures."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.commissions.models import Commission
from app.db import utcnow
from app.members.models import Member
from app.orders.service import ingest_order_event
from app.referrals import binding, codes, stores
from app.referrals.saved_rules import update_rules
from tests.factories import paid
from app.reports import stores as stores_report

pytestmark = pytest.mark.sqlite  # also runs on SQLite (embedded mode): LIEBIAN_TEST_DB=sqlite


def test_with_bind_at_first_purchase_the_first_order_binds_and_pays_the_referrer(session, world):
    world.plan()
    update_rules(session, {"when": "first_purchase"})
    partner = world.member("P", partner=True)
    code = codes.ensure_personal_code(session, partner.id)
    buyer = world.member("B", unionid="u-buyer")
    assert binding.touch(session, scene=code.scene, member_id=buyer.id, channel="oa_scan").outcome == "pending"
    session.commit()
    ingest_order_event(session, paid("o-1", "u-buyer", 10_000))
    session.commit()
    assert session.scalar(select(Member.referrer_id).where(Member.id == buyer.id)) == partner.id
    earned = session.scalar(select(Commission).where(Commission.earner_id == partner.id))
    assert earned is not None and earned.level == 1 and earned.amount_fen == 1_000


def test_store_figures_count_first_orders_of_customers_the_clerk_won(session, world):
    world.plan()
    shop = stores.create_store(session, "S")
    clerk = world.member("C")
    stores.assign_staff(session, clerk.id, shop.id, "clerk")
    code = codes.ensure_personal_code(session, clerk.id)
    buyers = [world.member(f"b{i}", unionid=f"u-{i}") for i in range(3)]
    for b in buyers:
        binding.touch(session, scene=code.scene, member_id=b.id, channel="oa_subscribe")
    session.commit()
    ingest_order_event(session, paid("o-a", "u-0", 5_000))
    ingest_order_event(session, paid("o-b", "u-0", 5_000))  # a repeat order is not a first order
    ingest_order_event(session, paid("o-c", "u-1", 5_000))
    session.commit()
    figures = stores_report.store_figures(session, shop.id, utcnow() - timedelta(days=1))
    assert [(f["clerk_id"], f["new_customers"], f["first_orders"]) for f in figures] == [(clerk.id, 3, 2)]
