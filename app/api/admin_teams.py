"""Operators: teams (a name and a captain) to which campaign codes are attributed, and each team's figures."""
from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Dict, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from app.api.admin_referrals import CodeOut, _code
from app.api.auth import OPERATOR_AUTH, current_operator_id, operator_actor, operator_required
from app.api.fields import Int, Text
from app.api.member_team import TeamMemberOut
from app.api.responses import OkOut, list_of, ok
from app.api.web import db
from app.audit.service import record
from app.errors import NotFound, ValidationFailed
from app.teams import membership
from app.teams import service as teams
from app.teams.models import Team

bp = APIBlueprint("admin_teams", __name__, tag="admin")


class TeamIn(Schema):
    name = Text(required=True, validate=Length(1, teams.NAME_MAX))
    captain_id = Int(required=True, metadata={"description": "member id of an active partner"})


class TeamEditIn(Schema):
    name = Text(validate=Length(1, teams.NAME_MAX))
    captain_id = Int(metadata={"description": "new captain (an active partner); codes already issued keep "
                                                  "binding to the captain they were made for"})
    status = String(validate=OneOf(("archived",)),
                    metadata={"description": "archived: no new codes or changes; issued codes keep working "
                                             "until revoked"})


class TeamsQuery(Schema):
    status = String(load_default=None, validate=OneOf(("active", "archived")))


class TeamQuery(Schema):
    days = Integer(load_default=30, validate=Range(1, 366))


class CaptainOut(Schema):
    id = Integer()
    nickname = String(allow_none=True)
    partner_status = String(allow_none=True)


class TeamOut(Schema):
    id = Integer()
    name = String()
    status = String(metadata={"description": "active or archived"})
    captain = Nested(CaptainOut)
    created_at = String()
    created_by = Integer(allow_none=True)
    archived_at = String(allow_none=True)


class TeamCodeOut(CodeOut):
    scans = Integer()
    follows = Integer()
    binds = Integer()
    conversion = Float(metadata={"description": "binds / scans"})


class TeamDetailOut(TeamOut):
    figures = Dict(metadata={"description": "days, and totals of scans, follows and binds"})
    codes = List(Nested(TeamCodeOut), metadata={"description": "each code with its own figures"})


_ACTIONS = {"name": "team.renamed", "captain_id": "team.captain_changed", "status": "team.archived"}


def _team(team: Team, captain: dict | None) -> dict:
    return {"id": team.id, "name": team.name, "status": team.status,
            "captain": captain or {"id": team.captain_id, "nickname": None, "partner_status": None},
            "created_at": team.created_at.isoformat(), "created_by": team.created_by,
            "archived_at": team.archived_at.isoformat() if team.archived_at else None}


def _one(team: Team) -> dict:
    return _team(team, teams.captains(db(), [team]).get(team.captain_id))


@bp.post("/api/admin/teams")
@operator_required
@bp.input(TeamIn, arg_name="body")
@bp.doc(summary="Create a team led by a captain (an active partner)", security=OPERATOR_AUTH,
        responses=ok("the new team", TeamOut, 201))
def create_team(body):
    team = teams.create_team(db(), name=body["name"], captain_id=body["captain_id"],
                             created_by=current_operator_id())
    record(db(), operator_actor(), "team.created", "team", team.id, name=team.name, captain_id=team.captain_id)
    out = _one(team)
    db().commit()
    return out, 201


@bp.get("/api/admin/teams")
@operator_required
@bp.input(TeamsQuery, location="query", arg_name="query")
@bp.doc(summary="Teams, oldest first", security=OPERATOR_AUTH, responses=ok("the teams", list_of(TeamOut)))
def list_teams(query):
    rows = teams.list_teams(db(), query["status"])
    caps = teams.captains(db(), rows)
    return {"items": [_team(t, caps.get(t.captain_id)) for t in rows]}


@bp.get("/api/admin/teams/<int:team_id>")
@operator_required
@bp.input(TeamQuery, location="query", arg_name="query")
@bp.doc(summary="A team with its campaign codes and each code's scans, follows and binds over `days` days",
        security=OPERATOR_AUTH, responses=ok("the team, its figures and codes", TeamDetailOut))
