from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigInt, UTCDateTime, utcnow


class Team(Base):
    """A team led by a captain. Campaign codes attributed to the team and issued without a clerk or partner
    bind to the captain who led it when the code was made (the code stores that captain as its referrer)."""

    __tablename__ = "teams"
    __table_args__ = (
        # Two active teams never share a name; an archived team's name can be used again.
        Index("uq_teams_active_name", "name", unique=True, postgresql_where=text("status = 'active'"),
              sqlite_where=text("status = 'active'")),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    captain_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | archived
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[int | None] = mapped_column(BigInt, ForeignKey("operators.id"))  # None: seeded, not a person
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The team's invite code: a partner who enters it (or opens the link carrying it) joins the team.
    invite_code: Mapped[str | None] = mapped_column(String(16), unique=True)


class TeamMember(Base):
    """A member's current team: the primary key makes one team per member at a time. Figures count from
    `joined_at`."""

    __tablename__ = "team_members"

    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"), primary_key=True)
    team_id: Mapped[int] = mapped_column(BigInt, ForeignKey("teams.id"), index=True)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    via: Mapped[str] = mapped_column(String(16))  # invite | code | operator


class TeamMembershipChange(Base):
    """Every join, leave, move and removal, with who did it and when (the membership history)."""

    __tablename__ = "team_membership_changes"
    __table_args__ = (Index("ix_team_membership_changes_member", "member_id", "at"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInt, ForeignKey("members.id"))
    action: Mapped[str] = mapped_column(String(16))  # joined | left | moved | removed
    from_team_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("teams.id"))
    to_team_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("teams.id"), index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))  # member | captain | operator | system
    actor_id: Mapped[int | None] = mapped_column(BigInt)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
