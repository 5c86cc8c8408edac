"""Leaderboards as partners, captains and operators see them: Shanghai calendar periods, refunds, replays and
events out of order, leagues, privacy and opt-out, and a rebuilt board equal to the live one."""
from datetime import datetime

import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.boards import service as boards
from app.boards.periods import SHANGHAI, periods_of
from app.boards.store import PREFIX, clear_cache
from app.boards.subscribers import on_order_paid, on_order_refunded
from app.events.models import DomainEvent
from app.events.service import load_event
from app.grades.service import create_grade, grant_grade
from app.orders.service import ingest_order_event
from app.outbox import RetryLater
from app.referrals import binding
from app.teams import membership
from app.teams import service as teams
from tests.boards.conftest import member_headers
from tests.factories import paid, refunded


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def sell(world, order_id, buyer, fen, at=None):
    ingest_order_event(world.s, paid(order_id, world.unionid(buyer), fen, at=at.isoformat() if at else None))
    world.s.commit()


def board(client, headers, **query):
    r = client.get("/api/admin/leaderboard", query_string=query, headers=headers)
    assert r.status_code == 200, r.get_json()
    clear_cache()
    return r.get_json()


def score_of(client, headers, member_id, **query):
    return board(client, headers, member_id=member_id, **query)["me"]["score"]


def test_a_second_apart_across_midnight_shanghai_lands_in_different_days_weeks_and_months(
        client, session, world, work, operator_headers):
    assert periods_of(sh(2026, 11, 29, 23, 59, 59))["week"] != periods_of(sh(2026, 11, 30, 0, 0, 0))["week"]
    _, parent, buyer = world.chain()
    session.commit()
    sell(world, "SO-sun", buyer, 5000, sh(2026, 11, 29, 23, 59, 59))   # Sunday, last second of ISO week 48
    sell(world, "SO-mon", buyer, 3000, sh(2026, 11, 30, 0, 0, 0))      # Monday, first second of week 49
    sell(world, "SO-eom", buyer, 200, sh(2026, 11, 30, 23, 59, 59))    # last second of November
    sell(world, "SO-dec", buyer, 100, sh(2026, 12, 1, 0, 0, 0))        # first second of December
    work()

    def at(period, date):
        return score_of(client, operator_headers, parent.id, period=period, date=date)

    assert at("day", "2026-11-29") == 5000
    assert at("day", "2026-11-30") == 3200
    assert at("day", "2026-12-01") == 100
    assert at("week", "2026-11-29") == 5000
    assert at("week", "2026-12-01") == 3300
    assert at("month", "2026-11-30") == 8200
    assert at("month", "2026-12-01") == 100
    assert at("all", "2026-12-01") == 8300
    assert score_of(client, operator_headers, parent.id, period="all", metric="commission_fen") == 830


def _events(session, name):
    return [load_event(session, i) for i in session.scalars(select(DomainEvent.id).where(DomainEvent.name == name)
                                                             .order_by(DomainEvent.id))]


def test_replays_never_double_count(client, rt, session, world, work, operator_headers):
    _, parent, buyer = world.chain()
    session.commit()
    sell(world, "SO1", buyer, 4000)
    work()
    event = _events(session, "order.paid")[0]
    on_order_paid(rt, event)
    on_order_paid(rt, event)
    assert score_of(client, operator_headers, parent.id, period="all") == 4000


def test_a_refund_that_overtakes_its_sale_waits_and_both_count_once(client, rt, session, world, work,
                                                                    operator_headers):
    _, parent, buyer = world.chain()
    session.commit()
    sell(world, "SO1", buyer, 4000)
    ingest_order_event(session, refunded("SO1", "R1", 1500))
    session.commit()
    refund = _events(session, "order.refunded")[0]
    with pytest.raises(RetryLater):
        on_order_refunded(rt, refund)
    on_order_paid(rt, _events(session, "order.paid")[0])
    on_order_refunded(rt, refund)
    work()  # the outbox delivers both again
    assert score_of(client, operator_headers, parent.id, period="all") == 2500


def test_a_refund_after_the_day_closed_comes_off_the_day_the_sale_counted_in(client, session, world, work,
                                                                            operator_headers):
    _, parent, buyer = world.chain()
    session.commit()
    sell(world, "SO1", buyer, 6000, sh(2026, 11, 29, 12, 0, 0))
    work()
    ingest_order_event(session, refunded("SO1", "R1", 2000))
    session.commit()
    work()
    assert score_of(client, operator_headers, parent.id, period="day", date="2026-11-29") == 4000
    assert score_of(client, operator_headers, parent.id, period="day", date="2026-11-29",
                    metric="commission_fen") == 400
    today = board(client, operator_headers, member_id=parent.id, period="day")
    assert today["me"]["rank"] is None and today["items"] == []


def test_a_full_refund_takes_the_member_off_the_board(client, session, world, work, operator_headers):
    _, parent, buyer = world.chain()
    session.commit()
    sell(world, "SO1", buyer, 6000)
    ingest_order_event(session, refunded("SO1", "R1", 6000))
    session.commit()
    work()
    assert board(client, operator_headers, period="all")["items"] == []


