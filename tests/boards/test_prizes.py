"""Contest prizes as a winner, a captain and an accountant see them: fixed amounts for the frozen result, paid
once through the ledger from the platform's prize account, after the winner passes the fraud checks; a flagged
winner waits for an operator; no prize depends on a sale more than two levels below its receiver."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.boards import contests, prizes
from app.boards.jobs import freeze_contests
from app.boards.models import ContestPrize
from app.db import utcnow
from app.events.models import DomainEvent
from app.fraud.models import RiskFlag
from app.ledger.models import JournalEntry, JournalLine, LedgerAccount
from app.ledger.service import member_account_code
from app.members.models import Identity
from app.orders.service import ingest_order_event
from app.teams import membership
from app.teams import service as teams
from tests.boards.conftest import member_headers
from tests.factories import paid, refunded


def balance(session, member_id, kind="available"):
    """A member's balance, read without creating the account (a test's open insert would block the workers)."""
    session.expire_all()
    return session.scalar(select(LedgerAccount.balance_fen)
                          .where(LedgerAccount.code == member_account_code(member_id, kind))) or 0


def sale(world, order_id, buyer, fen, **extra):
    ingest_order_event(world.s, {**paid(order_id, world.unionid(buyer), fen), **extra})
    world.s.commit()


def contest(session, kind="member", metric="sales_fen", rules=None, tie_rule="shared"):
    c = contests.create_contest(session, name="月度PK", kind=kind, metric=metric, tie_rule=tie_rule,
                                starts_at=utcnow() - timedelta(days=1), ends_at=utcnow() + timedelta(hours=1),
                                prizes=rules)
    session.commit()
    return c


def finish(session, rt, work, c):
    c.ends_at = utcnow()
    session.commit()
    assert freeze_contests(rt) == 1
    work(lease=0)
    session.expire_all()
    rows = session.scalars(select(ContestPrize).where(ContestPrize.contest_id == c.id))
    return {(p.member_id, p.role): p for p in rows}


def granted_to(session) -> list[int]:
    """Whom a prize.granted event (the "prize arrived" message) was recorded for, in order."""
    return [e.data["member_id"] for e in session.scalars(select(DomainEvent).where(DomainEvent.name == "prize.granted")
                                                         .order_by(DomainEvent.id))]


@pytest.mark.sqlite
def test_winners_are_paid_through_the_ledger_once(client, rt, session, world, work, operator_headers):
    a, b, c3, d = (world.partner(n) for n in ("甲", "乙", "丙", "丁"))
    buyers = [world.member(f"买家{i}", referrer=p) for i, p in enumerate((a, b, c3, d))]
    session.commit()
    for i, (buyer, fen) in enumerate(zip(buyers, (9000, 7000, 5000, 100), strict=True)):
        sale(world, f"SO{i}", buyer, fen)
    created = client.post("/api/admin/contests", headers=operator_headers, json={
        "name": "冲刺", "kind": "member", "metric": "sales_fen",
        "starts_at": (utcnow() - timedelta(days=1)).isoformat(),
        "ends_at": (utcnow() + timedelta(hours=1)).isoformat(),
        "prizes": [{"ranks": [1, 1], "amount_fen": 50000}, {"ranks": [2, 3], "amount_fen": 20000}]})
    assert created.status_code == 201, created.get_json()
    work(lease=0)
    won = finish(session, rt, work, contests.get_contest(session, created.get_json()["id"]))
    assert {(m, r): p.amount_fen for (m, r), p in won.items()} == {(a.id, "winner"): 50000, (b.id, "winner"): 20000,
                                                                  (c3.id, "winner"): 20000}
    assert {p.status for p in won.values()} == {"granted"}
    assert (balance(session, a.id), balance(session, b.id), balance(session, d.id)) == (50000, 20000, 0)
    assert session.scalar(select(LedgerAccount.balance_fen).where(LedgerAccount.code == "platform:prize_expense")) \
        == -90000
    # Each prize is its own balanced entry, keyed by the prize: a replayed contest.frozen pays nothing twice.
    entries = session.scalars(select(JournalEntry).where(JournalEntry.kind == "contest_prize")).all()
    assert len(entries) == 3
    for e in entries:
        assert session.scalar(select(func.sum(JournalLine.amount_fen)).where(JournalLine.entry_id == e.id)) == 0
    from app.boards.subscribers import grant_prizes
    from app.events import Event
    ev = session.scalars(select(DomainEvent).where(DomainEvent.name == "contest.frozen")).one()
    grant_prizes(rt, Event(ev.id, ev.name, ev.data, ev.occurred_at))
    assert balance(session, a.id) == 50000
    mine = client.get(f"/api/mp/contests/{created.get_json()['id']}", headers=member_headers(rt, a.id)).get_json()
    assert [(p["role"], p["amount_fen"], p["status"]) for p in mine["my_prizes"]] == [("winner", 50000, "granted")]
    listed = client.get("/api/mp/contests", headers=member_headers(rt, a.id)).get_json()["items"]
    assert [(x["name"], x["status"]) for x in listed] == [("冲刺", "frozen")]


@pytest.mark.parametrize("signal", ["self_purchase", "shared_payer", "refund_rate"])
def test_a_winner_the_fraud_checks_flag_waits_for_an_operator(client, rt, session, world, work, operator_headers,
                                                             signal):
    winner = world.partner("赢家")
    honest = world.partner("老实人")
    session.add(Identity(member_id=winner.id, kind="mini_openid", value="o-winner"))
    buyers = [world.member(f"顾客{i}", referrer=winner) for i in range(3)]
    other = world.member("别人", referrer=honest)
    session.commit()
    c = contest(session, rules=[{"ranks": [1, 2], "amount_fen": 8800}])
    for i, buyer in enumerate(buyers):
        extra = {}
        if signal == "self_purchase" and i == 0:
            extra = {"payer_openid": "o-winner"}  # the winner paid their own customers' orders
        elif signal == "shared_payer":
            extra = {"payer_openid": "o-one-wallet"}  # one wallet behind three accounts
        sale(world, f"SO{i}", buyer, 10000, **extra)
    if signal == "refund_rate":
        for i in range(2):
            ingest_order_event(session, refunded(f"SO{i}", f"R{i}", 9000))
            session.commit()
    sale(world, "SO-honest", other, 500)
    work(lease=0)
    won = finish(session, rt, work, c)
    held, fine = won[(winner.id, "winner")], won[(honest.id, "winner")]
    assert (held.status, fine.status) == ("held", "granted")
    assert [f["kind"] for f in held.findings] == [signal]
    assert balance(session, winner.id) == 0 and balance(session, honest.id) == 8800
    assert granted_to(session) == [honest.id]  # the money's arrival is told only when it arrives
    flag = session.scalars(select(RiskFlag).where(RiskFlag.member_id == winner.id)).one()
    assert flag.kind == "contest_prize_review" and flag.details["prize_id"] == held.id

    queue = client.get("/api/admin/prizes", query_string={"status": "held"}, headers=operator_headers).get_json()
    assert [p["id"] for p in queue["items"]] == [held.id]
    r = client.post(f"/api/admin/prizes/{held.id}/grant", headers=operator_headers)
    assert r.status_code == 200 and r.get_json()["status"] == "granted"
    assert balance(session, winner.id) == 8800
    again = client.post(f"/api/admin/prizes/{held.id}/reject", headers=operator_headers)
    assert again.status_code == 409 and again.get_json()["code"] == "prize_not_held"
    assert balance(session, winner.id) == 8800
    assert granted_to(session) == [honest.id, winner.id]


def test_a_rejected_prize_pays_nothing(client, rt, session, world, work, operator_headers):
    winner = world.partner("赢家")
    buyer = world.member("顾客", referrer=winner)
    session.commit()
    c = contest(session, rules=[{"ranks": [1, 1], "amount_fen": 5000}])
    sale(world, "SO1", buyer, 1000)
    session.add(RiskFlag(member_id=winner.id, kind="bind_velocity", details={}))  # an open flag holds it too
    session.commit()
    work(lease=0)
    prize = finish(session, rt, work, c)[(winner.id, "winner")]
    assert prize.status == "held" and prize.findings == [{"kind": "open_flag"}]
    r = client.post(f"/api/admin/prizes/{prize.id}/reject", headers=operator_headers)
    assert r.get_json()["status"] == "rejected"
    assert balance(session, winner.id) == 0
    assert granted_to(session) == []


@pytest.mark.sqlite
def test_team_rewards_the_captain_and_shares_the_pool_by_contribution(rt, session, world, work):
    cap = world.partner("队长")
    team = teams.create_team(session, name="一队", captain_id=cap.id)
    x, y, z = (world.partner(n) for n in ("小x", "小y", "小z"))
    for m in (x, y, z):
        membership.join_by_invite(session, m.id, membership.invite_code(session, team))
    rival_cap = world.partner("对手")
    rival = teams.create_team(session, name="二队", captain_id=rival_cap.id)
    bx, by, bz, br = (world.member(f"b{i}", referrer=r) for i, r in enumerate((x, y, z, rival_cap)))
    session.commit()
    c = contest(session, kind="team", rules=[{"ranks": [1, 1], "captain_fen": 10000, "members_fen": 10000},
                                             {"goal": 100, "captain_fen": 0, "members_fen": 300}])
    sale(world, "SOx", bx, 2000)
    sale(world, "SOy", by, 1000)
    sale(world, "SOz", bz, 1000)  # x 50 %, y 25 %, z 25 %
    sale(world, "SOr", br, 50)
    work(lease=0)
    won = finish(session, rt, work, c)
    got = {(m, r): p.amount_fen for (m, r), p in won.items()}
    assert got == {(cap.id, "captain"): 10000, (x.id, "share"): 5000, (y.id, "share"): 2500, (z.id, "share"): 2500,
                   (x.id, "goal_share"): 150, (y.id, "goal_share"): 75, (z.id, "goal_share"): 75}
    assert sum(v for (m, r), v in got.items() if r == "share") == 10000
    assert balance(session, cap.id) == 10000 and balance(session, x.id) == 5150
    assert rival.id not in {p.team_id for p in won.values()}


def test_a_prize_never_depends_on_a_sale_more_than_two_levels_below_its_receiver(rt, session, world, work):
    """cap <- m1 <- m2 <- buyer: all three partners in cap's team. m2's customer is three levels below the
    captain: it counts for m2 (one level) and m1 (commission, two levels), never for the captain's team."""
    cap = world.partner("队长")  # the world's plan pays 10 % at level 1, 5 % at level 2
    m1 = world.partner("一级", referrer=cap)
    m2 = world.partner("二级", referrer=m1)
    deep = world.member("深层顾客", referrer=m2)
    near = world.member("直属顾客", referrer=cap)
    team = teams.create_team(session, name="深队", captain_id=cap.id)
    for m in (m1, m2):
        membership.join_by_invite(session, m.id, membership.invite_code(session, team))
    session.commit()
    by_team = contest(session, kind="team", rules=[{"ranks": [1, 1], "captain_fen": 7000, "members_fen": 3000}])
    by_commission = contest(session, kind="member", metric="commission_fen",
                            rules=[{"ranks": [1, 3], "amount_fen": 1000}])
    sale(world, "SO-near", near, 100)
    sale(world, "SO-deep", deep, 100000)  # three levels below cap
    work(lease=0)
    standing = contests.live_standings(session, by_team)
    assert standing == [{"rank": 1, "subject_id": team.id, "score": 100}]  # the deep sale is not the team's
    won = finish(session, rt, work, by_team)
    # The pool goes to whoever contributed what counted: only the captain's own level-1 sale.
    assert {(m, r): p.amount_fen for (m, r), p in won.items()} == {(cap.id, "captain"): 7000, (cap.id, "share"): 3000}
    won = finish(session, rt, work, by_commission)
    # Commission earners of the deep sale: m2 (level 1) and m1 (level 2); the captain earned only on `near`.
    assert {m for m, _ in won} == {m2.id, m1.id, cap.id}
    assert [p.rank for (m, _), p in won.items() if m == cap.id] == [3]


