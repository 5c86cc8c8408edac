"""When two members turn out to be one person, the teams the merged account captained follow the survivor, and
so does its team membership unless the survivor is in a team already."""
from __future__ import annotations

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from app.members.merge import register_merge_hook
from app.teams.models import Team, TeamMember, TeamMembershipChange


def move_captaincy(session: Session, kept_id: int, merged_id: int) -> None:
    session.execute(update(Team).where(Team.captain_id == merged_id).values(captain_id=kept_id))
    if session.get(TeamMember, kept_id) is None:
        session.execute(update(TeamMember).where(TeamMember.member_id == merged_id).values(member_id=kept_id))
    else:
        session.execute(delete(TeamMember).where(TeamMember.member_id == merged_id))
    session.execute(update(TeamMembershipChange).where(TeamMembershipChange.member_id == merged_id)
                    .values(member_id=kept_id))


register_merge_hook(move_captaincy)
