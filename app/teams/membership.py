"""Team membership: a partner joins a captain's team with the team's invite code, a team campaign code brings
the members it binds into the team, one team per member at a time. Every join, leave, move and removal is kept
in the membership history with who did it and when; a member's team figures count from joining."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.commissions.models import Commission
from app.db import utcnow
from app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.events import record as record_event
from app.members.models import Member
from app.members.service import get_member, grant_role, revoke_role
from app.orders.models import Order
from app.referrals.models import Binding
from app.referrals.partners import partner_status
from app.teams.models import Team, TeamMember, TeamMembershipChange

INVITE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed by hand


def _history(session: Session, member_id: int, action: str, from_team: int | None, to_team: int | None,
             actor_kind: str, actor_id: int | None) -> None:
    session.add(TeamMembershipChange(member_id=member_id, action=action, from_team_id=from_team,
                                     to_team_id=to_team, actor_kind=actor_kind, actor_id=actor_id, at=utcnow()))


def _team(session: Session, team_id: int, *, active: bool = False) -> Team:
    team = session.get(Team, team_id)
    if team is None:
        raise NotFound("No such team.", code="team_not_found")
    if active and team.status != "active":
        raise Conflict("This team is archived.", code="team_archived", details={"team_id": team.id})
    return team


def invite_code(session: Session, team: Team) -> str:
    """The team's invite code, made on first use."""
    while team.invite_code is None:
        code = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(8))
        try:
            with session.begin_nested():
                team.invite_code = code
                session.flush()
        except IntegrityError:
            team.invite_code = None
    return team.invite_code


def membership(session: Session, member_id: int, *, for_update: bool = False) -> TeamMember | None:
    return session.get(TeamMember, member_id, with_for_update=True if for_update else None)


def _lock_member(session: Session, member_id: int) -> None:
    """Serialise membership changes of one member (two joins racing must not both pass the one-team check)."""
    session.execute(select(Member.id).where(Member.id == member_id).with_for_update())


def _seat(session: Session, member_id: int, team_id: int, via: str, actor_kind: str, actor_id: int | None,
          *, move: bool) -> TeamMember:
    _lock_member(session, member_id)
    current = membership(session, member_id)
    if current is not None and current.team_id == team_id:
        return current
    if current is not None:
        if not move:
            raise Conflict("You are already in a team; leave it first.", code="already_in_team",
                           details={"team_id": current.team_id})
        _guard_captain_leaving(session, current)
        _history(session, member_id, "moved", current.team_id, team_id, actor_kind, actor_id)
        current.team_id, current.joined_at, current.via = team_id, utcnow(), via
        session.flush()
        _joined(session, current)
        return current
    row = TeamMember(member_id=member_id, team_id=team_id, joined_at=utcnow(), via=via)
    session.add(row)
    _history(session, member_id, "joined", None, team_id, actor_kind, actor_id)
    session.flush()
    _joined(session, row)
    return row


def _joined(session: Session, seat: TeamMember) -> None:
    captain = session.scalar(select(Team.captain_id).where(Team.id == seat.team_id))
    record_event(session, "team.joined", team_id=seat.team_id, member_id=seat.member_id, captain_id=captain,
                 via=seat.via)


def _guard_captain_leaving(session: Session, current: TeamMember) -> None:
    team = session.get(Team, current.team_id)
    if team is not None and team.status == "active" and team.captain_id == current.member_id:
        raise Conflict("A team's captain cannot leave it; an operator appoints another captain first.",
                       code="captain_cannot_leave", details={"team_id": team.id})


def join_by_invite(session: Session, member_id: int, code: str) -> TeamMember:
    """A partner joins the team whose invite code this is. Joining the team one is in changes nothing."""
    member = get_member(session, member_id)
    code = (code or "").strip().upper()
    team = session.scalar(select(Team).where(Team.invite_code == code)) if code else None
    if team is None:
        raise NotFound("No team has this invite code.", code="team_invite_invalid")
    _team(session, team.id, active=True)  # 409 team_archived
    if partner_status(session, member.id) != "active":
        raise ValidationFailed("Only an active partner can join a team.", code="team_join_not_partner")
    return _seat(session, member.id, team.id, "invite", "member", member.id, move=False)


def join_by_code(session: Session, member_id: int, team_id: int) -> TeamMember | None:
    """A member bound by a team campaign code joins that team, unless already in one (a code never moves
    anyone out of a team) or the team is archived."""
    member = get_member(session, member_id)
    team = session.get(Team, team_id)
    if team is None or team.status != "active":
        return None
    _lock_member(session, member.id)
    if membership(session, member.id) is not None:
        return None
    return _seat(session, member.id, team.id, "code", "system", None, move=False)


def seat_captain(session: Session, team: Team, operator_id: int | None) -> None:
    """The captain is a member of the team and holds the captain role (shown in the profile)."""
    _seat(session, team.captain_id, team.id, "operator", "operator", operator_id, move=True)
    grant_role(session, team.captain_id, "captain")


