"""Domain events and the one after-commit mechanism: nothing reaches RQ before the outermost commit, savepoints
behave, every subscriber runs at least once and applies once."""
from __future__ import annotations

import pytest
from rq import Queue
from sqlalchemy import func, select, text, update

from app.events import first_receipt, record, subscriber
from app.events.models import DomainEvent
from app.events.registry import remove_subscriber, subscribers_of
from app.events.service import DELIVER, deliver, load_event
from app.grades.service import create_grade, grade_history, grade_of
from app.orders.service import ingest_order_events
from app.outbox import emit, job
from app.outbox.models import OutboxMessage
from tests.conftest import outbox_due_now
from tests.factories import make_member, paid, refunded

pytestmark = pytest.mark.sqlite  # also runs on SQLite (embedded mode): LIEBIAN_TEST_DB=sqlite

ran: list[tuple] = []


@job("tests.remember")
def remember(rt, *args):
    ran.append(args)


@pytest.fixture(autouse=True)
def _clean():
    ran.clear()
    yield
    ran.clear()


def _queued(rt) -> int:
    return sum(Queue(q, connection=rt.redis).count for q in ("default", "posters", "payouts", "notifications"))


def test_a_released_savepoint_waits_for_the_outermost_commit(rt, session, work):
    with session.begin_nested():
        emit(session, "tests.remember", "inside")
    emit(session, "tests.remember", "outside")
    assert _queued(rt) == 0, "a released savepoint is not the commit"
    session.commit()
    assert _queued(rt) == 1  # one batch job carrying both rows
    work()
    assert sorted(ran) == [("inside",), ("outside",)]


def test_a_rolled_back_savepoint_forgets_its_rows_and_the_rest_still_goes(rt, session, work):
    emit(session, "tests.remember", "kept")
    with pytest.raises(RuntimeError):
        with session.begin_nested():
            emit(session, "tests.remember", "gone")
            record(session, "grade.changed", member_id=1, **{"from": None, "to": "gold"}, actor="test")
            raise RuntimeError("rejected")
    session.commit()
    work()
    assert ran == [("kept",)]
    assert session.scalar(select(func.count()).select_from(DomainEvent)) == 0
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_a_rolled_back_transaction_hands_nothing_to_rq(rt, session, work):
    emit(session, "tests.remember", "never")
    session.rollback()
    make_member(session)
    session.commit()
    assert _queued(rt) == 0
    work()
    assert ran == []


def test_a_batch_with_a_rejected_event_still_evaluates_the_grades_of_its_applied_events(rt, session, work, world):
    world.plan()
    create_grade(session, code="member", rank=0)
    create_grade(session, code="gold", rank=1, min_personal_sales_fen=100)
    buyer = world.member("buyer")
    results = ingest_order_events(session, [paid("SO1", world.unionid(buyer), 500), refunded("NOPE", "R1", 100)])
    assert [r["status"] for r in results] == ["applied", "rejected"]
    session.commit()
    work()
    session.expire_all()
    assert grade_of(session, buyer.id) == "gold"


@pytest.fixture
def flaky_subscriber(rt):
    """A subscriber that crashes on its first delivery, and records each application (exactly-once receipt)."""
    calls = {"n": 0, "applied": []}

    @subscriber("grade.changed", name="tests.flaky")
    def flaky(rt_, event):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("worker crashed")
        with rt_.session() as s:
            if first_receipt(s, "tests.flaky", event.id):
                calls["applied"].append(event.id)

    yield calls
    remove_subscriber("tests.flaky")


def test_a_crashing_subscriber_is_redriven_and_applies_once(rt, session, work, flaky_subscriber):
    event_id = record(session, "grade.changed", member_id=7, **{"from": None, "to": "gold"}, actor="test")
    session.commit()
    work(rounds=1)
    assert flaky_subscriber["applied"] == []  # crashed; the outbox keeps the delivery with a backoff
    outbox_due_now(session)
    session.commit()
    work()
    assert flaky_subscriber["applied"] == [event_id]
    deliver(rt, "tests.flaky", event_id)  # a replay (RQ's at-least-once, a sweep after a lost done marker)
    assert flaky_subscriber["applied"] == [event_id]
    assert flaky_subscriber["n"] == 3


def _state(session) -> dict:
    tables = ["member_grades", "grade_changes", "poster_renders", "event_receipts", "domain_events",
              "journal_entries", "journal_lines", "commissions", "members"]
    return {t: session.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in tables} | {
        "grades": sorted(session.execute(text("SELECT member_id, grade_code FROM member_grades")).all())}


