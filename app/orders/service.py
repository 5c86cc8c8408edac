"""Applying shop order events: the service behind the webhook (and the benchmark).

Ordering rules (docs/ledger.md):
- every event of one shop order is serialised by a transaction-level advisory lock on the shop order id;
- `paid` creates the order and its commissions; a replay is recognised (same buyer and lines) and changes
  nothing, a different `paid` for the same order id is refused (409 order_event_conflict);
- `completed` before `paid` is parked and applied right after the `paid` lands;
- `refunded` before `paid` is refused with 404 order_not_found and changes nothing: the shop retries it (a
  refund of money we never saw paid cannot be checked against the paid amount, so we do not guess)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.referrals.binding import confirm_pending_referral
from app.referrals.models import PendingReferral
from app.commissions.plans import active_plan_id_sql, plan_snapshot
from app.commissions.rules import ChainMember
from app.commissions.service import accrue_for_paid_order, reverse_for_refund, start_hold_period
from app.db import utcnow
from app.errors import Conflict, NotFound, ValidationFailed
from app.ledger.service import insert_ignoring_conflicts
from app.members.models import Identity, Member
from app.orders.events import BUYER_KEYS, OrderEvent, parse_event
from app.orders.models import Order, OrderLine, OrderRefund, ParkedOrderEvent


def ingest_order_event(session: Session, data: dict) -> dict:
    """Apply one shop event (already authenticated). Returns {status: applied|duplicate|parked, ...}.

    Raises ValidationFailed / NotFound / Conflict with a stable code; the caller then rolls back, so bad input
    changes nothing. Flushes, never commits."""
    now = utcnow()
    event = parse_event(data, now)
    if event.event == "paid":
        return _paid(session, event, now)  # takes the order lock once it knows the buyer
    _lock_order_key(session, event.shop_order_id)
    if event.event == "completed":
        return _completed(session, event, now)
    return _refunded(session, event, now)


def _lock_order_key(session: Session, shop_order_id: str, buyer_id: int | None = None) -> None:
    # Without the order lock, a `completed` racing its `paid` could park after the paid looked for parked
    # events, and be lost. The buyer lock (paid only, always taken after the order lock) makes "first order"
    # exact when one buyer's orders arrive concurrently. SQLite (embedded mode) serialises writers anyway.
    if session.get_bind().dialect.name != "postgresql":
        return
    if buyer_id is None:
        session.execute(text("SELECT pg_advisory_xact_lock(7406, hashtext(:k))"), {"k": shop_order_id})
    else:
        session.execute(text("SELECT pg_advisory_xact_lock(7406, hashtext(:k)), pg_advisory_xact_lock(:b)"),
                        {"k": shop_order_id, "b": buyer_id})


# -- buyers ----------------------------------------------------------------------------------------------------

def find_or_create_buyer(session: Session, buyer: dict, lock_order: str | None = None) -> int:
    """The live member id behind a buyer's identities, created on first sight; see _find_or_create_buyer."""
    return _find_or_create_buyer(session, buyer, lock_order)[0]


def _find_or_create_buyer(session: Session, buyer: dict, lock_order: str | None = None) -> tuple[int, bool | None]:
    """The member behind a buyer's identities (unionid first, then openids), created on first sight.

    Two first orders of one new buyer may race: the unique (kind, value) on identities lets one insert win; the
    loser rolls back its savepoint and reads the winner's member. Returns the live (not merged) member id.
    With lock_order (PostgreSQL), also takes the order-key lock and locks the buyer's row (FOR NO KEY UPDATE),
    always in that order, in the same round trip as the lookup.
    Also returns whether the member has a pending referral (None: not known, look it up)."""
    wanted = [(k, buyer[k]) for k in BUYER_KEYS if buyer.get(k)]
    for _attempt in range(3):
        found = _lookup(session, buyer, lock_order)
        if found is not None:
            return found
        if lock_order:
            _lock_order_key(session, lock_order)
        try:
            with session.begin_nested():
                member_id = session.execute(Member.__table__.insert().values(
                    nickname=buyer.get("nickname") or "", avatar_url="", status="active",
                    created_at=utcnow(), updated_at=utcnow()).returning(Member.__table__.c.id)).scalar_one()
                session.execute(Identity.__table__.insert(), [
                    {"member_id": member_id, "kind": k, "value": v, "created_at": utcnow()} for k, v in wanted])
            return member_id, False  # a member created just now has no remembered touch
        except IntegrityError:
            continue
    raise Conflict("Could not settle who the buyer is; retry.", code="buyer_race")


