"""Versioned commission plans. A version is immutable once created; a new version starts at `effective_from`."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.commissions.models import CommissionPlan, CommissionRate
from app.commissions.rules import Rate
from app.db import utcnow
from app.errors import NotFound, ValidationFailed

_CACHE = "commissions.plans"


@dataclass(frozen=True)
class PlanSnapshot:
    id: int
    version: int
    hold_days: int
    self_purchase: bool
    rates: tuple[Rate, ...]


def _int(value, name: str, lo: int, hi: int) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise ValidationFailed(f"{name} must be an integer from {lo} to {hi}.", code="plan_invalid",
                               details={"field": name})
    return value


def create_plan(session: Session, *, rates: list[dict], hold_days: int = 7, self_purchase: bool = False,
                name: str = "", effective_from: datetime | None = None, actor: str = "system",
                allow_backdating: bool = False) -> CommissionPlan:
    """Publish a new plan version. rates: [{level: 1|2, bps, grade='*', category='*', order_kind='any'}].

    Versions never start in the past (that would silently re-price orders already settled under the old
    rules) unless allow_backdating is set, which only tests and data imports use."""
    now = utcnow()
    effective_from = effective_from or now
    if effective_from.tzinfo is None:
        raise ValidationFailed("effective_from needs a time zone.", code="plan_invalid")
    if effective_from < now and not allow_backdating:
        raise ValidationFailed("A plan version cannot start in the past.", code="plan_backdated")
    _int(hold_days, "hold_days", 0, 365)
    if not isinstance(rates, list) or not rates:
        raise ValidationFailed("A plan needs at least one rate.", code="plan_invalid")
    parsed, seen = [], set()
    for r in rates:
        level = r.get("level")
        if level not in (1, 2) or type(level) is not int:
            # Two levels, ever: a third level is illegal pyramid selling in China.
            raise ValidationFailed("Commission levels are 1 and 2 only.", code="plan_level_invalid",
                                   details={"level": level})
        bps = _int(r.get("bps"), "bps", 0, 10000)
        grade = str(r.get("grade") or "*")[:32]
        category = str(r.get("category") or "*")[:64]
        order_kind = r.get("order_kind") or "any"
        if order_kind not in ("any", "first", "repeat"):
            raise ValidationFailed("order_kind is any, first or repeat.", code="plan_invalid")
        key = (grade, level, category, order_kind)
        if key in seen:
            raise ValidationFailed("Two rates for the same grade, level, category and order kind.",
                                   code="plan_duplicate_rate", details={"rate": list(key)})
        seen.add(key)
        parsed.append((grade, level, category, order_kind, bps))
    version = (session.scalar(select(func.max(CommissionPlan.version))) or 0) + 1
    plan = CommissionPlan(version=version, name=name[:64], effective_from=effective_from, hold_days=hold_days,
                          self_purchase=bool(self_purchase), created_by=actor, created_at=now)
    session.add(plan)
    session.flush()
    session.add_all([CommissionRate(plan_id=plan.id, grade=g, level=lv, category=c, order_kind=k, bps=b)
                     for g, lv, c, k, b in parsed])
    session.flush()
    return plan


def plan_snapshot(session: Session, plan_id: int) -> PlanSnapshot:
    """A plan version with its rates. Versions are immutable, so they are cached on the session."""
    cache = session.info.setdefault(_CACHE, {})
    snap = cache.get(plan_id)
    if snap is None:
        plan = session.get(CommissionPlan, plan_id)
        if plan is None:
            raise NotFound("No such plan.", code="plan_not_found")
        rates = session.scalars(select(CommissionRate).where(CommissionRate.plan_id == plan_id)).all()
        snap = cache[plan_id] = PlanSnapshot(plan.id, plan.version, plan.hold_days, plan.self_purchase, tuple(
            Rate(r.grade, r.level, r.category, r.order_kind, r.bps) for r in rates))
    return snap


def active_plan_id_sql(paid_at: str = ":paid_at") -> str:
    """SQL fragment: the id of the version active at `paid_at` (a bind parameter or a column expression): the
    latest effective_from at or before it."""
    return (f"(SELECT p.id FROM commission_plans p WHERE p.effective_from <= {paid_at} "
            "ORDER BY p.effective_from DESC, p.version DESC LIMIT 1)")


def plan_as_dict(session: Session, plan_id: int) -> dict:
    plan = session.get(CommissionPlan, plan_id)
    snap = plan_snapshot(session, plan_id)
    return {"id": plan.id, "version": plan.version, "name": plan.name,
            "effective_from": plan.effective_from.isoformat(), "hold_days": plan.hold_days,
            "self_purchase": plan.self_purchase, "created_by": plan.created_by,
            "rates": [{"grade": r.grade, "level": r.level, "category": r.category, "order_kind": r.order_kind,
                       "bps": r.bps} for r in snap.rates]}


def list_plans(session: Session) -> list[dict]:
    ids = session.scalars(select(CommissionPlan.id).order_by(CommissionPlan.version.desc())).all()
    return [plan_as_dict(session, i) for i in ids]
