"""Batches of shop events (`ingest_order_events`, the webhook's `{"events": [...]}` body): the set-based path must
settle exactly as the one-event path does, and each refused event must change nothing while the others apply."""
import json
import random
import time

import pytest
from sqlalchemy import func, select, text

from app.commissions.models import Commission
from app.db import Base
from app.ledger.service import check_ledger, member_balances
from app.members.models import Identity, Member
from app.orders.models import Order
from app.orders.service import ingest_order_event, ingest_order_events
from app.orders.signing import sign
from app.referrals import binding, codes
from app.referrals.saved_rules import update_rules
from tests.conftest import empty_tables
from tests.factories import completed, days_ago, paid, refunded
from tests.racing import Background, errors, in_transaction, race

SETTLEMENT_TABLES = ("journal_lines", "journal_entries", "ledger_accounts", "commissions", "order_refunds",
                     "order_lines", "parked_order_events", "orders")


def outcome(session):
    """What a partner and an accountant would see: each order's first-order flag and commissions, every balance."""
    session.expire_all()
    orders = {o.shop_order_id: (o.buyer_id, o.is_first_order, o.status, o.refunded_fen)
              for o in session.scalars(select(Order))}
    by_order = {}
    for shop_id, level, earner, amount, reversed_fen, state, grade in session.execute(text(
            "SELECT o.shop_order_id, c.level, c.earner_id, c.amount_fen, c.reversed_fen, c.state, c.grade "
            "FROM commissions c JOIN orders o ON o.id = c.order_id ORDER BY 1, 2")):
        by_order.setdefault(shop_id, []).append((level, earner, amount, reversed_fen, state, grade))
    balances = dict(session.execute(text("SELECT code, balance_fen FROM ledger_accounts WHERE balance_fen <> 0")).all())
    return orders, by_order, balances


@pytest.mark.sqlite
def test_a_batch_settles_exactly_like_the_same_events_one_by_one(rt, session, world):
    rng = random.Random(5)
    world.plan(rates=[{"level": 1, "bps": 1000}, {"level": 2, "bps": 300},
                      {"level": 1, "bps": 1500, "category": "wine"}, {"level": 1, "bps": 1200, "order_kind": "first"}],
               self_purchase=True)
    partners_ = [world.member(f"p{i}", partner=True) for i in range(6)]
    for i, p in enumerate(partners_[1:], 1):
        p.referrer_id = partners_[rng.randrange(i)].id
    buyers = [world.member(f"b{i}", referrer=rng.choice(partners_)) for i in range(12)]
    session.commit()
    people = [world.unionid(m) for m in buyers + partners_[:2]]
    events, paid_ids = [], []
    for n in range(80):
        roll = rng.random()
        if roll < 0.6 or not paid_ids:
            who = {"mini_openid": f"walk-in-{n % 5}"} if rng.random() < 0.1 else {"unionid": rng.choice(people)}
            oid = f"SO{n}"
            events.append({"event": "paid", "order_id": oid, "buyer": who, "occurred_at": days_ago(3),
                           "lines": [{"product_id": f"P{k}", "category": rng.choice(["", "wine"]), "quantity": 1,
                                      "paid_fen": rng.randint(1, 30000)} for k in range(rng.randint(1, 3))]})
            paid_ids.append(oid)
        elif roll < 0.75:
            events.append(events[rng.randrange(len(events))])  # a redelivery
        elif roll < 0.9:
            events.append(completed(rng.choice(paid_ids), days_ago(2)))
        else:
            events.append(refunded(rng.choice(paid_ids), f"R{n}", rng.randint(1, 5000)))

    singles = []
    for e in events:
        try:
            with session.begin_nested():
                singles.append(ingest_order_event(session, e)["status"])
        except Exception as err:  # noqa: BLE001 - refusals are part of the outcome
            singles.append(getattr(err, "code", repr(err)))
    session.commit()
    one_by_one = outcome(session)
    assert check_ledger(session).ok

    session.commit()  # ends the reads above: emptying the tables waits for no lock of ours
    empty_tables(rt.engine, [Base.metadata.tables[t] for t in SETTLEMENT_TABLES])
    session.info.clear()  # forgets the account ids this session cached: the accounts were just deleted
    batched = []
    for start in range(0, len(events), 17):
        batched += [r["status"] if r["status"] != "rejected" else r["error"]["code"]
                    for r in ingest_order_events(session, events[start:start + 17])]
        session.commit()
    assert outcome(session) == one_by_one
    assert batched == singles
    assert check_ledger(session).ok
    assert sum(1 for o in one_by_one[0].values() if o[1]) >= 5  # the data did exercise first orders


