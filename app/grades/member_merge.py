"""When two members turn out to be one person, the survivor keeps its grade, or takes the merged one's."""
from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.grades.models import MemberGrade
from app.members.merge import register_merge_hook


@register_merge_hook
def move_grade(session: Session, kept_id: int, merged_id: int) -> None:
    if session.get(MemberGrade, kept_id) is None:
        session.execute(update(MemberGrade).where(MemberGrade.member_id == merged_id).values(member_id=kept_id))
