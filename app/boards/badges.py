"""Badges: milestones over a member's running figures, each earned once per member.

Figures move once per event (the subscriber's receipt), by an upsert that adds to the row under its lock, so two
events racing for one member both count. A badge is a row of member_badges whose primary key (member, badge)
makes it once per member: the insert that wins records `badge.earned`; a racing or replayed one inserts nothing.

The built-in badges are defined here (BUILTIN); a row of badge_definitions with the same code overrides one (an
operator renamed it, moved its threshold or switched it off). Operators add their own thresholds over the same
figures; switching a badge off stops awarding it, and earned badges stay."""
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
BUILTIN = {  # code: (name, figure, threshold)
    "first_referral_order": ("首单推广", "referral_orders", 1),
    "team_10": ("十人团队", "team_members", 10),
    "team_100": ("百人团队", "team_members", 100),
    "first_withdrawal": ("首次提现", "withdrawals_paid", 1),
    "contest_winner": ("竞赛冠军", "contest_wins", 1),
}


def _all(session: Session) -> dict[str, dict]:
    """Every badge: the built-in ones, overridden by rows, and the operators' own."""
    out = {code: {"code": code, "name": n, "figure": f, "threshold": t, "active": True, "builtin": True}
           for code, (n, f, t) in BUILTIN.items()}
    for d in session.scalars(select(BadgeDefinition)):
        out[d.code] = definition_out(d)
    return out


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
    due = sorted((d for d in _all(session).values()
                  if d["figure"] == figure and d["active"] and d["threshold"] <= value), key=lambda d: d["code"])
    earned = []
    for d in due:
        stmt = (_dialect(session).insert(MemberBadge.__table__)
                .values(member_id=member_id, badge=d["code"], value=value, earned_at=utcnow())
                .on_conflict_do_nothing().returning(MemberBadge.__table__.c.badge))
        if session.execute(stmt).first() is not None:
            record_event(session, "badge.earned", member_id=member_id, badge=d["code"], title=d["name"], value=value)
            earned.append(d["code"])
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
    rows = session.execute(select(MemberBadge.member_id, MemberBadge.badge, MemberBadge.earned_at)
                           .where(MemberBadge.member_id.in_(sorted(set(member_ids))))
                           .order_by(MemberBadge.earned_at, MemberBadge.badge)).all()
    names = {code: d["name"] for code, d in _all(session).items()} if rows else {}
    for member_id, code, at in rows:
        out[member_id].append({"code": code, "name": names.get(code, code), "earned_at": at.isoformat()})
    return out


def progress(session: Session, member_id: int) -> list[dict]:
    """Every active badge (and any the member earned) with the member's figure and when they earned it."""
    earned = {b["code"]: b for b in badges_of(session, [member_id])[member_id]}
    figures = dict(session.execute(select(BadgeFigure.figure, BadgeFigure.value)
                                   .where(BadgeFigure.member_id == member_id)).all())
    return [{**d, "value": figures.get(d["figure"], 0), "earned_at": earned.get(d["code"], {}).get("earned_at")}
            for d in definitions(session) if d["active"] or d["code"] in earned]


def definitions(session: Session) -> list[dict]:
    return sorted(_all(session).values(), key=lambda d: (d["figure"], d["threshold"], d["code"]))


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
    if code in BUILTIN:
        raise Conflict("A badge with this code exists.", code="badge_exists", details={"code": code})
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
    if badge is None and code in BUILTIN:  # the first change of a built-in badge writes its row
        n, f, t = BUILTIN[code]
        session.execute(_dialect(session).insert(BadgeDefinition.__table__).values(
            code=code, name=n, figure=f, threshold=t, active=True, builtin=True, updated_at=utcnow())
            .on_conflict_do_nothing())
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
