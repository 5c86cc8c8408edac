"""An order paid while its level-2 referrer is being merged pays the survivor, never the merged-away member."""
import time
from datetime import timedelta

from sqlalchemy import select

from app.commissions.models import Commission
from app.commissions.plans import create_plan
from app.db import utcnow
from app.ledger.service import check_ledger, member_balances
from app.members.merge import merge_members
from app.orders.service import ingest_order_event
from tests.factories import make_member, make_partner
from tests.racing import Background, in_transaction


def test_order_racing_a_merge_of_its_referrer_pays_the_survivor(rt, session):
    create_plan(session, rates=[{"level": 1, "bps": 1000}, {"level": 2, "bps": 500}],
                effective_from=utcnow() - timedelta(days=1), allow_backdating=True)
    kept = make_partner(session, "K")  # older: survives the merge
    merged = make_partner(session, "M")  # the level-2 referrer
    r = make_partner(session, "R", referrer=merged)
    make_member(session, "B", referrer=r, oa_openid="buyer-oa")
    session.commit()

    merging = rt.sessions()
    merge_members(merging, kept.id, merged.id, evidence="unionid")  # holds the members' rows, not committed yet
    pay = in_transaction(rt, lambda s: ingest_order_event(s, {
        "event": "paid", "order_id": "o1", "buyer": {"oa_openid": "buyer-oa"},
        "lines": [{"product_id": "p", "quantity": 1, "paid_fen": 10000}]}))
    payer = Background(pay)
    time.sleep(1.0)  # the payment has read the old chain and is waiting on the merge's locks
    merging.commit()
    merging.close()
    assert payer.result(timeout=20)["status"] == "applied"
    earners = {c.level: c.earner_id for c in session.scalars(select(Commission))}
    assert earners == {1: r.id, 2: kept.id}
    assert all(v == 0 for v in member_balances(session, merged.id).values())
    assert check_ledger(session).ok
