"""Teams, as the operator manages them: create, rename, change captain, archive; and a team's codes and figures.

A team's campaign codes bind to the captain who led the team when the code was made: the code stores that
captain as its referrer. Changing the captain later does not re-point existing codes; the operator revokes
and re-issues them (a printed flyer's attribution must never move silently)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, NotFound, ValidationFailed
from app.members.models import Member
from app.members.service import get_member
from app.referrals.models import Partner, ReferralCode
from app.referrals.codes import create_campaign_code
from app.referrals.partners import partner_status
from app.referrals.views import code_stats
from app.teams import membership
from app.teams.models import Team

NAME_MAX = 64


def _clean_name(name: str | None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationFailed("Give the team a name.", code="team_name_required")
    if len(name) > NAME_MAX:
        raise ValidationFailed(f"A team name has at most {NAME_MAX} characters.", code="team_name_too_long")
    return name


def _captain(session: Session, member_id: int) -> int:
    """The live member id of a would-be captain, who must be an active partner."""
    member = get_member(session, member_id)
    status = partner_status(session, member.id)
    if status != "active":
        raise ValidationFailed("A team's captain must be an active partner.", code="captain_not_partner",
                               details={"member_id": member.id, "partner_status": status})
    return member.id


def _save_name(session: Session, team: Team, name: str) -> None:
    """Flush a new or renamed team; a name another active team holds (even one committed a moment ago) is a 409."""
    try:
        with session.begin_nested():
            team.name = name
            session.add(team)
            session.flush()
    except IntegrityError:
        raise Conflict("An active team already has this name.", code="team_name_taken",
                       details={"name": name}) from None


def get_team(session: Session, team_id: int, *, for_update: bool = False) -> Team:
    team = session.get(Team, team_id, with_for_update=True if for_update else None)
    if team is None:
        raise NotFound("No such team.", code="team_not_found")
    return team


def active_team(session: Session, team_id: int, *, for_update: bool = False) -> Team:
    """The team, which must be active: an archived team gets no new codes and no changes."""
    team = get_team(session, team_id, for_update=for_update)
    if team.status != "active":
        raise Conflict("This team is archived.", code="team_archived", details={"team_id": team.id})
    return team


def captain_for_new_codes(session: Session, team: Team) -> int:
    """Whom a new team code binds to: the captain, who must still be an active partner (a frozen or revoked
    partner's codes must not win anyone)."""
    status = partner_status(session, team.captain_id)
    if status != "active":
        raise Conflict("The team's captain is no longer an active partner; change the captain first.",
                       code="captain_inactive", details={"captain_id": team.captain_id, "partner_status": status})
    return team.captain_id


def list_teams(session: Session, status: str | None = None) -> list[Team]:
    query = select(Team).order_by(Team.id)
    if status:
        query = query.where(Team.status == status)
    return list(session.scalars(query))


def create_team(session: Session, *, name: str, captain_id: int, created_by: int | None = None) -> Team:
    """A new active team. `created_by` is the operator's id (None when seeded)."""
    name = _clean_name(name)
    team = Team(captain_id=_captain(session, captain_id), status="active", created_by=created_by)
    _save_name(session, team, name)
    membership.seat_captain(session, team, created_by)
    return team


def rename_team(session: Session, team_id: int, name: str) -> Team:
    return update_team(session, team_id, name=name)[0]


def change_captain(session: Session, team_id: int, captain_id: int) -> Team:
    """New codes bind to the new captain; codes already issued keep binding to the captain they were made for."""
    return update_team(session, team_id, captain_id=captain_id)[0]


def archive_team(session: Session, team_id: int) -> Team:
    """No new codes for the team and no more changes. Issued codes are left as they are: the team's figures
    list them, and the operator revokes the ones that must stop."""
    return update_team(session, team_id, archive=True)[0]


def update_team(session: Session, team_id: int, *, name: str | None = None, captain_id: int | None = None,
                archive: bool = False, operator_id: int | None = None) -> tuple[Team, dict[str, list]]:
    """Rename, change captain and/or archive, in that order. Returns the team and what changed
    ({field: [before, after]}); archiving an archived team changes nothing, any other change to it is a 409."""
    if name is not None or captain_id is not None:
        team = active_team(session, team_id, for_update=True)
    else:
        team = get_team(session, team_id, for_update=True)
    changes: dict[str, list] = {}
    if name is not None:
        name = _clean_name(name)
        if name != team.name:
            changes["name"] = [team.name, name]
            _save_name(session, team, name)
    if captain_id is not None:
        captain_id = _captain(session, captain_id)
        if captain_id != team.captain_id:
            changes["captain_id"] = [team.captain_id, captain_id]
            previous, team.captain_id = team.captain_id, captain_id
            session.flush()
            membership.seat_captain(session, team, operator_id)  # the new captain joins (moves into) the team
            membership.unseat_captain(session, previous)  # the old one stays a member, without the role
    if archive and team.status != "archived":
        changes["status"] = [team.status, "archived"]
        team.status, team.archived_at = "archived", utcnow()
        session.flush()
        membership.release_all(session, team.id, operator_id)
        membership.unseat_captain(session, team.captain_id)
    session.flush()
    return team, changes


def captains(session: Session, teams: list[Team]) -> dict[int, dict]:
    """Nickname and partner standing of the teams' captains, in one query (an operator sees at a glance that a
    captain was frozen and new team codes need a new captain)."""
    ids = {t.captain_id for t in teams}
    if not ids:
        return {}
    rows = session.execute(select(Member.id, Member.nickname, Partner.status)
                           .outerjoin(Partner, Partner.member_id == Member.id).where(Member.id.in_(ids))).all()
    return {r[0]: {"id": r[0], "nickname": r[1], "partner_status": r[2]} for r in rows}


def team_codes(session: Session, team_id: int) -> list[ReferralCode]:
    return list(session.scalars(select(ReferralCode).where(ReferralCode.team_id == team_id)
                                .order_by(ReferralCode.id)))


def create_team_code(session: Session, team_id: int, *, label: str, referrer_id: int | None = None,
                     store_id: int | None = None) -> ReferralCode:
    """A campaign code of the team. Without a clerk or partner it binds to the team's captain: the captain is
    resolved now and stored as the code's referrer, so changing the captain later leaves issued codes (printed
    flyers) where they were; the operator revokes and re-issues them to move them."""
    team = active_team(session, team_id, for_update=True)  # 404 team_not_found, 409 team_archived
    if referrer_id is None:
        referrer_id = captain_for_new_codes(session, team)  # 409 captain_inactive
    return create_campaign_code(session, label=label, referrer_id=referrer_id, store_id=store_id, team_id=team_id)


def team_figures(session: Session, team_id: int, days: int = 30) -> dict:
    """The team's codes with each code's scans, follows and binds over the last `days` days (the operator's
    code statistics, one query per code), and the team's totals."""
    codes = []
    for code in team_codes(session, team_id):
        totals = code_stats(session, code.id, days)["totals"]
        codes.append({"code": code, **totals})
    totals = {k: sum(c[k] for c in codes) for k in ("scans", "follows", "binds")}
    totals["conversion"] = round(totals["binds"] / totals["scans"], 4) if totals["scans"] else 0.0
    return {"days": days, "totals": totals, "codes": codes}