def test_a_replayed_event_is_a_no_op_for_every_subscriber(rt, session, work, world):
    world.plan()
    create_grade(session, code="member", rank=0)
    create_grade(session, code="gold", rank=1, min_personal_sales_fen=100)
    _partner, _referrer, buyer = world.chain()
    world.member("new", partner=True)
    ingest_order_events(session, [paid("SO1", world.unionid(buyer), 500), refunded("SO1", "R1", 100)])
    session.commit()
    work()
    session.expire_all()
    assert grade_history(session, buyer.id)[-1]["to"] == "gold"
    before = _state(session)
    events = session.scalars(select(DomainEvent.id)).all()
    replayed = 0
    for event_id in events:
        event = load_event(session, event_id)
        for sub in subscribers_of(event.name):
            deliver(rt, sub.name, event_id)
            replayed += 1
    session.expire_all()
    assert replayed >= 3  # grades after paid and refunded, posters for the new partners
    assert _state(session) == before


def test_every_subscription_names_a_known_event_and_a_delivery_job():
    from app.outbox import resolve_job

    assert resolve_job(DELIVER).fn is deliver
    assert {s.name for s in subscribers_of("order.paid")} >= {"grades.after_order_paid"}
    assert {s.name for s in subscribers_of("partner.activated")} >= {"posters.prerender_new_partner"}


def test_old_events_receipts_and_finished_jobs_are_pruned_and_nothing_still_owed(rt, session):
    """events.prune: an event older than EVENTS_KEEP_DAYS goes with its receipts once its deliveries are done;
    one whose delivery is still to run, or was given up on, stays; finished outbox rows older than
    OUTBOX_KEEP_DAYS go, rows given up on and live rows stay; anything recent stays."""
    from datetime import timedelta

    from app.db import utcnow
    from app.events.jobs import prune
    from app.events.models import EventReceipt

    ids = [record(session, "grade.changed", member_id=i, **{"from": "", "to": "g"}) for i in range(1, 6)]
    done_job = emit(session, "tests.remember", "old and done", key="prune:done")
    dead_job = emit(session, "tests.remember", "old and given up", key="prune:dead")
    live_job = emit(session, "tests.remember", "old and owed", key="prune:live")
    session.commit()
    old, now = utcnow() - timedelta(days=100), utcnow()
    m = OutboxMessage
    deliveries = {int(args[1]): row_id for row_id, args in session.execute(
        select(m.id, m.args).where(m.func == DELIVER, m.args.is_not(None)))}
    old_events, owed, given_up, recent = ids[:2], ids[2], ids[3], ids[4]
    session.execute(update(DomainEvent).where(DomainEvent.id.in_(ids[:4])).values(occurred_at=old))
    session.execute(update(m).values(created_at=old, done_at=old))  # every row old and finished ...
    session.execute(update(m).where(m.id.in_([deliveries[owed], live_job])).values(done_at=None))  # ... but these
    session.execute(update(m).where(m.id.in_([deliveries[given_up], dead_job])).values(dead=True))
    session.execute(update(m).where(m.id == deliveries[recent]).values(created_at=now, done_at=now))
    session.add_all([EventReceipt(subscriber="notifications.grade_upgraded", event_id=i) for i in ids])
    session.commit()

    assert prune(rt) == "2 events, 3 outbox rows pruned"
    session.expire_all()
    assert sorted(session.scalars(select(DomainEvent.id).where(DomainEvent.id.in_(ids)))) == [owed, given_up, recent]
    assert sorted(session.scalars(select(EventReceipt.event_id))) == [owed, given_up, recent]
    left = set(session.scalars(select(m.id)))
    assert {deliveries[owed], deliveries[given_up], deliveries[recent], dead_job, live_job} <= left
    assert not {deliveries[e] for e in old_events} & left and done_job not in left
    assert prune(rt) == "0 events, 0 outbox rows pruned"  # again: nothing more


def test_pruning_walks_a_long_history_chunk_by_chunk_and_stops_at_the_recent_part(rt, session):
    from datetime import timedelta

    from app.db import utcnow
    from app.events.retention import prune_events

    ids = [record(session, "grade.changed", member_id=i, **{"from": "", "to": "g"}) for i in range(1, 9)]
    session.commit()
    session.execute(update(DomainEvent).where(DomainEvent.id.in_(ids[:6]))
                    .values(occurred_at=utcnow() - timedelta(days=100)))
    session.commit()
    held = {ids[3]}
    walked, after = [], 0
    while after is not None:
        n, after = prune_events(session, keep_days=90, now=utcnow(), after=after, chunk=2, held=held)
        walked.append(n)
        session.commit()
    assert sorted(session.scalars(select(DomainEvent.id).where(DomainEvent.id.in_(ids)))) == [ids[3], ids[6], ids[7]]
    assert walked == [2, 1, 2, 0]  # the fourth chunk holds the first recent event: the walk ends there
