"""Badges: milestones over a member's running figures, each earned once per member.

Figures move once per event (the subscriber's receipt), by an upsert that adds to the row under its lock, so two
events racing for one member both count. A badge is a row of member_badges whose primary key (member, badge)
makes it once per member: the insert that wins records `badge.earned`; a racing or replayed one inserts nothing.

Built-in badges are rows of badge_definitions seeded by the migration; operators add their own thresholds over
the same figures (and may switch any badge off for the future; earned badges stay)."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.boards.models import BadgeDefinition, BadgeFigure, MemberBadge
from app.db import utcnow
from app.errors import Conflict, NotFound, ValidationFailed
from app.events import record as record_event
from app.teams.models import TeamMember

FIGURES = {
    "referral_orders": "orders referred (level 1)",
    "new_members": "members bound",
    "team_members": "members of the team one captains",
    "withdrawals_paid": "withdrawals paid",
    "contest_wins": "contests won",
}
MAX_THRESHOLD = 10 ** 9


def _dialect(session: Session):
    return postgresql if session.get_bind().dialect.name == "postgresql" else sqlite


def add_to_figure(session: Session, member_id: int, figure: str, delta: int) -> int:
    """Add `delta` to a member's figure; returns the new value."""
    d = _dialect(session)
    stmt = d.insert(BadgeFigure.__table__).values(member_id=member_id, figure=figure, value=delta)
    stmt = stmt.on_conflict_do_update(index_elements=["member_id", "figure"],
                                      set_={"value": BadgeFigure.__table__.c.value + delta})
    return int(session.execute(stmt.returning(BadgeFigure.__table__.c.value)).scalar_one())


def raise_figure(session: Session, member_id: int, figure: str, value: int) -> int:
    """Raise a member's figure to `value` if that is higher (a count read fresh, e.g. a team's size)."""
    d = _dialect(session)
    table = BadgeFigure.__table__
    stmt = d.insert(table).values(member_id=member_id, figure=figure, value=value)
    stmt = stmt.on_conflict_do_update(index_elements=["member_id", "figure"],
                                      set_={"value": func.max(table.c.value, value) if d is sqlite
                                            else func.greatest(table.c.value, value)})
    return int(session.execute(stmt.returning(table.c.value)).scalar_one())


def award(session: Session, member_id: int, figure: str, value: int) -> list[str]:
    """Award every active badge over `figure` whose threshold `value` reaches and the member lacks; record
    `badge.earned` for each one this call inserted. Returns their codes."""
    due = session.execute(select(BadgeDefinition.code, BadgeDefinition.name)
                          .where(BadgeDefinition.figure == figure, BadgeDefinition.active.is_(True),
                                 BadgeDefinition.threshold <= value).order_by(BadgeDefinition.code)).all()
    earned = []
    for code, name in due:
        stmt = (_dialect(session).insert(MemberBadge.__table__)
                .values(member_id=member_id, badge=code, value=value, earned_at=utcnow())
                .on_conflict_do_nothing().returning(MemberBadge.__table__.c.badge))
        if session.execute(stmt).first() is not None:
            record_event(session, "badge.earned", member_id=member_id, badge=code, name=name, value=value)
            earned.append(code)
    return earned


def count(session: Session, member_id: int, figure: str, delta: int = 1) -> list[str]:
    return award(session, member_id, figure, add_to_figure(session, member_id, figure, delta))


def team_size(session: Session, team_id: int, captain_id: int) -> int:
    """Members of the team besides its captain."""
    return int(session.scalar(select(func.count()).select_from(TeamMember)
                              .where(TeamMember.team_id == team_id, TeamMember.member_id != captain_id)) or 0)


# -- reading -------------------------------------------------------------------------------------------------

def badges_of(session: Session, member_ids: list[int]) -> dict[int, list[dict]]:
    """{member: [{code, name, earned_at}]} earliest first, in one query."""
    out: dict[int, list[dict]] = {m: [] for m in member_ids}
    if not member_ids:
        return out
    rows = session.execute(select(MemberBadge.member_id, MemberBadge.badge, BadgeDefinition.name,
                                  MemberBadge.earned_at)
                           .join(BadgeDefinition, BadgeDefinition.code == MemberBadge.badge)
                           .where(MemberBadge.member_id.in_(sorted(set(member_ids))))
                           .order_by(MemberBadge.earned_at, MemberBadge.badge))
    for member_id, code, name, at in rows:
        out[member_id].append({"code": code, "name": name, "earned_at": at.isoformat()})
    return out


def definitions(session: Session) -> list[dict]:
    return [definition_out(d) for d in session.scalars(select(BadgeDefinition).order_by(BadgeDefinition.figure,
                                                                                         BadgeDefinition.threshold))]


def definition_out(d: BadgeDefinition) -> dict:
    return {"code": d.code, "name": d.name, "figure": d.figure, "threshold": d.threshold, "active": d.active,
            "builtin": d.builtin}


# -- operators -----------------------------------------------------------------------------------------------

def _check(figure: str | None, threshold, name: str | None) -> None:
    if figure is not None and figure not in FIGURES:
        raise ValidationFailed("Unknown figure.", code="badge_invalid", details={"figures": list(FIGURES)})
    if threshold is not None and (type(threshold) is not int or not 1 <= threshold <= MAX_THRESHOLD):
        raise ValidationFailed(f"threshold must be an integer from 1 to {MAX_THRESHOLD}.", code="badge_invalid")
    if name is not None and not " ".join(name.split()):
        raise ValidationFailed("Give the badge a name.", code="badge_invalid")


def define(session: Session, *, code: str, name: str, figure: str, threshold: int) -> BadgeDefinition:
    """An operator's own badge. Existing members who already passed the threshold earn it with their next
    counted event."""
    _check(figure, threshold, name)
    d = _dialect(session)
    inserted = session.execute(d.insert(BadgeDefinition.__table__).values(
        code=code, name=" ".join(name.split()), figure=figure, threshold=threshold, active=True, builtin=False,
        updated_at=utcnow()).on_conflict_do_nothing().returning(BadgeDefinition.__table__.c.code)).first()
    if inserted is None:
        raise Conflict("A badge with this code exists.", code="badge_exists", details={"code": code})
    return session.get(BadgeDefinition, code)


def change(session: Session, code: str, *, name: str | None = None, threshold: int | None = None,
           active: bool | None = None) -> tuple[BadgeDefinition, dict]:
    """Rename, move the threshold of, or switch a badge; returns it and {field: (before, after)}. Badges already
    earned stay earned."""
    badge = session.get(BadgeDefinition, code, with_for_update=True)
    if badge is None:
        raise NotFound("No such badge.", code="badge_not_found")
    _check(None, threshold, name)
    changes = {}
    for field, value in (("name", " ".join(name.split()) if name is not None else None), ("threshold", threshold),
                         ("active", active)):
        if value is not None and getattr(badge, field) != value:
            changes[field] = (getattr(badge, field), value)
            setattr(badge, field, value)
    if changes:
        badge.updated_at = utcnow()
    session.flush()
    return badge, changes