@pytest.mark.sqlite
def test_only_the_first_of_one_buyers_orders_in_a_batch_is_a_first_order(session, world):
    _, parent, buyer = world.chain()
    world.plan(rates=[{"level": 1, "bps": 1000}, {"level": 1, "bps": 2000, "order_kind": "first"}])
    session.commit()
    results = ingest_order_events(session, [paid(f"SO{i}", world.unionid(buyer), 10000) for i in range(3)])
    session.commit()
    assert [r["is_first_order"] for r in results] == [True, False, False]
    assert [r["commissions"][0]["amount_fen"] for r in results] == [2000, 1000, 1000]
    assert member_balances(session, parent.id)["pending"] == 4000


@pytest.mark.sqlite
def test_a_whole_order_life_in_one_batch_applies_paid_first(session, world):
    _, parent, buyer = world.chain()
    world.plan(hold_days=0)
    session.commit()
    u = world.unionid(buyer)
    results = ingest_order_events(session, [completed("SO1", days_ago(1)), refunded("SO1", "R1", 5000),
                                            paid("SO1", u, 10000, at=days_ago(2))])
    session.commit()
    assert [r["status"] for r in results] == ["applied", "applied", "applied"]
    level1 = session.scalar(select(Commission).where(Commission.earner_id == parent.id))
    assert (level1.amount_fen, level1.reversed_fen) == (1000, 500)
    assert member_balances(session, parent.id)["pending"] == 500
    assert check_ledger(session).ok


@pytest.mark.sqlite
def test_refused_events_change_nothing_and_the_rest_of_the_batch_applies(session, world):
    _, parent, buyer = world.chain()
    world.plan()
    session.commit()
    u = world.unionid(buyer)
    ingest_order_event(session, paid("OLD", u, 10000))
    session.commit()
    bad_amount = paid("SO2", u, 100)
    bad_amount["lines"][0]["paid_fen"] = 100.5
    bad_quantity = paid("SO3", u, 100)
    bad_quantity["lines"][0]["quantity"] = 10 ** 30  # beyond any integer column: refused, not a database error
    results = ingest_order_events(session, [
        paid("SO1", u, 20000),
        bad_amount,
        bad_quantity,
        paid("OLD", u, 99999),             # same order id, other lines: a conflict, not a replay
        paid("SO1", u, 20000),             # its twin in the same batch: a replay
        refunded("SO1", "R1", 30000),      # above the paid amount
        refunded("NOPE", "R1", 100),       # never paid
        "not an event",
    ])
    session.commit()
    statuses = [r["status"] if r["status"] != "rejected" else r["error"]["code"] for r in results]
    assert statuses == ["applied", "amount_not_integer", "order_event_invalid", "order_event_conflict", "duplicate",
                        "refund_exceeds_paid", "order_not_found", "order_event_invalid"]
    assert results[5]["error"]["status"] == 422 and results[5]["error"]["message"]
    session.expire_all()
    assert session.scalar(select(Order.refunded_fen).where(Order.shop_order_id == "SO1")) == 0
    assert session.scalar(select(Order).where(Order.shop_order_id == "SO2")) is None
    assert session.scalar(select(Order).where(Order.shop_order_id == "SO3")) is None
    assert member_balances(session, parent.id)["pending"] == 3000  # 10 % of 10,000 + 20,000
    assert check_ledger(session).ok


@pytest.mark.sqlite
def test_new_buyers_and_remembered_touches_in_a_batch(session, world):
    world.plan()
    update_rules(session, {"when": "first_purchase"})
    partner = world.member("P", partner=True)
    code = codes.ensure_personal_code(session, partner.id)
    remembered = world.member("B", unionid="u-remembered")
    assert binding.touch(session, scene=code.scene, member_id=remembered.id, channel="oa_scan").outcome == "pending"
    session.commit()
    results = ingest_order_events(session, [
        paid("SO1", None, 500, mini_openid="o-walk-in"), paid("SO2", "u-remembered", 10_000),
        paid("SO3", None, 700, mini_openid="o-walk-in")])
    session.commit()
    assert [r["status"] for r in results] == ["applied"] * 3
    walk_in = session.scalar(select(Identity.member_id).where(Identity.value == "o-walk-in"))
    assert results[0]["buyer_id"] == results[2]["buyer_id"] == walk_in
    assert [results[0]["is_first_order"], results[2]["is_first_order"]] == [True, False]
    assert session.get(Member, remembered.id).referrer_id == partner.id
    assert results[1]["commissions"] == [{"id": results[1]["commissions"][0]["id"], "level": 1,
                                          "earner_id": partner.id, "amount_fen": 1000, "state": "pending"}]


