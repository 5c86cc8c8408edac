"""The contest result, the prize's money and a badge earned reach the member once, with what they won, through
the emulator."""
from __future__ import annotations

from datetime import timedelta

from app.boards import contests
from app.boards.jobs import freeze_contests
from app.db import utcnow
from app.orders.service import ingest_order_event
from app.referrals import partners
from tests.factories import make_member, paid
from tests.notifications.conftest import sub_tpl


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
    c = contests.create_contest(session, name="十二月销售冲刺赛", kind="member", metric="sales_fen",
                                starts_at=utcnow() - timedelta(days=1), ends_at=utcnow() + timedelta(hours=1),
                                prizes=[{"ranks": [1, 1], "amount_fen": 8800}])
    session.commit()
    ingest_order_event(session, paid("SO-w", "u-b1", 5000))
    ingest_order_event(session, paid("SO-r", "u-b2", 3000))
    session.commit()
    work()
    c.ends_at = utcnow()
    session.commit()
    assert freeze_contests(rt) == 1
    work()
    work()  # a second pass changes nothing: every message is one per (moment, member, event)
    sent = {m["template_id"]: m for m in nw.sent(wp)}
    result = sent[sub_tpl("contest_result")]
    assert result["data"]["thing1"]["value"] == "十二月销售冲刺赛"
    assert result["data"]["thing2"]["value"] == "你获得第1名，奖励88.00元"
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
