"""Members: my team (join with an invite code, leave) and, for a captain, the members with their figures."""
from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Integer, List, Nested, String
from apiflask.validators import Length, Range

from app.api.auth import MEMBER_AUTH, current_member_id, member_required
from app.api.fields import Fen, Text
from app.api.responses import OkOut, ok
from app.api.web import db
from app.errors import NotFound
from app.members.models import Member
from app.teams import membership
from app.teams.models import Team

bp = APIBlueprint("member_team", __name__, tag="teams")


class JoinIn(Schema):
    invite_code = Text(required=True, validate=Length(1, 16),
                       metadata={"description": "the team's invite code, typed or from the invite link"})


class TeamQuery(Schema):
    days = Integer(load_default=30, validate=Range(1, 366))


class TeamMemberOut(Schema):
    member_id = Integer()
    nickname = String(allow_none=True)
    avatar_url = String()
    joined_at = String()
    via = String(metadata={"description": "invite, code (a team campaign code bound them) or operator"})
    sales_fen = Fen(metadata={"description": "sales of the orders they referred since joining, net of refunds"})
    new_members = Integer(metadata={"description": "members they bound since joining"})
    commission_fen = Fen(metadata={"description": "commission earned since joining, net of reversals"})


class MyTeamOut(Schema):
    id = Integer()
    name = String()
    captain = Nested(Schema.from_dict({"id": Integer(), "nickname": String(allow_none=True),
                                       "avatar_url": String()}, name="TeamCaptainOut"))
    joined_at = String()
    is_captain = Boolean()
    invite_code = String(allow_none=True, metadata={"description": "the captain's to share; null for members"})
    invite_path = String(allow_none=True, metadata={"description": "mini-program page that joins with the code"})
    days = Integer(allow_none=True)
    members = List(Nested(TeamMemberOut), allow_none=True,
                   metadata={"description": "the captain sees each member with their figures over `days` days "
                                            "(counted from joining); null for members"})


def _my_team(member_id: int, days: int) -> dict:
    s = db()
    seat = membership.membership(s, member_id)
    if seat is None:
        raise NotFound("You are not in a team.", code="not_in_team")
    team = s.get(Team, seat.team_id)
    captain = s.get(Member, team.captain_id)
    is_captain = team.captain_id == member_id
    out = {"id": team.id, "name": team.name, "joined_at": seat.joined_at.isoformat(), "is_captain": is_captain,
           "captain": {"id": captain.id, "nickname": captain.nickname, "avatar_url": captain.avatar_url},
           "invite_code": None, "invite_path": None, "days": None, "members": None}
    if is_captain:
        code = membership.invite_code(s, team)
        out.update(invite_code=code, invite_path=f"pages/team/join?code={code}", days=days,
                   members=[{**m, "joined_at": m["joined_at"].isoformat()}
                            for m in membership.members_with_figures(s, team.id, days)])
    return out


@bp.get("/api/mp/team")
@member_required
@bp.input(TeamQuery, location="query", arg_name="query")
@bp.doc(summary="My team; a captain also gets the invite code and each member's figures", security=MEMBER_AUTH,
        responses=ok("my team", MyTeamOut))
def my_team(query):
    out = _my_team(current_member_id(), query["days"])
    db().commit()  # the invite code, made on first look
    return out


@bp.post("/api/mp/team/join")
@member_required
@bp.input(JoinIn, arg_name="body")
@bp.doc(summary="Join a team with its invite code (active partners; one team at a time)", security=MEMBER_AUTH,
        responses=ok("the team joined", MyTeamOut))
def join(body):
    membership.join_by_invite(db(), current_member_id(), body["invite_code"])
    out = _my_team(current_member_id(), 30)
    db().commit()
    return out


@bp.post("/api/mp/team/leave")
@member_required
@bp.doc(summary="Leave my team (a captain cannot)", security=MEMBER_AUTH, responses=ok("left", OkOut))
def leave():
    membership.leave(db(), current_member_id())
    db().commit()
    return {"ok": True}


@bp.delete("/api/mp/team/members/<int:member_id>")
@member_required
@bp.doc(summary="A captain removes a member from the team", security=MEMBER_AUTH, responses=ok("removed", OkOut))
def remove(member_id: int):
    membership.remove_member(db(), member_id, captain_id=current_member_id())
    db().commit()
    return {"ok": True}