def _three_sellers(world, session):
    sellers = []
    for i, fen in enumerate((9000, 5000, 1000)):
        p = world.partner(f"卖家{i}")
        b = world.member(f"买家{i}", referrer=p)
        sellers.append((p, b, fen))
    session.commit()
    for i, (_p, b, fen) in enumerate(sellers):
        sell(world, f"SO{i}", b, fen)
    return [p for p, _, _ in sellers]


def test_my_standing_and_top_percent_outside_the_top(client, rt, session, world, work):
    top, second, third = _three_sellers(world, session)
    work()
    body = client.get("/api/mp/leaderboard", query_string={"period": "day", "limit": 1},
                      headers=member_headers(rt, third.id)).get_json()
    assert [(r["rank"], r["name"], r["score"]) for r in body["items"]] == [(1, "卖家0", 9000)]
    assert body["me"] == {"id": third.id, "rank": 3, "score": 1000, "top_percent": 100}
    body = client.get("/api/mp/leaderboard", query_string={"period": "day", "limit": 1},
                      headers=member_headers(rt, second.id)).get_json()
    assert body["me"]["rank"] == 2 and body["me"]["top_percent"] == 67


def test_privacy_hide_amounts_anonymise_and_opt_out(client, rt, session, world, work, operator_headers):
    top, second, third = _three_sellers(world, session)
    work()
    # A member who opts out appears by a pseudonym to others, by name to themself.
    assert client.put("/api/mp/leaderboard/opt-out", json={"opt_out": True},
                      headers=member_headers(rt, top.id)).status_code == 200
    seen = client.get("/api/mp/leaderboard", query_string={"period": "all"},
                      headers=member_headers(rt, second.id)).get_json()["items"]
    assert seen[0]["name"].startswith("会员") and seen[0]["id"] is None and seen[0]["avatar_url"] == ""
    again = client.get("/api/mp/leaderboard", query_string={"period": "all"},
                       headers=member_headers(rt, third.id)).get_json()["items"]
    assert again[0]["name"] == seen[0]["name"]  # a stable pseudonym
    own = client.get("/api/mp/leaderboard", query_string={"period": "all"},
                     headers=member_headers(rt, top.id)).get_json()["items"]
    assert own[0]["name"] == "卖家0"
    # The operator hides amounts and anonymises the board.
    r = client.patch("/api/admin/leaderboard/config/member/sales_fen", json={"hide_amounts": True,
                                                                             "anonymise": True},
                     headers=operator_headers)
    assert r.get_json() == {"board": "member:sales_fen", "enabled": True, "periods": ["day", "week", "month", "all"],
                            "leagues": True, "hide_amounts": True, "anonymise": True}
    body = client.get("/api/mp/leaderboard", query_string={"period": "all"},
                      headers=member_headers(rt, second.id)).get_json()
    assert [r["score"] for r in body["items"]] == [None, 5000, None]  # only my own amount
    assert [r["name"] for r in body["items"]][1] == "卖家1"
    assert all(r["name"].startswith("会员") for i, r in enumerate(body["items"]) if i != 1)
    assert body["me"]["score"] == 5000
    # Operators see everything.
    admin = board(client, operator_headers, period="all")
    assert [(r["name"], r["score"]) for r in admin["items"]] == [("卖家0", 9000), ("卖家1", 5000), ("卖家2", 1000)]


def test_operators_choose_what_members_are_offered_and_see_when_old_boards_expire(client, rt, session, world,
                                                                                  work, operator_headers):
    top, second, _ = _three_sellers(world, session)
    work()
    me = member_headers(rt, second.id)
    r = client.patch("/api/admin/leaderboard/config/member/sales_fen", headers=operator_headers,
                     json={"periods": ["month", "week"], "leagues": False})
    assert r.status_code == 200 and r.get_json()["periods"] == ["week", "month"]
    for query in ({"period": "day"}, {"period": "all"}, {"period": "week", "league": "true"}):
        refused = client.get("/api/mp/leaderboard", query_string=query, headers=me)
        assert refused.status_code == 404 and refused.get_json()["code"] == "board_not_offered", query
    assert client.get("/api/mp/leaderboard", query_string={"period": "week"}, headers=me).status_code == 200
    assert board(client, operator_headers, period="day")["size"] == 3  # operators see every period
    client.patch("/api/admin/leaderboard/config/store/sales_fen", json={"enabled": False}, headers=operator_headers)
    off = client.get("/api/mp/leaderboard", query_string={"board": "store", "period": "week"}, headers=me)
    assert off.status_code == 404 and off.get_json()["details"]["periods"] == []
    bad = client.patch("/api/admin/leaderboard/config/member/sales_fen", json={"periods": []},
                       headers=operator_headers)
    assert bad.status_code in (400, 422)
    listed = client.get("/api/admin/leaderboard/config", headers=operator_headers).get_json()
    assert len(listed["items"]) == 9
    assert listed["retention"]["day"]["kept_after_end"] == {"count": rt.settings.boards.keep_days, "unit": "days"}
    assert listed["retention"]["all"]["current_expires_at"] is None
    actions = {a for (a,) in session.execute(select(AuditEntry.action))}
    assert {"board.periods", "board.leagues", "board.enabled"} <= actions