_LOOKUP = """
    SELECT i.kind, m.id, m.status, m.merged_into_id,
           EXISTS (SELECT 1 FROM pending_referrals p WHERE p.member_id = m.id) AS pending_referral {locks}
    FROM identities i JOIN members m ON m.id = i.member_id
    WHERE (i.kind = 'unionid' AND i.value = :unionid) OR (i.kind = 'mini_openid' AND i.value = :mini_openid)
       OR (i.kind = 'oa_openid' AND i.value = :oa_openid)
    {for_update}
"""
_LOOKUP_LOCKING = text(_LOOKUP.format(locks=", pg_advisory_xact_lock(7406, hashtext(:k))",
                                      for_update="FOR NO KEY UPDATE OF m"))
_LOOKUP_PLAIN = text(_LOOKUP.format(locks="", for_update=""))


def _lookup(session: Session, buyer: dict, lock_order: str | None) -> tuple[int, bool | None] | None:
    locking = bool(lock_order) and session.get_bind().dialect.name == "postgresql"
    params = {k: buyer.get(k) for k in BUYER_KEYS}
    params["k"] = lock_order
    rows = session.execute(_LOOKUP_LOCKING if locking else _LOOKUP_PLAIN, params).all()
    by_kind = {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}
    for kind in BUYER_KEYS:  # preference order: unionid, mini_openid, oa_openid
        if kind in by_kind:
            member_id, status, merged_into, pending_referral = by_kind[kind]
            hops = 0
            while status == "merged" and merged_into is not None and hops < 8:
                member_id = merged_into
                q = select(Member.status, Member.merged_into_id).where(Member.id == member_id)
                status, merged_into = session.execute(
                    q.with_for_update(key_share=True) if locking else q).one()
                hops += 1
                pending_referral = None  # that was the merged member's; the live one is not known
            return member_id, pending_referral
    return None


# -- paid ------------------------------------------------------------------------------------------------------

_INSERT_ORDER = f"""
    INSERT INTO orders (shop_order_id, buyer_id, status, paid_fen, refunded_fen, is_first_order, plan_id,
                        paid_at, created_at)
    VALUES (:s, :b, 'paid', :p, 0, NOT EXISTS (SELECT 1 FROM orders prior WHERE prior.buyer_id = :b),
            {active_plan_id_sql()}, :paid_at, :now)
    ON CONFLICT (shop_order_id) DO NOTHING
    RETURNING id, is_first_order, plan_id
"""

# The buyer and at most two referrers above them, with everything the plan needs. depth < 2 bounds the walk:
# nothing above the second level is ever read, so nothing above it can be paid.
# The member columns ride inside the recursive CTE, so every step is a primary-key lookup (joining the CTE back
# to members afterwards let the planner choose a sequential scan of all members).
_CHAIN_CTE = """chain(depth, id, status, referrer_id) AS (
        SELECT 0, m.id, m.status, m.referrer_id FROM members m WHERE m.id = CAST(:b AS BIGINT)
        UNION ALL
        SELECT c.depth + 1, m.id, m.status, m.referrer_id FROM chain c JOIN members m ON m.id = c.referrer_id
        WHERE c.depth < 2)"""
# Scalar subqueries with LIMIT 1, not EXISTS: the planner turned EXISTS into a hashed scan of every partner
# role (it guesses the chain has 31 rows), which grows with the member base.
_CHAIN_COLUMNS = """c.depth, c.id, c.status,
           (SELECT 1 FROM member_roles r WHERE r.member_id = c.id AND r.role = 'partner' LIMIT 1) IS NOT NULL
               AS partner,
           COALESCE((SELECT g.grade_code FROM member_grades g WHERE g.member_id = c.id LIMIT 1),
                    (SELECT g.code FROM grades g ORDER BY g.rank LIMIT 1), '') AS grade,
           (SELECT 1 FROM risk_flags f WHERE f.member_id = c.id AND f.status = 'open' LIMIT 1) IS NOT NULL
               AS flagged,
           (SELECT 1 FROM parked_order_events p WHERE p.shop_order_id = :s LIMIT 1) IS NOT NULL AS parked"""
_CHAIN = f"""WITH RECURSIVE {_CHAIN_CTE}
    SELECT {_CHAIN_COLUMNS}
    FROM chain c ORDER BY c.depth"""


# PostgreSQL: the order, its lines and the referral chain in one round trip. An empty result means the order
# already existed (ON CONFLICT DO NOTHING inserted nothing): a replay.
_PAID_PG = text(f"""
    WITH RECURSIVE new_order AS (
        {_INSERT_ORDER.strip()}),
    new_lines AS (
        INSERT INTO order_lines (order_id, line_no, product_id, category, quantity, paid_fen)
        SELECT new_order.id, x.line_no, x.product_id, x.category, x.quantity, x.paid_fen
        FROM new_order, unnest(CAST(:l_no AS int[]), CAST(:l_pid AS text[]), CAST(:l_cat AS text[]),
                               CAST(:l_qty AS int[]), CAST(:l_paid AS bigint[]))
             AS x(line_no, product_id, category, quantity, paid_fen)),
    {_CHAIN_CTE}
    SELECT new_order.id AS order_id, new_order.is_first_order, new_order.plan_id, {_CHAIN_COLUMNS}
    FROM new_order CROSS JOIN chain c ORDER BY c.depth
""")



