"""Two accounts proven one person: what the merged-away member counted on the boards moves to the survivor, in
the same periods, and later refunds, replays and a rebuild agree."""
import threading
import time

from app.boards import credits as board_credits
from app.boards.store import PREFIX
from app.boards.subscribers import on_member_merged, on_order_paid
from app.members.merge import merge_members
from app.orders.service import ingest_order_event
from app.referrals import binding
from app.referrals.codes import ensure_personal_code
from tests.boards.test_boards import _all_boards, _events, _three_sellers, board, sell
from tests.factories import refunded
from tests.racing import Background


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


def test_a_sale_counted_while_its_seller_is_being_merged_lands_on_the_survivor(client, rt, redis, session, world,
                                                                                work, operator_headers, monkeypatch):
    """The sale's credits are decided (for `second`) and about to be written when the merge of `second` starts:
    the merge waits for them, and its subscriber then moves them to the survivor. (Without the seller's row
    locked, the merge and its move ran in between and the credits stayed on the merged-away member.)"""
    top, second, third = _three_sellers(world, session)
    work()
    buyer = world.member("又一位买家", referrer=second)
    session.commit()
    sell(world, "SO-race", buyer, 3000)  # its order.paid waits in the outbox: no worker has run it yet
    paid_event = _events(session, "order.paid")[-1]

    decided, go = threading.Event(), threading.Event()
    insert = board_credits._insert

    def slow_insert(s, rows):
        decided.set()
        assert go.wait(20)
        insert(s, rows)

    monkeypatch.setattr(board_credits, "_insert", slow_insert)
    counting = Background(lambda: on_order_paid(rt, paid_event))
    assert decided.wait(20)

    def merge_and_move():
        with rt.session() as s:
            merge_members(s, top.id, second.id, "unionid")
        with rt.sessions() as s:
            event = _events(s, "member.merged")[0]
        on_member_merged(rt, event)

    merging = Background(merge_and_move)
    time.sleep(1.0)  # the merge runs now if nothing holds it back
    go.set()
    counting.result(timeout=20)
    merging.result(timeout=20)
    monkeypatch.setattr(board_credits, "_insert", insert)
    work()
    for period in ("day", "all"):
        assert _scores(client, operator_headers, period) == {top.id: 17000, third.id: 1000}, period
    assert not any(str(second.id) in members for key, members in _all_boards(redis).items()
                   if key.startswith(f"{PREFIX}:member:"))
