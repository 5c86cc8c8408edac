"""When two members turn out to be one person, the teams the merged account captained follow the survivor."""
from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.members.merge import register_merge_hook
from app.teams.models import Team


def move_captaincy(session: Session, kept_id: int, merged_id: int) -> None:
    session.execute(update(Team).where(Team.captain_id == merged_id).values(captain_id=kept_id))


register_merge_hook(move_captaincy)