def test_concurrent_batches_sharing_buyers_settle_each_order_once(rt, session, world):
    grand, parent, _ = world.chain()
    world.plan(rates=[{"level": 1, "bps": 1000}, {"level": 2, "bps": 500},
                      {"level": 1, "bps": 2000, "order_kind": "first"}])
    buyers = [world.member(f"b{i}", referrer=parent) for i in range(8)]
    session.commit()
    ids = [world.unionid(b) for b in buyers]
    rng = random.Random(9)
    orders = [paid(f"SO{n}", rng.choice(ids), 1000) for n in range(120)]
    batches = [rng.sample(orders, 40) for _ in range(6)]  # every order delivered by several racing batches

    def deliver(i):
        with rt.sessions() as s:
            for _attempt in range(5):
                try:
                    ingest_order_events(s, batches[i])
                    s.commit()
                    return
                except Exception as err:  # noqa: BLE001 - a deadlock aborts one side; the webhook retries it
                    s.rollback()
                    if "deadlock" not in str(err):
                        raise

    assert not errors(race(len(batches), deliver))
    session.expire_all()
    delivered = {e["order_id"] for b in batches for e in b}
    assert session.execute(text("SELECT COUNT(*) FROM orders")).scalar() == len(delivered)
    assert session.execute(text("SELECT COUNT(*) FROM commissions")).scalar() == 2 * len(delivered)
    firsts = session.execute(text("SELECT buyer_id, COUNT(*) FROM orders WHERE is_first_order GROUP BY 1")).all()
    assert all(n == 1 for _, n in firsts)
    assert len(firsts) == len({e["buyer"]["unionid"] for b in batches for e in b})
    assert member_balances(session, grand.id)["pending"] == 50 * len(delivered)
    assert check_ledger(session).ok


def _post(client, rt, body):
    raw = json.dumps(body).encode()
    ts = int(time.time())
    return client.post("/hooks/shop/orders", data=raw, content_type="application/json",
                       headers={"X-Liebian-Timestamp": str(ts),
                                "X-Liebian-Signature": sign(rt.settings.shop_webhook_secret, ts, raw)})


@pytest.mark.sqlite
def test_the_webhook_takes_a_signed_batch_and_answers_per_event(client, rt, session, world):
    _, parent, buyer = world.chain()
    world.plan()
    session.commit()
    u = world.unionid(buyer)
    resp = _post(client, rt, {"events": [paid("SO1", u, 10000), completed("SO9"), refunded("SO1", "R1", 10**6)]})
    assert resp.status_code == 200
    results = resp.get_json()["results"]
    assert [r["status"] for r in results] == ["applied", "parked", "rejected"]
    assert results[2]["error"]["code"] == "refund_exceeds_paid"
    session.expire_all()
    assert member_balances(session, parent.id)["pending"] == 1000

    too_many = _post(client, rt, {"events": [completed(f"X{i}") for i in range(201)]})
    assert too_many.status_code == 422 and too_many.get_json()["code"] == "order_batch_invalid"
    empty = _post(client, rt, {"events": []})
    assert empty.status_code == 422 and empty.get_json()["code"] == "order_batch_invalid"


def test_the_webhook_retries_a_batch_postgresql_aborted_as_a_deadlock_and_applies_it_once(client, rt, session, world,
                                                                                        monkeypatch):
    from sqlalchemy.exc import OperationalError

    import app.api.hooks_orders as hooks

    _, parent, buyer = world.chain()
    world.plan()
    session.commit()
    real, calls = hooks.ingest_order_events, []

    class Deadlock(Exception):
        sqlstate = "40P01"

    def flaky(s, events):
        calls.append(1)
        if len(calls) == 1:
            real(s, events)  # writes, then PostgreSQL aborts the transaction: the handler must roll it back
            raise OperationalError("INSERT ...", {}, Deadlock("deadlock detected"))
        return real(s, events)

    monkeypatch.setattr(hooks, "ingest_order_events", flaky)
    resp = _post(client, rt, {"events": [paid("SO1", world.unionid(buyer), 10000)]})
    assert resp.status_code == 200 and resp.get_json()["results"][0]["status"] == "applied"
    assert len(calls) == 2
    session.expire_all()
    assert session.execute(text("SELECT COUNT(*) FROM orders")).scalar() == 1
    assert member_balances(session, parent.id)["pending"] == 1000
    assert check_ledger(session).ok


