"""What partners, clerks, store managers and operators see of referrals."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import Date, case, cast, func, select
from sqlalchemy.orm import Session, aliased

from app.crypto import mask_name
from app.members.models import Member
from app.referrals.models import Binding, ReferralCode, Touch

SHANGHAI = timezone(timedelta(hours=8))


def _first_binding_channel(session: Session, referrer_id: int, member_ids: list[int]) -> dict[int, str]:
    if not member_ids:
        return {}
    rows = session.execute(select(Binding.member_id, Binding.channel, Binding.created_at)
                           .where(Binding.referrer_id == referrer_id, Binding.member_id.in_(member_ids))
                           .order_by(Binding.created_at.desc())).all()
    out: dict[int, str] = {}
    for member_id, channel, _ in rows:
        out.setdefault(member_id, channel)
    return out


def direct_referrals_of(session: Session, partner_id: int, limit: int = 50, before_id: int | None = None) -> dict:
    """A partner's direct referrals (newest first) and the size of the second level."""
    query = select(Member.id, Member.nickname, Member.avatar_url, Member.bound_at).where(
        Member.referrer_id == partner_id, Member.status == "active")
    if before_id:
        query = query.where(Member.id < before_id)
    rows = session.execute(query.order_by(Member.id.desc()).limit(limit)).all()
    channels = _first_binding_channel(session, partner_id, [r.id for r in rows])
    level1 = session.scalar(select(func.count()).where(Member.referrer_id == partner_id, Member.status == "active"))
    child = aliased(Member)
    level2 = session.scalar(select(func.count()).select_from(child).join(Member, child.referrer_id == Member.id)
                            .where(Member.referrer_id == partner_id, child.status == "active"))
    return {
        "direct_count": level1,
        "second_level_count": level2,
        "direct": [{"id": r.id, "nickname": mask_name(r.nickname), "avatar_url": r.avatar_url,
                    "joined_at": r.bound_at.isoformat() if r.bound_at else None, "channel": channels.get(r.id)}
                   for r in rows],
    }


def _local_day(session: Session, column):
    # Days are Asia/Shanghai days, whatever the database's time zone.
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("Asia/Shanghai", column), Date)
    return func.date(column, "+8 hours")


def code_stats(session: Session, code_id: int, days: int = 30, now: datetime | None = None) -> dict:
    """By day for one code: scans (every touch through it, repeats included), follows (touches that were a new
    follow), binds (people bound through it, including those bound later at their first purchase) and conversion
    (binds / scans)."""
    now = now or datetime.now(timezone.utc)
    since = now - timedelta(days=days)
    day = _local_day(session, Touch.created_at)
    touches = session.execute(
        select(day.label("day"), func.count().label("scans"),
               func.sum(case((Touch.new_follower.is_(True), 1), else_=0)).label("follows"))
        .where(Touch.code_id == code_id, Touch.created_at >= since).group_by(day)).all()
    bind_day = _local_day(session, Binding.created_at)
    binds = {str(d): n for d, n in session.execute(
        select(bind_day, func.count()).where(Binding.code_id == code_id, Binding.created_at >= since)
        .group_by(bind_day)).all()}
    counted = {str(r.day): (r.scans, int(r.follows or 0)) for r in touches}
    by_day = []
    for d in sorted(set(counted) | set(binds)):
        scans, follows = counted.get(d, (0, 0))
        by_day.append({"day": d, "scans": scans, "follows": follows, "binds": binds.get(d, 0),
                       "conversion": round(binds.get(d, 0) / scans, 4) if scans else 0.0})
    totals = {k: sum(d[k] for d in by_day) for k in ("scans", "follows", "binds")}
    totals["conversion"] = round(totals["binds"] / totals["scans"], 4) if totals["scans"] else 0.0
    return {"code_id": code_id, "days": days, "totals": totals, "by_day": by_day}


def codes_of(session: Session, owner_id: int) -> list[ReferralCode]:
    return list(session.scalars(select(ReferralCode).where(ReferralCode.owner_id == owner_id)
                                .order_by(ReferralCode.id)))
