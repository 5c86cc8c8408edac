"""Store and clerk figures: customers each clerk bound and how many of them have placed a first order."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from app.members.models import Member
from app.orders.models import Order
from app.referrals.models import Binding, StaffAssignment


def staff_figures(session: Session, clerk_id: int, since: datetime) -> dict:
    """New customers: people the clerk bound since `since`, each once however often they were rebound."""
    new_customers = session.scalar(select(func.count(func.distinct(Binding.member_id)))
                                   .where(Binding.referrer_id == clerk_id, Binding.created_at >= since))
    first_orders = _first_orders(session, [clerk_id], since).get(clerk_id, 0)
    return {"clerk_id": clerk_id, "new_customers": new_customers, "first_orders": first_orders}


def store_figures(session: Session, store_id: int, since: datetime) -> list[dict]:
    """Per clerk of the store (current and past), new customers bound at this store and their first orders."""
    rows = session.execute(
        select(Binding.referrer_id, func.count(func.distinct(Binding.member_id)))
        .where(Binding.store_id == store_id, Binding.created_at >= since).group_by(Binding.referrer_id)).all()
    counts = {r[0]: r[1] for r in rows}
    staff = set(session.scalars(select(StaffAssignment.member_id).where(StaffAssignment.store_id == store_id,
                                                                        StaffAssignment.position == "clerk")))
    ids = sorted(staff | set(counts))
    names = dict(session.execute(select(Member.id, Member.nickname).where(Member.id.in_(ids))).all()) if ids else {}
    firsts = _first_orders(session, ids, since, store_id=store_id)
    return [{"clerk_id": i, "nickname": names.get(i, ""), "new_customers": counts.get(i, 0),
             "first_orders": firsts.get(i, 0)} for i in ids]


def _first_orders(session: Session, referrer_ids: list[int], since: datetime, store_id: int | None = None) -> dict:
    """Customers bound by each referrer (at the store) who have placed a first paid order since `since`."""
    if not referrer_ids:
        return {}
    first_paid = (select(Order.buyer_id, func.min(Order.paid_at).label("first_paid"))
                  .where(Order.paid_at.is_not(None)).group_by(Order.buyer_id).subquery())
    conditions = [Binding.referrer_id.in_(referrer_ids), first_paid.c.first_paid >= since]
    if store_id is not None:
        conditions.append(Binding.store_id == store_id)
    rows = session.execute(select(Binding.referrer_id, func.count(func.distinct(Binding.member_id)))
                           .join(first_paid, first_paid.c.buyer_id == Binding.member_id)
                           .where(and_(*conditions)).group_by(Binding.referrer_id)).all()
    return dict(rows)