def get_team(team_id: int, query):
    team = teams.get_team(db(), team_id)
    figures = teams.team_figures(db(), team.id, query["days"])
    codes = [{**_code(c.pop("code")), **c} for c in figures["codes"]]
    return {**_one(team), "figures": {"days": figures["days"], "totals": figures["totals"]}, "codes": codes}


@bp.patch("/api/admin/teams/<int:team_id>")
@operator_required
@bp.input(TeamEditIn, arg_name="body")
@bp.doc(summary="Rename a team, change its captain or archive it", security=OPERATOR_AUTH,
        responses=ok("the team as changed", TeamOut))
def patch_team(team_id: int, body):
    if not body:
        raise ValidationFailed("Send a new name, a new captain or status=archived.", code="nothing_to_change")
    team, changes = teams.update_team(db(), team_id, name=body.get("name"), captain_id=body.get("captain_id"),
                                      archive=body.get("status") == "archived", operator_id=current_operator_id())
    for field, (before, after) in changes.items():
        record(db(), operator_actor(), _ACTIONS[field], "team", team.id, before=before, after=after)
    out = _one(team)
    db().commit()
    return out


class MembershipChangeOut(Schema):
    id = Integer()
    member_id = Integer()
    action = String(metadata={"description": "joined, left, moved or removed"})
    from_team_id = Integer(allow_none=True)
    to_team_id = Integer(allow_none=True)
    actor_kind = String(metadata={"description": "member, captain, operator or system (a team code)"})
    actor_id = Integer(allow_none=True)
    at = String()


@bp.get("/api/admin/teams/<int:team_id>/members")
@operator_required
@bp.input(TeamQuery, location="query", arg_name="query")
@bp.doc(summary="A team's members with each one's figures over `days` days, counted from joining",
        security=OPERATOR_AUTH, responses=ok("the members, best sellers first", list_of(TeamMemberOut)))
def team_members(team_id: int, query):
    teams.get_team(db(), team_id)
    rows = membership.members_with_figures(db(), team_id, query["days"])
    return {"items": [{**m, "joined_at": m["joined_at"].isoformat()} for m in rows]}


@bp.put("/api/admin/teams/<int:team_id>/members/<int:member_id>")
@operator_required
@bp.doc(summary="Put a member into this team (moving them out of the one they are in)", security=OPERATOR_AUTH,
        responses=ok("the member's seat", OkOut))
def move_member(team_id: int, member_id: int):
    before = membership.membership(db(), member_id)
    before_team = before.team_id if before else None
    seat = membership.move_member(db(), member_id, team_id, current_operator_id())
    if before_team != seat.team_id:
        record(db(), operator_actor(), "team.member_moved", "member", seat.member_id,
               before=before_team, after=seat.team_id)
    db().commit()
    return {"ok": True}


@bp.delete("/api/admin/teams/<int:team_id>/members/<int:member_id>")
@operator_required
@bp.doc(summary="Remove a member from this team", security=OPERATOR_AUTH, responses=ok("removed", OkOut))
def remove_member(team_id: int, member_id: int):
    seat = membership.membership(db(), member_id)
    if seat is None or seat.team_id != team_id:
        raise NotFound("This member is not in this team.", code="not_in_team")
    membership.remove_member(db(), member_id, operator_id=current_operator_id())
    record(db(), operator_actor(), "team.member_removed", "member", member_id, team_id=team_id)
    db().commit()
    return {"ok": True}


@bp.get("/api/admin/teams/<int:team_id>/history")
@operator_required
@bp.doc(summary="Who joined, left, moved or was removed, by whom and when, newest first", security=OPERATOR_AUTH,
        responses=ok("the team's membership history", list_of(MembershipChangeOut)))
def team_history(team_id: int):
    teams.get_team(db(), team_id)
    return {"items": [{"id": c.id, "member_id": c.member_id, "action": c.action, "from_team_id": c.from_team_id,
                       "to_team_id": c.to_team_id, "actor_kind": c.actor_kind, "actor_id": c.actor_id,
                       "at": c.at.isoformat()} for c in membership.history(db(), team_id=team_id)]}
