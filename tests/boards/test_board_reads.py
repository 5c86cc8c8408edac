"""The member board read as a mini-program polls it: signed tokens checked without the database, a token signed
before a merge reading as the member it now lives on as, and query strings validated once yet refused every time
they are wrong."""
from sqlalchemy import func, select

from app.events.models import DomainEvent
from app.identity.merged import mark_key
from app.members.merge import merge_members
from tests.boards.conftest import member_headers
from tests.boards.test_boards import _three_sellers


def _mine(client, headers, **query):
    r = client.get("/api/mp/leaderboard", query_string={"period": "day", "limit": 1, **query}, headers=headers)
    assert r.status_code == 200, r.get_json()
    return r.get_json()["me"]


def test_a_token_signed_before_a_merge_reads_the_survivors_standing(client, rt, redis, session, world, work):
    top, second, _third = _three_sellers(world, session)
    work()
    other_self = world.member("同一人的另一个账号")
    session.commit()
    old_token = member_headers(rt, other_self.id)
    assert _mine(client, old_token) == {"id": other_self.id, "rank": None, "score": 0, "top_percent": None}

    kept = merge_members(session, second.id, other_self.id, "unionid")
    session.commit()
    assert kept.id == second.id
    work()  # the member.merged subscriber marks the merged-away id

    assert _mine(client, old_token) == {"id": second.id, "rank": 2, "score": 5000, "top_percent": 67}
    leagued = client.get("/api/mp/leaderboard", query_string={"period": "day", "league": "true"},
                         headers=old_token)
    assert leagued.status_code == 200 and leagued.get_json()["me"]["id"] == second.id  # followed in the database

    # The merge is recorded once as an event however often it is retried, and the marks point at the survivor.
    merge_members(session, second.id, other_self.id, "unionid")
    merge_members(session, other_self.id, second.id, "unionid")
    session.commit()
    events = session.scalar(select(func.count()).select_from(DomainEvent).where(DomainEvent.name == "member.merged"))
    assert events == 1
    assert int(redis.get(mark_key(other_self.id))) == second.id


def test_a_chain_of_merges_marks_every_older_id_with_the_last_survivor(client, rt, redis, session, world, work):
    top, _second, _third = _three_sellers(world, session)
    work()
    middle, first = world.member("乙"), world.member("甲")
    session.commit()
    merge_members(session, middle.id, first.id, "unionid")  # the older (lower) id survives: `middle` is kept
    session.commit()
    work()
    merge_members(session, top.id, middle.id, "phone")
    session.commit()
    work()
    assert {int(redis.get(mark_key(m.id))) for m in (first, middle)} == {top.id}
    assert _mine(client, member_headers(rt, first.id))["id"] == top.id


def test_without_its_mark_an_old_token_reads_as_the_merged_away_member_until_it_expires(
        client, rt, redis, session, world, work):
    _top, second, _third = _three_sellers(world, session)
    work()
    other_self = world.member("另一个账号")
    session.commit()
    merge_members(session, second.id, other_self.id, "unionid")
    session.commit()
    work()
    redis.delete(mark_key(other_self.id))  # Redis lost the mark: the documented, read-only degradation
    assert _mine(client, member_headers(rt, other_self.id))["id"] == other_self.id
    # Every endpoint that reads the database still follows the merge.
    me = client.get("/api/mp/me", headers=member_headers(rt, other_self.id))
    assert me.status_code == 200 and me.get_json()["id"] == second.id


def test_bad_queries_are_refused_every_time_and_only_after_the_signature(client, rt, session, world):
    p = world.partner("查询者")
    session.commit()
    headers = member_headers(rt, p.id)
    for _ in range(2):  # the second, identical bad query is not served from the validated-query memory
        r = client.get("/api/mp/leaderboard", query_string={"period": "year"}, headers=headers)
        assert r.status_code == 422 and r.get_json()["code"] == "validation_error"
    r = client.get("/api/mp/leaderboard", query_string={"period": "year"})
    assert r.status_code == 401 and r.get_json()["code"] == "auth_required"
    forged = {"Authorization": headers["Authorization"][:-2] + "xx"}
    r = client.get("/api/mp/leaderboard", query_string={"period": "day"}, headers=forged)
    assert r.status_code == 401 and r.get_json()["code"] == "token_invalid"


def test_the_same_query_from_two_members_answers_each_with_their_own_standing(client, rt, session, world, work):
    top, _second, third = _three_sellers(world, session)
    work()
    assert _mine(client, member_headers(rt, top.id))["rank"] == 1
    assert _mine(client, member_headers(rt, third.id))["rank"] == 3
    assert _mine(client, member_headers(rt, top.id))["rank"] == 1


def test_reads_go_on_when_redis_drops_the_connection_or_forgets_the_script(client, rt, redis, session, world, work):
    from app.boards import store

    top, second, _third = _three_sellers(world, session)
    work()
    headers = member_headers(rt, second.id)
    assert _mine(client, headers)["rank"] == 2
    held = store._held.conn
    held.send_command("CLIENT", "ID")
    redis.client_kill_filter(_id=held.read_response())  # the server closes this thread's board connection
    assert _mine(client, headers)["rank"] == 2
    redis.script_flush()  # a restarted server without the read script
    assert _mine(client, headers)["rank"] == 2
    assert _mine(client, member_headers(rt, top.id))["rank"] == 1
