"""The contest result, the prize's money and a badge earned reach the member once, with what they won, through
the emulator."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.boards import contests
from app.boards.models import ContestPrize
from app.boards.jobs import freeze_contests
from app.db import utcnow
from app.fraud.models import RiskFlag
from app.orders.service import ingest_order_event
from app.referrals import partners
from tests.factories import make_member, paid
from tests.notifications.conftest import sub_tpl


def _contest_run(session, rt, work, name: str, prize_fen: int, sales: list[tuple[str, str, int]]):
    """A one-winner-prize contest over these sales (order id, buyer unionid, fen), frozen at its deadline, every
    subscriber run twice over (a second pass changes nothing: one message per moment, member and event)."""
    c = contests.create_contest(session, name=name, kind="member", metric="sales_fen",
                                starts_at=utcnow() - timedelta(days=1), ends_at=utcnow() + timedelta(hours=1),
                                prizes=[{"ranks": [1, 1], "amount_fen": prize_fen}])
    session.commit()
    for order_id, unionid, fen in sales:
        ingest_order_event(session, paid(order_id, unionid, fen))
    session.commit()
    work()
    c.ends_at = utcnow()
    session.commit()
    assert freeze_contests(rt) == 1
    work()
    work()
    return c

def test_contest_result_and_badges_reach_the_winner_once(nw, rt, session, work):
    winner, wp = nw.person(nickname="冠军")
    partners.make_partner(session, winner.id, "designated")
    runner, rp = nw.person(nickname="亚军")
    partners.make_partner(session, runner.id, "designated")
    make_member(session, "顾客1", referrer=winner, unionid="u-b1")
    make_member(session, "顾客2", referrer=runner, unionid="u-b2")
    session.commit()
    for member, p in ((winner, wp), (runner, rp)):
        for moment in ("contest_result", "prize_granted", "badge_earned"):
            nw.grant(member, p, moment)
    c = _contest_run(session, rt, work, "十二月销售冲刺赛", 8800, [("SO-w", "u-b1", 5000), ("SO-r", "u-b2", 3000)])
    sent = {m["template_id"]: m for m in nw.sent(wp)}
    result = sent[sub_tpl("contest_result")]
    assert result["data"]["thing1"]["value"] == "十二月销售冲刺赛"
    # the announcement and the prize's grant run side by side: it says paid or to be paid, as it found the prize
    assert result["data"]["thing2"]["value"] in ("第1名，奖励88.00元已到账", "第1名，奖励88.00元待发放")
    assert result["page"] == f"pages/contests/detail?id={c.id}"
    badge = sent[sub_tpl("badge_earned")]
    assert badge["data"]["thing2"]["value"] in ("首单推广", "竞赛冠军")
    money = sent[sub_tpl("prize_granted")]  # the prize passed the fraud checks: paid, and told so
    assert money["data"]["amount2"]["value"] == "88.00元" and money["data"]["thing3"]["value"] == "十二月销售冲刺赛"
    assert money["page"] == "pages/earnings/index"
    assert sorted(m.moment for m in nw.messages(winner)) == ["badge_earned", "badge_earned", "contest_result",
                                                             "prize_granted"]
    runner_msgs = {m["template_id"]: m for m in nw.sent(rp)}
    assert runner_msgs[sub_tpl("contest_result")]["data"]["thing2"]["value"] == "你获得第2名"


def test_a_held_prize_is_announced_as_to_be_paid_and_its_money_told_when_an_operator_grants_it(
        nw, rt, session, work, client, operator_headers):
    winner, wp = nw.person(nickname="冠军")
    partners.make_partner(session, winner.id, "designated")
    make_member(session, "顾客1", referrer=winner, unionid="u-h1")
    session.add(RiskFlag(member_id=winner.id, kind="bind_velocity", details={}))  # an open flag holds a prize
    session.commit()
    for moment in ("contest_result", "prize_granted"):
        nw.grant(winner, wp, moment)
    c = _contest_run(session, rt, work, "周末冲刺", 5000, [("SO-h", "u-h1", 5000)])
    prize = session.scalars(select(ContestPrize).where(ContestPrize.contest_id == c.id)).one()
    assert prize.status == "held"
    sent = {m["template_id"]: m for m in nw.sent(wp)}
    assert sent[sub_tpl("contest_result")]["data"]["thing2"]["value"] == "第1名，奖励50.00元待发放"
    assert sub_tpl("prize_granted") not in sent  # no money yet, so no word of money
    r = client.post(f"/api/admin/prizes/{prize.id}/grant", headers=operator_headers)
    assert r.status_code == 200 and r.get_json()["status"] == "granted"
    work()
    money = {m["template_id"]: m for m in nw.sent(wp)}[sub_tpl("prize_granted")]
    assert money["data"]["amount2"]["value"] == "50.00元"
