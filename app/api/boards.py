"""Leaderboards: members see boards with their own standing; captains see their team's; operators see every
board (any league, no privacy) and set each board's privacy."""
from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Date, Dict, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from app.api.auth import (MEMBER_AUTH, OPERATOR_AUTH, current_member_id, current_operator_id, member_required,
                          member_signed, operator_actor, operator_required, signed_member_id)
from app.api.query import cached_query
from app.api.responses import fast_json, ok
from app.api.web import db, lazy_db, runtime
from app.audit.service import record
from app.boards import service as boards
from app.boards.credits import KINDS, METRICS
from app.boards.periods import PERIODS
from app.errors import NotFound
from app.grades.service import grade_of
from app.identity.merged import mark_key
from app.teams import membership

bp = APIBlueprint("boards", __name__, tag="boards")


class BoardQuery(Schema):
    metric = String(load_default="sales_fen", validate=OneOf(METRICS))
    period = String(load_default="week", validate=OneOf(PERIODS),
                    metadata={"description": "calendar day, ISO week or calendar month in Asia/Shanghai, or all"})
    date = Date(load_default=None, metadata={"description": "a Shanghai date in the period wanted (default today)"})
    limit = Integer(load_default=50, validate=Range(1, boards.TOP_MAX))


class MemberBoardQuery(BoardQuery):
    board = String(load_default="member", validate=OneOf(("member", "store")))
    league = Boolean(load_default=False, metadata={"description": "true: only members of my grade"})


class AdminBoardQuery(BoardQuery):
    board = String(load_default="member", validate=OneOf(KINDS))
    league = String(load_default="", metadata={"description": "a grade code: that league's board"})
    member_id = Integer(load_default=None, metadata={"description": "also show this subject's standing"})


class BoardRowOut(Schema):
    rank = Integer(metadata={"description": "equal scores share a rank"})
    id = Integer(allow_none=True, metadata={"description": "null for an anonymised member"})
    name = String(allow_none=True, metadata={"description": "a stable pseudonym when anonymised or opted out"})
    avatar_url = String()
    score = Integer(allow_none=True, metadata={"description": "fen for sales and commission, a count for new "
                                                              "members; null when the board hides amounts"})
    badges = List(String(), metadata={"description": "codes of the member's badges (GET /api/mp/badges names them)"})


class StandingOut(Schema):
    id = Integer()
    rank = Integer(allow_none=True, metadata={"description": "null when not on the board yet"})
    score = Integer()
    top_percent = Integer(allow_none=True, metadata={"description": "outside the top N: in the top X%"})


class BoardOut(Schema):
    board = String()
    period = String(metadata={"description": "d2026-12-01, w2026-W49, m2026-12 or all"})
    league = String(allow_none=True)
    size = Integer(metadata={"description": "how many are on the board"})
    hide_amounts = Boolean()
    items = List(Nested(BoardRowOut))
    me = Nested(StandingOut, allow_none=True)


class OptOutIn(Schema):
    opt_out = Boolean(required=True, metadata={"description": "true: others see me by a pseudonym"})


class OptOutOut(Schema):
    opt_out = Boolean()


class BoardConfigIn(Schema):
    enabled = Boolean(metadata={"description": "false: members do not see this board (operators still do)"})
    periods = List(String(validate=OneOf(PERIODS)), validate=Length(1, len(PERIODS)),
                   metadata={"description": "the periods members may pick: day, week, month, all"})
    leagues = Boolean(metadata={"description": "false: no board by grade league for members"})
    hide_amounts = Boolean()
    anonymise = Boolean()


class BoardConfigOut(Schema):
    board = String()
    enabled = Boolean()
    periods = List(String())
    leagues = Boolean()
    hide_amounts = Boolean()
    anonymise = Boolean()


class RetentionOut(Schema):
    kept_after_end = Dict(allow_none=True, metadata={"description": "{count, unit}: how long a closed period's "
                                                                    "board stays in Redis; null: never expires"})
    current = String()
    current_expires_at = String(allow_none=True)


class BoardConfigsOut(Schema):
    items = List(Nested(BoardConfigOut))
    retention = Dict(keys=String(), values=Nested(RetentionOut),
                     metadata={"description": "per period: when old boards expire (BOARDS_KEEP_DAYS, "
                                              "BOARDS_KEEP_WEEKS, BOARDS_KEEP_MONTHS)"})