def _paid(session: Session, event: OrderEvent, now: datetime) -> dict:
    postgres = session.get_bind().dialect.name == "postgresql"
    buyer_id, pending_referral = _find_or_create_buyer(session, event.buyer, lock_order=event.shop_order_id)
    # With "bind at first purchase", a remembered touch binds now, before the chain below is read. The lookup
    # already said whether there is one (same round trip); ask only when it could not.
    if pending_referral is None:
        pending_referral = session.get(PendingReferral, buyer_id) is not None
    if pending_referral:
        confirm_pending_referral(session, buyer_id, now)
    paid_fen = event.paid_fen
    params = {"s": event.shop_order_id, "b": buyer_id, "p": paid_fen, "paid_at": event.occurred_at, "now": now}
    if postgres:
        params.update(l_no=list(range(1, len(event.lines) + 1)), l_pid=[ln.product_id for ln in event.lines],
                      l_cat=[ln.category for ln in event.lines], l_qty=[ln.quantity for ln in event.lines],
                      l_paid=[ln.paid_fen for ln in event.lines])
        chain = session.execute(_PAID_PG, params).all()
        if not chain:
            return _paid_replay(session, event, buyer_id)
        order_id, is_first, plan_id = chain[0].order_id, chain[0].is_first_order, chain[0].plan_id
    else:
        row = session.execute(text(_INSERT_ORDER), params).first()
        if row is None:
            return _paid_replay(session, event, buyer_id)
        order_id, is_first, plan_id = row
        session.execute(OrderLine.__table__.insert(), [
            {"order_id": order_id, "line_no": i, "product_id": ln.product_id, "category": ln.category,
             "quantity": ln.quantity, "paid_fen": ln.paid_fen} for i, ln in enumerate(event.lines, 1)])
        chain = session.execute(text(_CHAIN), {"b": buyer_id, "s": event.shop_order_id}).all()
    chain = _settled_chain(session, chain, buyer_id, event.shop_order_id, postgres)
    members = [ChainMember(r.id, r.status == "active", bool(r.partner), r.grade or "", bool(r.flagged))
               for r in chain]
    commissions = []
    if plan_id is not None:
        commissions = accrue_for_paid_order(
            session, order_id=order_id, paid_fen=paid_fen, lines=[(ln.category, ln.paid_fen) for ln in event.lines],
            is_first=bool(is_first), plan=plan_snapshot(session, plan_id), buyer=members[0],
            referrer=members[1] if len(members) > 1 else None,
            referrers_referrer=members[2] if len(members) > 2 else None, now=now)
    parked = []
    if chain and chain[0].parked:
        parked = _apply_parked(session, event.shop_order_id, now)
    from app.grades.service import schedule_grade_evaluation

    schedule_grade_evaluation(session, [m.id for m in members])
    return {"status": "applied", "event": "paid", "order_id": order_id, "shop_order_id": event.shop_order_id,
            "buyer_id": buyer_id, "paid_fen": paid_fen, "is_first_order": bool(is_first), "plan_id": plan_id,
            "commissions": [{"id": c["id"], "level": c["level"], "earner_id": c["earner_id"],
                             "amount_fen": c["amount_fen"], "state": c["state"]} for c in commissions],
            "applied_parked": parked}


def _settled_chain(session: Session, chain, buyer_id: int, shop_order_id: str, postgres: bool):
    """Share-lock the referrers who will earn, so no member merge can move them until this order commits.

    The chain was read without locks: a merge committing in between would leave a commission on the merged-away
    member, where nobody can ever withdraw it. A locking read waits for such a merge and returns the committed
    state; if an earner was merged meanwhile, the chain is read again (it then sees the moved referrers)."""
    if not postgres:
        return chain  # SQLite: one writer at a time, nothing can interleave
    for _ in range(3):
        ids = [r.id for r in chain[1:]]
        if not ids:
            return chain
        statuses = dict(session.execute(text("SELECT id, status FROM members WHERE id = ANY(:ids) ORDER BY id "
                                             "FOR SHARE"), {"ids": ids}).all())
        if all(statuses.get(i) == "active" for i in ids):
            return chain
        chain = session.execute(text(_CHAIN), {"b": buyer_id, "s": shop_order_id}).all()
    return chain


