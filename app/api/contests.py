"""Contests (PK) and their prizes: operators create contests with published tie and prize rules and review held
prizes; members see contests with live standings or frozen results, and what they won."""
from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import DateTime, Dict, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from app.api.auth import (MEMBER_AUTH, OPERATOR_AUTH, current_member_id, current_operator_id, member_required,
                          operator_actor, operator_required)
from app.api.boards import BoardRowOut
from app.api.fields import Text
from app.api.responses import ok
from app.api.web import db, runtime
from app.audit.service import record
from app.boards import contests, prizes
from app.boards import service as boards
from app.boards.credits import METRICS
from app.teams import membership

bp = APIBlueprint("contests", __name__, tag="contests")


class ContestIn(Schema):
    name = Text(required=True, validate=Length(1, 64))
    kind = String(required=True, validate=OneOf(("member", "team")))
    metric = String(required=True, validate=OneOf(METRICS))
    starts_at = DateTime(required=True, metadata={"description": "ISO 8601 with offset"})
    ends_at = DateTime(required=True, metadata={"description": "the deadline: results freeze after it"})
    tie_rule = String(load_default="shared", validate=OneOf(contests.TIE_RULES),
                      metadata={"description": "shared: equal scores share a rank; earlier: of equal scores, the "
                                               "one who got there first ranks higher"})
    prizes = List(Dict(), load_default=None, metadata={"description": (
        "prize rules, integer fen. Members: {ranks: [from, to], amount_fen} or {goal, amount_fen} (the highest "
        "goal reached pays). Teams: {ranks | goal, captain_fen, members_fen}: the captain's reward and a pool the "
        "members share by what each contributed")})


class PrizeOut(Schema):
    id = Integer()
    contest_id = Integer()
    member_id = Integer()
    role = String(metadata={"description": "winner, goal (member contests); captain, share, goal_captain, "
                                           "goal_share (team contests)"})
    team_id = Integer(allow_none=True)
    rank = Integer(allow_none=True)
    amount_fen = Integer()
    status = String(metadata={"description": "pending (being checked), granted (paid to the available balance), "
                                             "held (waits for an operator), rejected"})
    findings = List(Dict(), metadata={"description": "the fraud signals that held it"})
    decided_by = Integer(allow_none=True)
    decided_at = String(allow_none=True)


class ContestOut(Schema):
    id = Integer()
    name = String()
    kind = String()
    metric = String()
    starts_at = String()
    ends_at = String()
    tie_rule = String()
    prizes = List(Dict())
    status = String(metadata={"description": "open (live standings) or frozen (final results)"})
    frozen_at = String(allow_none=True)
    size = Integer(metadata={"description": "how many members or teams are placed"})
    standings = List(Nested(BoardRowOut), metadata={"description": "the first `limit` places"})
    me = Nested(BoardRowOut, allow_none=True, metadata={
        "description": "members: my own place (a team contest: my current team's), wherever it is; null if not "
                       "placed"})
    my_prizes = List(Nested(PrizeOut), metadata={"description": "members: what I won in it"})


class ContestSummaryOut(Schema):
    id = Integer()
    name = String()
    kind = String()
    metric = String()
    starts_at = String()
    ends_at = String()
    status = String()


class ContestListOut(Schema):
    items = List(Nested(ContestSummaryOut))


class ContestQuery(Schema):
    limit = Integer(load_default=50, validate=Range(1, 1000), metadata={"description": "places to list"})


class ContestListQuery(Schema):
    status = String(load_default=None, validate=OneOf(("open", "frozen")))
    limit = Integer(load_default=50, validate=Range(1, 200))


class PrizeListQuery(Schema):
    status = String(load_default=None, validate=OneOf(("pending", "held", "granted", "rejected")))
    contest_id = Integer(load_default=None, validate=Range(1, 2 ** 62))
    member_id = Integer(load_default=None, validate=Range(1, 2 ** 62))
    limit = Integer(load_default=100, validate=Range(1, 500))


class PrizeListOut(Schema):
    items = List(Nested(PrizeOut))


def _summary(c) -> dict:
    return {"id": c.id, "name": c.name, "kind": c.kind, "metric": c.metric, "starts_at": c.starts_at.isoformat(),
            "ends_at": c.ends_at.isoformat(), "status": c.status}


def _listed(query: dict) -> dict:
    return {"items": [_summary(c) for c in contests.list_contests(db(), status=query["status"],
                                                                   limit=query["limit"])]}