def test_badges_show_on_the_boards_unless_the_member_is_hidden(client, rt, session, world, work, operator_headers):
    top, second, _ = _three_sellers(world, session)
    work()  # each seller's first referral order: the first_referral_order badge
    clear_cache()
    rows = client.get("/api/mp/leaderboard", query_string={"period": "all"},
                      headers=member_headers(rt, second.id)).get_json()["items"]
    assert [r["badges"] for r in rows] == [["first_referral_order"]] * 3
    client.put("/api/mp/leaderboard/opt-out", json={"opt_out": True}, headers=member_headers(rt, top.id))
    rows = client.get("/api/mp/leaderboard", query_string={"period": "all"},
                      headers=member_headers(rt, second.id)).get_json()["items"]
    assert rows[0]["badges"] == [] and rows[1]["badges"] == ["first_referral_order"]


def test_leagues_by_grade(client, rt, session, world, work):
    create_grade(session, code="v1", rank=1, auto_upgrade=False)
    create_grade(session, code="v2", rank=2, auto_upgrade=False)
    session.commit()
    top, second, third = _three_sellers(world, session)
    work()
    grant_grade(session, top.id, "v2", reason="test", actor="test")
    session.commit()
    sell(world, "SO-more", world.member("又一个", referrer=top), 100)
    world.s.commit()
    work()
    v1 = client.get("/api/mp/leaderboard", query_string={"period": "all", "league": "true"},
                    headers=member_headers(rt, third.id)).get_json()
    assert v1["league"] == "v1"
    assert [r["name"] for r in v1["items"]] == ["卖家0", "卖家1", "卖家2"]  # all three sold as v1
    v2 = client.get("/api/mp/leaderboard", query_string={"period": "all", "league": "true"},
                    headers=member_headers(rt, top.id)).get_json()
    assert [(r["name"], r["score"]) for r in v2["items"]] == [("卖家0", 100)]  # only what top sold as v2


def test_team_board_counts_from_joining_and_binds_count_as_new_members(client, rt, session, world, work):
    cap = world.partner("队长")
    team = teams.create_team(session, name="望京一队", captain_id=cap.id)
    rival = teams.create_team(session, name="朝阳队", captain_id=world.partner("对手").id)
    p = world.partner("小王")
    early, late = world.member("早", referrer=p), world.member("晚", referrer=p)
    code = teams.create_team_code(session, team.id, label="海报")
    session.commit()
    sell(world, "SO-early", early, 7000)
    membership.join_by_invite(session, p.id, membership.invite_code(session, team))
    session.commit()
    sell(world, "SO-late", late, 2000)
    binding.touch(session, scene=code.scene, member_id=world.member("粉丝").id, channel="oa_subscribe",
                  new_follower=True)
    session.commit()
    work()

    body = client.get("/api/mp/team/leaderboard", query_string={"period": "all"},
                      headers=member_headers(rt, p.id)).get_json()
    assert [(r["name"], r["score"]) for r in body["items"]] == [("望京一队", 2000)]
    assert body["me"]["rank"] == 1 and rival.id not in [r["id"] for r in body["items"]]
    fans = client.get("/api/mp/team/leaderboard", query_string={"period": "all", "metric": "new_members"},
                      headers=member_headers(rt, cap.id)).get_json()
    assert fans["me"]["score"] == 1


def _all_boards(redis) -> dict:
    out = {}
    for key in redis.scan_iter(match=f"{PREFIX}:*"):
        key = key.decode()
        if key.startswith(f"{PREFIX}:applied:"):
            continue
        out[key] = boards.board_members(redis, key)
    return out


def test_flask_boards_rebuild_restores_every_board_member_by_member(app, rt, redis, session, world, work):
    create_grade(session, code="v1", rank=1, auto_upgrade=False)
    session.commit()
    top, second, third = _three_sellers(world, session)
    cap = world.partner("队长")
    team = teams.create_team(session, name="一队", captain_id=cap.id)
    membership.join_by_invite(session, second.id, membership.invite_code(session, team))
    session.commit()
    sell(world, "SO-x", world.member("x", referrer=second), 3000, sh(2026, 11, 30, 23, 59, 59))
    ingest_order_event(session, refunded("SO0", "R1", 4000))
    session.commit()
    work()
    live = _all_boards(redis)
    assert len(live) > 10

    redis.flushdb()  # Redis lost
    result = app.test_cli_runner().invoke(args=["boards", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "boards rebuilt" in result.output

    assert _all_boards(redis) == live
    # A replay after the rebuild still counts once.
    on_order_paid(rt, _events(session, "order.paid")[0])
    assert _all_boards(redis) == live