def test_prize_rules_are_refused_unless_integer_fen_and_well_formed(client, operator_headers):
    base = {"name": "PK", "kind": "member", "metric": "sales_fen", "starts_at": "2026-12-01T00:00:00+08:00",
            "ends_at": "2026-12-08T00:00:00+08:00"}
    for rules in ([{"ranks": [1, 1], "amount_fen": 100.0}], [{"ranks": [1, 1], "amount_fen": "100"}],
                  [{"ranks": [1, 2], "amount_fen": 1}, {"ranks": [2, 3], "amount_fen": 1}],
                  [{"ranks": [1, 1], "captain_fen": 1}], [{"goal": 0, "amount_fen": 1}], [{"amount_fen": 5}]):
        r = client.post("/api/admin/contests", json={**base, "prizes": rules}, headers=operator_headers)
        assert r.status_code == 422 and r.get_json()["code"] == "contest_prize_invalid", (rules, r.get_json())
    r = client.post("/api/admin/contests", headers=operator_headers, json={
        **base, "kind": "team", "prizes": [{"ranks": [1, 1], "captain_fen": 100.5, "members_fen": 1}]})
    assert r.status_code == 422 and r.get_json()["code"] == "contest_prize_invalid"


def test_split_is_exact_to_the_fen():
    assert prizes.split(100, {1: 1, 2: 1, 3: 1}) == {1: 34, 2: 33, 3: 33}
    assert sum(prizes.split(10001, {5: 7, 9: 13, 2: 1}).values()) == 10001
    assert prizes.split(100, {1: 0}) == {}