def _read(q: dict, kind: str, me: int | None, viewer: int | None, league: str, private: bool,
          follow: str | None = None) -> dict:
    rt = runtime()
    return boards.standings(lazy_db, rt.redis, rt.settings.boards, kind=kind, metric=q["metric"], period=q["period"],
                            day=q["date"], league=league, limit=q["limit"], me=me, viewer=viewer,
                            private=private, secret=rt.settings.secret_key, follow=follow)


@bp.get("/api/mp/leaderboard")
@member_signed
@cached_query(bp, MemberBoardQuery)
@bp.doc(summary="A leaderboard's top N with my own rank and score (or top X%)", security=MEMBER_AUTH,
        responses=ok("the board and my standing", BoardOut))
def member_board(query):
    """The launch-day hot path: without a league, one Redis call and no database (the top with names is shared
    for a moment; a token signed before a merge reads as the survivor through its mark)."""
    on_member_board = query["board"] == "member"
    if not query["league"]:
        me = signed_member_id()
        return fast_json(_read(query, query["board"], me if on_member_board else None, me, "", True,
                               follow=mark_key(me)))
    me = current_member_id()
    if not boards.config(db(), query["board"], query["metric"])["leagues"]:
        raise NotFound("This board is not offered by league.", code="board_not_offered",
                       details={"leagues": False})
    league = grade_of(db(), me) if on_member_board else ""
    return fast_json(_read(query, query["board"], me if on_member_board else None, me, league, True))


@bp.get("/api/mp/team/leaderboard")
@member_required
@bp.input(BoardQuery, location="query", arg_name="query")
@bp.doc(summary="The team board with my team's rank and score", security=MEMBER_AUTH,
        responses=ok("the team board and my team's standing", BoardOut))
def team_board(query):
    seat = membership.membership(db(), current_member_id())
    if seat is None:
        raise NotFound("You are not in a team.", code="not_in_team")
    return _read(query, "team", seat.team_id, None, "", True)


@bp.put("/api/mp/leaderboard/opt-out")
@member_required
@bp.input(OptOutIn, arg_name="body")
@bp.doc(summary="Appear on boards by a pseudonym (or by name again)", security=MEMBER_AUTH,
        responses=ok("my choice", OptOutOut))
def opt_out(body):
    value = boards.set_opt_out(db(), current_member_id(), body["opt_out"])
    db().commit()
    return {"opt_out": value}


@bp.get("/api/admin/leaderboard")
@operator_required
@bp.input(AdminBoardQuery, location="query", arg_name="query")
@bp.doc(summary="Any board, period or league, with names and amounts", security=OPERATOR_AUTH,
        responses=ok("the board", BoardOut))
def admin_board(query):
    return _read(query, query["board"], query["member_id"], None, query["league"], False)


@bp.get("/api/admin/leaderboard/config")
@operator_required
@bp.doc(summary="Every board's offering and privacy, and when old period boards expire", security=OPERATOR_AUTH,
        responses=ok("the boards", BoardConfigsOut))
def list_configs():
    return {"items": boards.configs(db()), "retention": boards.retention(runtime().settings.boards)}


@bp.get("/api/admin/leaderboard/config/<kind>/<metric>")
@operator_required
@bp.doc(summary="A board's privacy", security=OPERATOR_AUTH, responses=ok("the board's privacy", BoardConfigOut))
def get_config(kind: str, metric: str):
    return boards.config(db(), kind, metric)


@bp.patch("/api/admin/leaderboard/config/<kind>/<metric>")
@operator_required
@bp.input(BoardConfigIn, arg_name="body")
@bp.doc(summary="What members are offered of a board (on/off, periods, leagues) and its privacy (hide amounts, "
                "anonymise names)", security=OPERATOR_AUTH,
        responses=ok("the board's privacy", BoardConfigOut))
def patch_config(kind: str, metric: str, body):
    out, changes = boards.set_config(db(), kind, metric, enabled=body.get("enabled"), periods=body.get("periods"),
                                     leagues=body.get("leagues"), hide_amounts=body.get("hide_amounts"),
                                     anonymise=body.get("anonymise"), operator_id=current_operator_id())
    for field, (before, after) in changes.items():
        record(db(), operator_actor(), f"board.{field}", "board", out["board"], before=before, after=after)
    db().commit()
    return out