@pytest.mark.sqlite
def test_first_seen_buyers_in_a_batch_become_one_member_each(session, world):
    world.plan()
    known = world.member("K", unionid="u-known")
    session.commit()
    before = session.scalar(select(func.count()).select_from(Member))
    results = ingest_order_events(session, [
        paid("SO1", "u-new", 100), paid("SO2", None, 200, unionid="u-both", mini_openid="m-both"),
        paid("SO3", "u-new", 300), paid("SO4", "u-known", 400),
        paid("SO5", None, 500, mini_openid="m-shared"),  # these two overlap without being the same identities:
        paid("SO6", None, 600, mini_openid="m-shared", oa_openid="oa-shared"),  # the first one's member buys again
    ])
    session.commit()
    assert [r["status"] for r in results] == ["applied"] * 6
    owner = dict(session.execute(select(Identity.value, Identity.member_id)).all())
    buyer = {r["shop_order_id"]: r["buyer_id"] for r in results}
    assert buyer["SO1"] == buyer["SO3"] == owner["u-new"]
    assert buyer["SO2"] == owner["u-both"] == owner["m-both"]
    assert buyer["SO4"] == known.id
    assert buyer["SO5"] == buyer["SO6"] == owner["m-shared"]
    assert session.scalar(select(func.count()).select_from(Member)) == before + 3
    assert [r["is_first_order"] for r in results] == [True, True, False, True, True, False]


def test_a_new_buyer_another_order_is_creating_is_found_not_duplicated(rt, session, world):
    world.plan()
    session.commit()
    before = session.scalar(select(func.count()).select_from(Member))
    first = rt.sessions()
    ingest_order_event(first, paid("SO-A", "u-race", 100))  # creates the buyer, not committed yet
    batch = Background(in_transaction(rt, lambda s: ingest_order_events(s, [
        paid("SO-B", "u-race", 200), paid("SO-C", "u-other", 300)])))
    time.sleep(1.0)  # the batch is creating the same buyer and waits on the identity's unique index
    first.commit()
    first.close()
    results = batch.result(timeout=20)
    assert [r["status"] for r in results] == ["applied", "applied"]
    owner = dict(session.execute(select(Identity.value, Identity.member_id)).all())
    a = session.scalar(select(Order.buyer_id).where(Order.shop_order_id == "SO-A"))
    assert results[0]["buyer_id"] == a == owner["u-race"] and results[0]["is_first_order"] is False
    assert results[1]["buyer_id"] == owner["u-other"] and results[1]["is_first_order"] is True
    assert session.scalar(select(func.count()).select_from(Member)) == before + 2  # nothing left of the undone try
    assert check_ledger(session).ok


def test_batches_creating_the_same_new_buyers_in_opposite_orders_never_deadlock(rt, session, world):
    world.plan()
    session.commit()
    for round_ in range(8):
        a, b = f"u-a{round_}", f"u-b{round_}"
        batches = [[paid(f"SO{round_}-1a", a, 100), paid(f"SO{round_}-1b", b, 100)],
                   [paid(f"SO{round_}-2b", b, 100), paid(f"SO{round_}-2a", a, 100)]]
        outcomes = race(2, lambda i, batches=batches: in_transaction(rt, ingest_order_events)(batches[i]))
        assert not errors(outcomes), errors(outcomes)  # a deadlock would abort one batch
        owner = dict(session.execute(select(Identity.value, Identity.member_id)
                                     .where(Identity.value.in_([a, b]))).all())
        assert {r["buyer_id"] for r in outcomes[0] + outcomes[1] if r["shop_order_id"].endswith("a")} == {owner[a]}
        assert {r["buyer_id"] for r in outcomes[0] + outcomes[1] if r["shop_order_id"].endswith("b")} == {owner[b]}
