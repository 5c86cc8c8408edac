"""Two accounts proven one person: what the merged-away member counted on the boards moves to the survivor, in
the same periods, and later refunds, replays and a rebuild agree."""
from app.boards.store import PREFIX
from app.boards.subscribers import on_member_merged
from app.members.merge import merge_members
from app.orders.service import ingest_order_event
from app.referrals import binding
from app.referrals.codes import ensure_personal_code
from tests.boards.test_boards import _all_boards, _events, _three_sellers, board, sell
from tests.factories import refunded


def _scores(client, headers, period):
    return {row["id"]: row["score"] for row in board(client, headers, period=period, limit=50)["items"]}


def test_a_merged_members_sales_and_new_members_move_to_the_survivor(app, client, rt, redis, session, world, work,
                                                                     operator_headers):
    top, second, third = _three_sellers(world, session)
    fan = world.member("新粉丝")
    binding.touch(session, scene=ensure_personal_code(session, second.id).scene, member_id=fan.id,
                  channel="oa_subscribe", new_follower=True)  # a binding: new_members for `second`
    session.commit()
    work()
    assert _scores(client, operator_headers, "day") == {top.id: 9000, second.id: 5000, third.id: 1000}

    kept = merge_members(session, top.id, second.id, "unionid")
    session.commit()
    work()
    assert kept.id == top.id
    for period in ("day", "week", "month", "all"):
        assert _scores(client, operator_headers, period) == {top.id: 14000, third.id: 1000}, period
    fans = board(client, operator_headers, period="all", metric="new_members")["items"]
    assert [(row["id"], row["score"]) for row in fans] == [(top.id, 1)]

    # The merged member's sale refunded later comes off the survivor; a sale of its old buyer counts for it too.
    ingest_order_event(session, refunded("SO1", "R-merged", 2000))
    session.commit()
    sell(world, "SO-after", fan, 700)
    work()
    assert _scores(client, operator_headers, "day") == {top.id: 12700, third.id: 1000}

    live = _all_boards(redis)
    on_member_merged(rt, _events(session, "member.merged")[0])  # a replay moves nothing twice
    assert _all_boards(redis) == live
    redis.flushdb()
    assert app.test_cli_runner().invoke(args=["boards", "rebuild"]).exit_code == 0
    assert _all_boards(redis) == live
    assert not any(str(second.id) in members for key, members in live.items()
                   if key.startswith(f"{PREFIX}:member:"))
