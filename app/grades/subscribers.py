"""Grades react to sales: a paid order can lift its buyer and earners; a refund is re-checked for the buyer
(grades never fall automatically, but a refunded order must not lift anyone later by a stale figure)."""
from __future__ import annotations

from app.events import Event, subscriber
from app.grades.jobs import evaluate_grades
from app.runtime import Runtime


@subscriber("order.paid", name="grades.after_order_paid")
def after_order_paid(rt: Runtime, event: Event) -> list[dict]:
    return evaluate_grades(rt, [event.data["buyer_id"], *event.data["referrer_ids"]])


@subscriber("order.refunded", name="grades.after_order_refunded")
def after_order_refunded(rt: Runtime, event: Event) -> list[dict]:
    return evaluate_grades(rt, [event.data["buyer_id"]])