def _contest(contest, private: bool, viewer: int | None, limit: int = 50) -> dict:
    """The contest with its first `limit` places and, for a member, their own (or their team's) place. Members
    read live standings shared for CONTEST_LIVE_SECONDS; operators (few) read them fresh."""
    rt = runtime()
    rows = contests.standings(db(), contest, rt.settings.boards.live_seconds if viewer is not None else 0.0)
    subject = viewer
    if viewer is not None and contest.kind == "team":
        seat = membership.membership(db(), viewer)
        subject = seat.team_id if seat is not None else None
    top, me = contests.page(rows, limit, subject)
    named = boards.named_rows(db(), contest.kind, top + ([me] if me is not None else []),
                              secret=rt.settings.secret_key, viewer=viewer, private=private)
    mine = prizes.prizes_of(db(), contest_id=contest.id, member_id=viewer) if viewer is not None else []
    return {**_summary(contest), "tie_rule": contest.tie_rule, "prizes": contest.prizes or [],
            "frozen_at": contest.frozen_at.isoformat() if contest.frozen_at else None, "size": len(rows),
            "standings": named[:len(top)], "me": named[len(top)] if me is not None else None,
            "my_prizes": [prizes.prize_out(p) for p in mine]}


@bp.post("/api/admin/contests")
@operator_required
@bp.input(ContestIn, arg_name="body")
@bp.doc(summary="Create a contest between members or teams over a fixed window, with its prizes",
        security=OPERATOR_AUTH, responses=ok("the contest", ContestOut, 201))
def create_contest(body):
    contest = contests.create_contest(db(), **body, created_by=current_operator_id())
    record(db(), operator_actor(), "contest.created", "contest", contest.id, name=contest.name, kind=contest.kind,
           metric=contest.metric, starts_at=contest.starts_at.isoformat(), ends_at=contest.ends_at.isoformat(),
           tie_rule=contest.tie_rule, prizes=contest.prizes)
    out = _contest(contest, False, None)
    db().commit()
    return out, 201


@bp.get("/api/admin/contests")
@operator_required
@bp.input(ContestListQuery, location="query", arg_name="query")
@bp.doc(summary="Contests, latest deadline first", security=OPERATOR_AUTH, responses=ok("contests", ContestListOut))
def admin_contests(query):
    return _listed(query)


@bp.get("/api/admin/contests/<int:contest_id>")
@operator_required
@bp.input(ContestQuery, location="query", arg_name="query")
@bp.doc(summary="A contest with its live standings or frozen results", security=OPERATOR_AUTH,
        responses=ok("the contest", ContestOut))
def admin_contest(contest_id: int, query):
    return _contest(contests.get_contest(db(), contest_id), False, None, query["limit"])


@bp.get("/api/admin/prizes")
@operator_required
@bp.input(PrizeListQuery, location="query", arg_name="query")
@bp.doc(summary="Contest prizes, newest first (status=held: the ones waiting for a decision)",
        security=OPERATOR_AUTH, responses=ok("prizes", PrizeListOut))
def admin_prizes(query):
    return {"items": [prizes.prize_out(p) for p in prizes.prizes_of(
        db(), contest_id=query["contest_id"], member_id=query["member_id"], status=query["status"],
        limit=query["limit"])]}


def _decide(prize_id: int, grant: bool) -> dict:
    prize = prizes.decide(db(), prize_id, grant=grant, operator_id=current_operator_id())
    record(db(), operator_actor(), "prize.granted" if grant else "prize.rejected", "contest_prize", prize.id,
           contest_id=prize.contest_id, member_id=prize.member_id, amount_fen=prize.amount_fen)
    out = prizes.prize_out(prize)
    db().commit()
    return out


@bp.post("/api/admin/prizes/<int:prize_id>/grant")
@operator_required
@bp.doc(summary="Pay a held prize (the operator looked at its fraud signals)", security=OPERATOR_AUTH,
        responses=ok("the prize", PrizeOut))
def grant_prize(prize_id: int):
    return _decide(prize_id, True)


@bp.post("/api/admin/prizes/<int:prize_id>/reject")
@operator_required
@bp.doc(summary="Refuse a held prize", security=OPERATOR_AUTH, responses=ok("the prize", PrizeOut))
def reject_prize(prize_id: int):
    return _decide(prize_id, False)


@bp.get("/api/mp/contests")
@member_required
@bp.input(ContestListQuery, location="query", arg_name="query")
@bp.doc(summary="Contests: open ones with live standings, and finished ones", security=MEMBER_AUTH,
        responses=ok("contests", ContestListOut))
def member_contests(query):
    return _listed(query)


@bp.get("/api/mp/contests/<int:contest_id>")
@member_required
@bp.input(ContestQuery, location="query", arg_name="query")
@bp.doc(summary="A contest's first places (live, or frozen results), my own place and what I won",
        security=MEMBER_AUTH, responses=ok("the contest", ContestOut))
def member_contest(contest_id: int, query):
    return _contest(contests.get_contest(db(), contest_id), True, current_member_id(), query["limit"])