def _paid_replay(session: Session, event: OrderEvent, buyer_id: int) -> dict:
    order = session.scalar(select(Order).where(Order.shop_order_id == event.shop_order_id))
    lines = session.execute(select(OrderLine.product_id, OrderLine.category, OrderLine.quantity, OrderLine.paid_fen)
                            .where(OrderLine.order_id == order.id).order_by(OrderLine.line_no)).all()
    from app.members.service import get_member

    # the buyer may have been merged into another member since: compare the live members
    same_buyer = order.buyer_id == buyer_id or get_member(session, order.buyer_id).id == buyer_id
    same = same_buyer and [tuple(r) for r in lines] == [
        (ln.product_id, ln.category, ln.quantity, ln.paid_fen) for ln in event.lines]
    if not same:
        raise Conflict("This order was already reported paid with a different buyer or lines.",
                       code="order_event_conflict", details={"order_id": event.shop_order_id})
    return {"status": "duplicate", "event": "paid", "order_id": order.id, "shop_order_id": event.shop_order_id}


def _apply_parked(session: Session, shop_order_id: str, now: datetime) -> list[str]:
    parked = session.scalars(select(ParkedOrderEvent).where(ParkedOrderEvent.shop_order_id == shop_order_id)
                             .order_by(ParkedOrderEvent.id)).all()
    applied = []
    for p in parked:
        _completed(session, parse_event(p.payload, now), now)
        applied.append(p.payload["event"])
        session.delete(p)
    session.flush()
    return applied


# -- completed -------------------------------------------------------------------------------------------------

def _completed(session: Session, event: OrderEvent, now: datetime) -> dict:
    order = session.scalar(select(Order).where(Order.shop_order_id == event.shop_order_id).with_for_update(key_share=True))
    if order is None:
        session.execute(insert_ignoring_conflicts(session, ParkedOrderEvent.__table__).values(
            shop_order_id=event.shop_order_id, dedupe_key=f"{event.shop_order_id}:completed",
            payload={"event": "completed", "order_id": event.shop_order_id,
                     "occurred_at": event.occurred_at.isoformat()}, received_at=now))
        return {"status": "parked", "event": "completed", "shop_order_id": event.shop_order_id}
    if order.completed_at is not None:
        return {"status": "duplicate", "event": "completed", "order_id": order.id,
                "shop_order_id": event.shop_order_id}
    # The refund window cannot start before the payment.
    order.completed_at = max(event.occurred_at, order.paid_at)
    if order.status == "paid":
        order.status = "completed"
    session.flush()
    if order.plan_id is not None:
        start_hold_period(session, order.id, order.completed_at, plan_snapshot(session, order.plan_id).hold_days)
    return {"status": "applied", "event": "completed", "order_id": order.id, "shop_order_id": event.shop_order_id}


# -- refunded --------------------------------------------------------------------------------------------------

def _refunded(session: Session, event: OrderEvent, now: datetime) -> dict:
    order = session.scalar(select(Order).where(Order.shop_order_id == event.shop_order_id).with_for_update(key_share=True))
    if order is None:
        raise NotFound("No paid order with this id: a refund can only follow its paid event. Retry after it.",
                       code="order_not_found", details={"order_id": event.shop_order_id})
    prior = session.scalar(select(OrderRefund).where(OrderRefund.order_id == order.id,
                                                     OrderRefund.refund_id == event.refund_id))
    if prior is not None:
        if prior.amount_fen != event.amount_fen:
            raise Conflict("This refund id was already applied with a different amount.", code="refund_conflict",
                           details={"refund_id": event.refund_id, "applied_fen": prior.amount_fen})
        return {"status": "duplicate", "event": "refunded", "order_id": order.id,
                "shop_order_id": event.shop_order_id, "refund_id": event.refund_id}
    total = order.refunded_fen + event.amount_fen
    if total > order.paid_fen:
        raise ValidationFailed("Refunds would exceed the amount paid.", code="refund_exceeds_paid",
                               details={"paid_fen": order.paid_fen, "already_refunded_fen": order.refunded_fen,
                                        "requested_fen": event.amount_fen})
    session.add(OrderRefund(order_id=order.id, refund_id=event.refund_id, amount_fen=event.amount_fen,
                            refunded_at=event.occurred_at, created_at=now))
    order.refunded_fen = total
    if total == order.paid_fen:
        order.status = "refunded"
    session.flush()
    reversals = reverse_for_refund(session, order_id=order.id, refund_id=event.refund_id, paid_fen=order.paid_fen,
                                   refunded_total_fen=total)
    from app.grades.service import schedule_grade_evaluation

    schedule_grade_evaluation(session, [order.buyer_id])
    return {"status": "applied", "event": "refunded", "order_id": order.id, "shop_order_id": event.shop_order_id,
            "refund_id": event.refund_id, "refunded_fen": total, "reversals": reversals}