def unseat_captain(session: Session, member_id: int) -> None:
    """Drop the captain role of a member who leads no active team any more."""
    leads = session.scalar(select(func.count()).select_from(Team)
                           .where(Team.captain_id == member_id, Team.status == "active"))
    if not leads:
        revoke_role(session, member_id, "captain")


def leave(session: Session, member_id: int) -> None:
    _lock_member(session, member_id)
    current = membership(session, member_id)
    if current is None:
        raise NotFound("You are not in a team.", code="not_in_team")
    _guard_captain_leaving(session, current)
    _history(session, member_id, "left", current.team_id, None, "member", member_id)
    session.delete(current)
    session.flush()


def remove_member(session: Session, member_id: int, *, captain_id: int | None = None,
                  operator_id: int | None = None) -> int:
    """A captain removes a member of their team (or an operator any member). Returns the team id."""
    _lock_member(session, member_id)
    current = membership(session, member_id)
    if current is None:
        raise NotFound("This member is not in a team.", code="not_in_team")
    if captain_id is not None:
        team = _team(session, current.team_id)
        if team.captain_id != captain_id or team.status != "active":
            raise Forbidden("Only the member's captain can remove them.", code="not_your_member")
    _guard_captain_leaving(session, current)
    _history(session, member_id, "removed", current.team_id, None,
             "captain" if captain_id is not None else "operator", captain_id if captain_id is not None else operator_id)
    team_id = current.team_id
    session.delete(current)
    session.flush()
    return team_id


def move_member(session: Session, member_id: int, team_id: int, operator_id: int | None) -> TeamMember:
    """An operator puts a member into a team, out of the one they were in."""
    member = get_member(session, member_id)
    team = _team(session, team_id, active=True)
    return _seat(session, member.id, team.id, "operator", "operator", operator_id, move=True)


def release_all(session: Session, team_id: int, operator_id: int | None) -> None:
    """An archived team has no members: each one is recorded as removed by the operator."""
    rows = list(session.scalars(select(TeamMember).where(TeamMember.team_id == team_id).with_for_update()))
    for row in rows:
        _history(session, row.member_id, "removed", team_id, None, "operator", operator_id)
    session.execute(delete(TeamMember).where(TeamMember.team_id == team_id))
    session.flush()


def history(session: Session, *, team_id: int | None = None, member_id: int | None = None,
            limit: int = 200) -> list[TeamMembershipChange]:
    query = select(TeamMembershipChange).order_by(TeamMembershipChange.id.desc()).limit(limit)
    if team_id is not None:
        query = query.where((TeamMembershipChange.from_team_id == team_id)
                            | (TeamMembershipChange.to_team_id == team_id))
    if member_id is not None:
        query = query.where(TeamMembershipChange.member_id == member_id)
    return list(session.scalars(query))


def members_with_figures(session: Session, team_id: int, days: int = 30, now: datetime | None = None) -> list[dict]:
    """The team's members, each with their figures over the last `days` days counted from when they joined
    (whichever is later): sales of the orders they referred (net of refunds), members they bound, commission
    earned (net of reversals). Best sellers first."""
    now = now or utcnow()
    since = now - timedelta(days=days)
    rows = session.execute(select(TeamMember, Member.nickname, Member.avatar_url)
                           .join(Member, Member.id == TeamMember.member_id)
                           .where(TeamMember.team_id == team_id)).all()
    if not rows:
        return []
    start = {r[0].member_id: max(r[0].joined_at, since) for r in rows}
    ids = list(start)
    sales: dict[int, int] = {}
    commission: dict[int, int] = {}
    for earner, level, amount, reversed_, paid, refunded, at in session.execute(
            select(Commission.earner_id, Commission.level, Commission.amount_fen, Commission.reversed_fen,
                   Order.paid_fen, Order.refunded_fen, Order.paid_at)
            .join(Order, Order.id == Commission.order_id)
            .where(Commission.earner_id.in_(ids), Order.paid_at >= min(start.values()))):
        if at < start[earner]:
            continue
        commission[earner] = commission.get(earner, 0) + amount - reversed_
        if level == 1:
            sales[earner] = sales.get(earner, 0) + paid - refunded
    bound: dict[int, int] = {}
    for referrer, at in session.execute(select(Binding.referrer_id, Binding.created_at)
                                        .where(Binding.referrer_id.in_(ids),
                                               Binding.created_at >= min(start.values()))):
        if at >= start[referrer]:
            bound[referrer] = bound.get(referrer, 0) + 1
    out = [{"member_id": m.member_id, "nickname": nick, "avatar_url": avatar, "joined_at": m.joined_at,
            "via": m.via, "sales_fen": sales.get(m.member_id, 0), "new_members": bound.get(m.member_id, 0),
            "commission_fen": commission.get(m.member_id, 0)} for m, nick, avatar in rows]
    out.sort(key=lambda r: (-r["sales_fen"], -r["new_members"], r["member_id"]))
    return out
