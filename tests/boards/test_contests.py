"""Contests as operators and partners see them: live standings in the window, results frozen once at the
deadline (even with two schedulers at once), the published tie rule."""
import threading
from datetime import timedelta

from app.boards import contests
from app.boards.jobs import freeze_contests
from app.boards.models import ContestResult
from app.db import utcnow
from app.orders.service import ingest_order_event
from tests.boards.conftest import member_headers
from tests.boards.test_boards import sell, sh
from tests.factories import refunded


def _sellers(world, session, n=3):
    out = []
    for i in range(n):
        p = world.partner(f"选手{i}")
        out.append((p, world.member(f"买家{i}", referrer=p)))
    session.commit()
    return out


def test_live_standings_in_the_window_then_results_frozen_once_at_the_deadline(client, rt, session, world, work,
                                                                              operator_headers):
    (a, ba), (b, bb), _ = _sellers(world, session)
    created = client.post("/api/admin/contests", json={
        "name": "双周PK", "kind": "member", "metric": "sales_fen", "starts_at": sh(2026, 11, 29).isoformat(),
        "ends_at": (utcnow() + timedelta(hours=1)).isoformat()}, headers=operator_headers)
    assert created.status_code == 201, created.get_json()
    cid = created.get_json()["id"]
    sell(world, "SO-before", ba, 99999, sh(2026, 11, 28, 23, 59, 59))  # before the window: does not count
    sell(world, "SO-a", ba, 3000, sh(2026, 11, 29, 0, 0, 0))
    sell(world, "SO-b", bb, 5000)
    work()
    live = client.get(f"/api/mp/contests/{cid}", headers=member_headers(rt, a.id)).get_json()
    assert live["status"] == "open"
    assert [(r["name"], r["score"], r["rank"]) for r in live["standings"]] == [("选手1", 5000, 1), ("选手0", 3000, 2)]

    assert freeze_contests(rt) == 0  # not due yet
    contest = contests.get_contest(session, cid)
    contest.ends_at = utcnow()  # the deadline passes (after every sale above)
    session.commit()
    assert freeze_contests(rt) == 1
    ingest_order_event(session, refunded("SO-b", "R1", 5000))  # after the deadline: results stay as frozen
    session.commit()
    work()
    final = client.get(f"/api/admin/contests/{cid}", headers=operator_headers).get_json()
    assert final["status"] == "frozen" and final["frozen_at"]
    assert [(r["name"], r["score"]) for r in final["standings"]] == [("选手1", 5000), ("选手0", 3000)]


def test_two_schedulers_freeze_a_contest_exactly_once(rt, session, world, work):
    (a, ba), (b, bb), (c, bc) = _sellers(world, session)
    for i, (buyer, fen) in enumerate(((ba, 100), (bb, 200), (bc, 300))):
        sell(world, f"SO{i}", buyer, fen)
    work()
    contest = contests.create_contest(session, name="PK", kind="member", metric="sales_fen",
                                      starts_at=utcnow() - timedelta(days=1), ends_at=utcnow())
    session.commit()
    barrier = threading.Barrier(2)
    counts = []

    def scheduler():
        barrier.wait()
        counts.append(freeze_contests(rt))

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(counts) == [0, 1]
    results = session.query(ContestResult).filter_by(contest_id=contest.id).order_by(ContestResult.rank).all()
    assert [(r.rank, r.subject_id, r.score) for r in results] == [(1, c.id, 300), (2, b.id, 200), (3, a.id, 100)]


def test_tie_rules(session, world, work):
    (a, ba), (b, bb), _ = _sellers(world, session)
    sell(world, "SO-a", ba, 1000, sh(2026, 11, 29, 10))
    work()
    sell(world, "SO-b", bb, 1000, sh(2026, 11, 29, 9))
    work()
    window = {"kind": "member", "metric": "sales_fen", "starts_at": sh(2026, 11, 29), "ends_at": sh(2026, 11, 30)}
    shared = contests.create_contest(session, name="并列", tie_rule="shared", **window)
    earlier = contests.create_contest(session, name="先到", tie_rule="earlier", **window)
    assert [r["rank"] for r in contests.live_standings(session, shared)] == [1, 1]
    ranked = contests.live_standings(session, earlier)
    assert [(r["rank"], r["subject_id"]) for r in ranked] == [(1, b.id), (2, a.id)]  # b's sale came an hour earlier


def test_a_crowd_reads_the_first_places_and_each_their_own_from_standings_shared_for_seconds(
        client, rt, session, world, work, operator_headers):
    sellers = _sellers(world, session, n=4)
    created = client.post("/api/admin/contests", json={
        "name": "人人PK", "kind": "member", "metric": "sales_fen", "starts_at": sh(2026, 11, 29).isoformat(),
        "ends_at": (utcnow() + timedelta(hours=1)).isoformat()}, headers=operator_headers)
    cid = created.get_json()["id"]
    for i, (_p, buyer) in enumerate(sellers):
        sell(world, f"SO-{i}", buyer, 1000 * (i + 1))
    work()
    last = sellers[0][0]
    body = client.get(f"/api/mp/contests/{cid}", query_string={"limit": 2},
                      headers=member_headers(rt, last.id)).get_json()
    assert body["size"] == 4 and [r["score"] for r in body["standings"]] == [4000, 3000]
    assert (body["me"]["id"], body["me"]["rank"], body["me"]["score"]) == (last.id, 4, 1000)
    outsider = world.partner("旁观者")
    session.commit()
    assert client.get(f"/api/mp/contests/{cid}", headers=member_headers(rt, outsider.id)).get_json()["me"] is None

    # A new sale shows once the shared standings are CONTEST_LIVE_SECONDS old, not on every read before.
    sell(world, "SO-late", sellers[0][1], 9000)
    work()
    stale = client.get(f"/api/mp/contests/{cid}", headers=member_headers(rt, last.id)).get_json()
    assert stale["me"]["score"] == 1000
    contests._shared[cid] = (0.0, contests._shared[cid][1])  # the shared answer's time runs out
    fresh = client.get(f"/api/mp/contests/{cid}", headers=member_headers(rt, last.id)).get_json()
    assert (fresh["me"]["rank"], fresh["me"]["score"]) == (1, 10000)
    bad = client.get(f"/api/mp/contests/{cid}", query_string={"limit": 0}, headers=member_headers(rt, last.id))
    assert bad.status_code == 422
