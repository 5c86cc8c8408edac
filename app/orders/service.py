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

from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.commissions.plans import active_plan_id_sql, plan_snapshot
from app.commissions.rules import ChainMember
from app.commissions.service import (accrue_commissions, accrue_for_paid_order, commission_rows,
                                     reverse_for_refund, start_hold_period)
from app.db import json_param, utcnow
from app.events import record as record_event
from app.events import record_many
from app.errors import Conflict, DomainError, NotFound, ValidationFailed
from app.ledger.service import insert_ignoring_conflicts
from app.members.models import Identity, Member
from app.members.service import get_member
from app.orders.shop_events import BUYER_KEYS, ShopEvent, parse_shop_event
from app.orders.models import Order, OrderLine, OrderPayer, OrderRefund, ParkedOrderEvent
from app.referrals.binding import confirm_pending_referral
from app.referrals.models import PendingReferral

MAX_BATCH = 200  # events per webhook call


def ingest_order_event(session: Session, data: dict) -> dict:
    """Apply one shop event (already authenticated). Returns {status: applied|duplicate|parked, ...}.

    Raises ValidationFailed / NotFound / Conflict with a stable code; the caller then rolls back, so bad input
    changes nothing. Flushes, never commits."""
    result = _ingest(session, [data], savepoints=False)[0]
    if isinstance(result, DomainError):
        raise result
    return result


def ingest_order_events(session: Session, events: list) -> list[dict]:
    """Apply a batch of shop events in one transaction; one result per event, in the order given.

    Each event stands alone: one that is refused gets {"status": "rejected", "error": {code, message, status,
    details}} and changes nothing (its writes, if any, are rolled back to a savepoint), the others apply.
    All `paid` events are applied first (set-based on PostgreSQL: a fixed number of round trips for the whole
    batch), then the `completed` and `refunded` ones in their order, so a batch may carry an order's whole life.
    Flushes, never commits."""
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_BATCH:
        raise ValidationFailed(f"events must be a list of 1 to {MAX_BATCH} events.", code="order_batch_invalid")
    return [{"status": "rejected", "error": {"code": r.code, "message": r.message, "status": r.status,
                                             "details": r.details}} if isinstance(r, DomainError) else r
            for r in _ingest(session, events, savepoints=True)]


def _ingest(session: Session, datas: list, savepoints: bool) -> list[dict | DomainError]:
    now = utcnow()
    results: list[dict | DomainError | None] = [None] * len(datas)
    events: dict[int, ShopEvent] = {}
    for i, data in enumerate(datas):
        try:
            events[i] = parse_shop_event(data, now)
        except DomainError as e:
            results[i] = e
    paid = [i for i, e in events.items() if e.event == "paid"]
    if session.get_bind().dialect.name == "postgresql":
        while paid:  # each round takes the first `paid` of every order id; later twins then find it (replays)
            seen: set[str] = set()
            this = [i for i in paid if not (events[i].shop_order_id in seen or seen.add(events[i].shop_order_id))]
            for i, r in _paid_batch(session, [(i, events[i]) for i in this], now).items():
                results[i] = r
            done = set(this)
            paid = [i for i in paid if i not in done]
    else:  # SQLite (embedded mode): one writer at a time, one event at a time
        for i in paid:
            results[i] = _isolated(session, savepoints, lambda e=events[i]: _paid(session, e, now))
    for i, e in events.items():
        if e.event != "paid":
            results[i] = _isolated(session, savepoints, lambda e=e: _completed_or_refunded(session, e, now))
    return results


def _isolated(session: Session, savepoint: bool, fn):
    """Run fn; a DomainError is returned, not raised, with fn's writes undone (savepoint) when asked."""
    try:
        if not savepoint:
            return fn()
        with session.begin_nested():
            return fn()
    except DomainError as e:
        return e


def _completed_or_refunded(session: Session, event: ShopEvent, now: datetime) -> dict:
    _lock_order_key(session, event.shop_order_id)
    if event.event == "completed":
        return _completed(session, event, now)
    return _refunded(session, event, now)


def _lock_order_key(session: Session, shop_order_id: str) -> None:
    # Without the order lock, a `completed` racing its `paid` could park after the paid looked for parked
    # events, and be lost. SQLite (embedded mode) serialises writers anyway.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7406, hashtext(:k))"), {"k": shop_order_id})


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
                member_id = session.execute(Member.__table__.insert().values(_buyer_member(buyer, utcnow()))
                                            .returning(Member.__table__.c.id)).scalar_one()
                session.execute(Identity.__table__.insert(), [
                    {"member_id": member_id, "kind": k, "value": v, "created_at": utcnow()} for k, v in wanted])
            return member_id, False  # a member created just now has no remembered touch
        except IntegrityError:
            continue
    raise Conflict("Could not settle who the buyer is; retry.", code="buyer_race")


def _buyer_member(buyer: dict, now: datetime) -> dict:
    """The members row of a buyer seen for the first time."""
    return {"nickname": buyer.get("nickname") or "", "avatar_url": "", "status": "active", "created_at": now,
            "updated_at": now}


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
_MEMBER_COLUMNS = """
           (SELECT 1 FROM member_roles r WHERE r.member_id = c.id AND r.role = 'partner' LIMIT 1) IS NOT NULL
               AS partner,
           COALESCE((SELECT g.grade_code FROM member_grades g WHERE g.member_id = c.id LIMIT 1),
                    (SELECT g.code FROM grades g ORDER BY g.rank LIMIT 1), '') AS grade,
           (SELECT 1 FROM risk_flags f WHERE f.member_id = c.id AND f.status = 'open' LIMIT 1) IS NOT NULL
               AS flagged"""
_CHAIN = f"""WITH RECURSIVE {_CHAIN_CTE}
    SELECT c.depth, c.id, c.status, {_MEMBER_COLUMNS},
           (SELECT 1 FROM parked_order_events p WHERE p.shop_order_id = :s LIMIT 1) IS NOT NULL AS parked
    FROM chain c ORDER BY c.depth"""


def _paid(session: Session, event: ShopEvent, now: datetime) -> dict:
    """One `paid` event, portable SQL (SQLite, embedded mode). PostgreSQL uses _paid_batch."""
    buyer_id, pending_referral = _find_or_create_buyer(session, event.buyer)
    if pending_referral is None:
        pending_referral = session.get(PendingReferral, buyer_id) is not None
    if pending_referral:  # "bind at first purchase": the remembered touch binds before the chain is read
        confirm_pending_referral(session, buyer_id, now)
    params = {"s": event.shop_order_id, "b": buyer_id, "p": event.paid_fen, "paid_at": event.occurred_at,
              "now": now}
    row = session.execute(text(_INSERT_ORDER), params).first()
    if row is None:
        return _paid_replay(session, event, buyer_id)
    order_id, is_first, plan_id = row
    session.execute(OrderLine.__table__.insert(), [
        {"order_id": order_id, "line_no": i, "product_id": ln.product_id, "category": ln.category,
         "quantity": ln.quantity, "paid_fen": ln.paid_fen} for i, ln in enumerate(event.lines, 1)])
    _record_payers(session, [(order_id, event.payer_openid)])
    chain = session.execute(text(_CHAIN), {"b": buyer_id, "s": event.shop_order_id}).all()
    members = _chain_members(chain)
    commissions = []
    if plan_id is not None:
        commissions = accrue_for_paid_order(
            session, order_id=order_id, paid_fen=event.paid_fen,
            lines=[(ln.category, ln.paid_fen) for ln in event.lines], is_first=bool(is_first),
            plan=plan_snapshot(session, plan_id), buyer=members[0],
            referrer=members[1] if len(members) > 1 else None,
            referrers_referrer=members[2] if len(members) > 2 else None, now=now)
    parked = _apply_parked(session, event.shop_order_id, now) if chain and chain[0].parked else []
    record_event(session, "order.paid", **_paid_event(order_id, buyer_id, event.paid_fen, members))
    return _paid_result(event, order_id, buyer_id, bool(is_first), plan_id, commissions, parked)


def _chain_members(chain) -> list[ChainMember]:
    return [ChainMember(r.id, r.status == "active", bool(r.partner), r.grade or "", bool(r.flagged))
            for r in chain]


def _paid_result(event: ShopEvent, order_id: int, buyer_id: int, is_first: bool, plan_id: int | None,
                 commissions: list[dict], parked: list[str]) -> dict:
    return {"status": "applied", "event": "paid", "order_id": order_id, "shop_order_id": event.shop_order_id,
            "buyer_id": buyer_id, "paid_fen": event.paid_fen, "is_first_order": is_first, "plan_id": plan_id,
            "commissions": [{"id": c["id"], "level": c["level"], "earner_id": c["earner_id"],
                             "amount_fen": c["amount_fen"], "state": c["state"]} for c in commissions],
            "applied_parked": parked}


# -- paid, set-based (PostgreSQL) ------------------------------------------------------------------------------

# Round trip 1: every order-key lock of the batch (in hash order, so two batches never deadlock on them; the
# one-time filter takes them all before any row is read), then the buyers' identities with their member rows
# locked in id order. The members read here may be older than the locks (the statement's snapshot predates its
# waits); the row locks return the latest member rows, and everything read after this runs in a later snapshot.
_LOCK_AND_FIND = text("""
    SELECT i.kind, i.value, m.id, m.status,
           EXISTS (SELECT 1 FROM pending_referrals p WHERE p.member_id = m.id) AS pending_referral
    FROM identities i JOIN members m ON m.id = i.member_id
    WHERE (SELECT COUNT(pg_advisory_xact_lock(7406, h))
           FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest(CAST(:keys AS text[])) AS k ORDER BY 1) s) >= 0
      AND (i.kind, i.value) IN (SELECT * FROM unnest(CAST(:kinds AS text[]), CAST(:values AS text[])))
    ORDER BY m.id
    FOR NO KEY UPDATE OF m
""")

# Round trip 2: the orders (a replay inserts nothing and returns nothing), their lines, each new order's buyer
# and at most two referrers above them with what the plan needs, and those referrers share-locked in id order so
# no member merge can move them until this commits. `rank` is the order's place among the batch's orders of the
# same buyer: only the first can be a first order (rows of one INSERT do not see each other).
# The two levels are two explicit lookups, not a recursive walk: nothing above the second level is ever read.
# LATERAL ... LIMIT 1 and = ANY(ARRAY(...)) keep every member read a primary-key probe; plain joins let the
# planner hash the whole members table, a cost that grows with the member base.
_ORDERS_PG = text(f"""
    WITH x AS (
        SELECT * FROM jsonb_to_recordset(CAST(:orders AS jsonb))
            AS x(s text, b bigint, p bigint, paid_at timestamptz, rank int, idx int)),
    new_order AS (
        INSERT INTO orders (shop_order_id, buyer_id, status, paid_fen, refunded_fen, is_first_order, plan_id,
                            paid_at, created_at)
        SELECT x.s, x.b, 'paid', x.p, 0,
               x.rank = 1 AND NOT EXISTS (SELECT 1 FROM orders prior WHERE prior.buyer_id = x.b),
               {active_plan_id_sql('x.paid_at')}, x.paid_at, :now
        FROM x ORDER BY x.idx
        ON CONFLICT (shop_order_id) DO NOTHING
        RETURNING id, shop_order_id, buyer_id, is_first_order, plan_id),
    new_lines AS (
        INSERT INTO order_lines (order_id, line_no, product_id, category, quantity, paid_fen)
        SELECT o.id, y.line_no, y.product_id, y.category, y.quantity, y.paid_fen
        FROM new_order o JOIN jsonb_to_recordset(CAST(:lines AS jsonb))
             AS y(s text, line_no int, product_id text, category text, quantity int, paid_fen bigint)
             ON y.s = o.shop_order_id),
    up AS (
        SELECT b.id AS root, b.status AS s0, m1.id AS r1, m1.status AS s1, m2.id AS r2, m2.status AS s2
        FROM members b
        LEFT JOIN LATERAL (SELECT m.id, m.status, m.referrer_id FROM members m WHERE m.id = b.referrer_id LIMIT 1)
            m1 ON true
        LEFT JOIN LATERAL (SELECT m.id, m.status FROM members m WHERE m.id = m1.referrer_id LIMIT 1) m2 ON true
        WHERE b.id = ANY(CAST(:buyers AS bigint[]))),
    chain AS (
        SELECT up.root, v.depth, v.id, v.status
        FROM up CROSS JOIN LATERAL (VALUES (0, up.root, up.s0), (1, up.r1, up.s1), (2, up.r2, up.s2))
            AS v(depth, id, status)
        WHERE v.id IS NOT NULL),
    earners AS MATERIALIZED (
        SELECT m.id, m.status FROM members m
        WHERE m.id = ANY(ARRAY(SELECT c.id FROM chain c JOIN new_order o ON o.buyer_id = c.root WHERE c.depth > 0))
        ORDER BY m.id FOR SHARE)
    SELECT o.id AS order_id, o.shop_order_id, o.is_first_order, o.plan_id, c.depth, c.id, c.status,
           e.status AS locked_status, {_MEMBER_COLUMNS},
           (SELECT 1 FROM parked_order_events p WHERE p.shop_order_id = o.shop_order_id LIMIT 1) IS NOT NULL
               AS parked
    FROM new_order o JOIN chain c ON c.root = o.buyer_id LEFT JOIN earners e ON e.id = c.id
    ORDER BY o.id, c.depth
""")


def _paid_batch(session: Session, items: list[tuple[int, ShopEvent]], now: datetime) -> dict[int, dict | DomainError]:
    """`paid` events of distinct shop order ids, set-based: the locks and buyers, the buyers seen for the first
    time, then the orders, lines and chains, then every commission with its ledger entry, each in one round trip
    for the whole batch. The rare cases (a buyer merged away, a new buyer another order is creating right now, a
    remembered touch to bind, a replay, an earner merged while we waited) take the one-order path for that order
    only."""
    out: dict[int, dict | DomainError] = {}
    idents = [(k, e.buyer[k]) for _, e in items for k in BUYER_KEYS if e.buyer.get(k)]
    found = {(r.kind, r.value): r for r in session.execute(_LOCK_AND_FIND, {
        "keys": [e.shop_order_id for _, e in items], "kinds": [k for k, _ in idents],
        "values": [v for _, v in idents]})}
    hits = {i: next((found[(k, e.buyer[k])] for k in BUYER_KEYS if (k, e.buyer.get(k)) in found), None)
            for i, e in items}
    created = _create_buyers(session, [(i, e) for i, e in items if hits[i] is None], now)
    buyers: dict[int, int] = {}
    to_confirm: set[int] = set()
    for i, e in items:
        hit = hits[i]
        if hit is not None and hit.status != "merged":
            buyer_id, pending = hit.id, hit.pending_referral
        elif i in created:
            buyer_id, pending = created[i], False  # a member created just now has no remembered touch
        else:  # merged away (follow), or first sight not created above: the one-buyer path, under the same locks
            try:
                buyer_id, pending = _find_or_create_buyer(session, e.buyer, lock_order=e.shop_order_id)
            except DomainError as err:
                out[i] = err
                continue
            if pending is None:
                pending = session.get(PendingReferral, buyer_id) is not None
        buyers[i] = buyer_id
        if pending:
            to_confirm.add(buyer_id)
    for buyer_id in sorted(to_confirm):  # "bind at first purchase": before the chains are read
        confirm_pending_referral(session, buyer_id, now)
    live = [(i, e) for i, e in items if i in buyers]
    if not live:
        return out
    rank, seen = {}, {}
    for i, _ in live:
        seen[buyers[i]] = rank[i] = seen.get(buyers[i], 0) + 1
    # JSON, not a dozen arrays: one C-speed dump instead of psycopg quoting every array element in Python.
    rows = session.execute(_ORDERS_PG, {
        "now": now, "buyers": sorted(set(buyers.values())),
        "orders": json_param([{"s": e.shop_order_id, "b": buyers[i], "p": e.paid_fen,
                               "paid_at": e.occurred_at.isoformat(), "rank": rank[i], "idx": n}
                              for n, (i, e) in enumerate(live)]),
        "lines": json_param([{"s": e.shop_order_id, "line_no": n, "product_id": ln.product_id,
                              "category": ln.category, "quantity": ln.quantity, "paid_fen": ln.paid_fen}
                             for _, e in live for n, ln in enumerate(e.lines, 1)])}).all()
    chains: dict[str, list] = {}
    for r in rows:
        chains.setdefault(r.shop_order_id, []).append(r)
    accrued, applied = [], []
    for i, e in live:
        chain = chains.get(e.shop_order_id)
        if not chain:  # ON CONFLICT inserted nothing: this order was already paid
            out[i] = _isolated(session, False, lambda e=e, b=buyers[i]: _paid_replay(session, e, b))
            continue
        head = chain[0]  # the order's own columns
        if any(r.depth and r.locked_status != r.status for r in chain):  # changed (merged) while we waited
            chain = _settled_chain(session, buyers[i], e.shop_order_id)
        members = _chain_members(chain)
        rows_i = []
        if head.plan_id is not None:
            rows_i = commission_rows(
                order_id=head.order_id, paid_fen=e.paid_fen, lines=[(ln.category, ln.paid_fen) for ln in e.lines],
                is_first=bool(head.is_first_order), plan=plan_snapshot(session, head.plan_id), buyer=members[0],
                referrer=members[1] if len(members) > 1 else None,
                referrers_referrer=members[2] if len(members) > 2 else None, now=now)
        accrued.extend(rows_i)
        applied.append((i, e, head, members, rows_i))
    # The accrual locks the platform's commission_expense row, which every batch updates, until the commit: what
    # does not need the commissions goes first, so concurrent batches wait on each other for less.
    _record_payers(session, [(head.order_id, e.payer_openid) for _i, e, head, _m, _r in applied])
    record_many(session, [("order.paid", _paid_event(head.order_id, buyers[i], e.paid_fen, members))
                          for i, e, head, members, _rows in applied])
    accrue_commissions(session, accrued, now)
    for i, e, head, _members, rows_i in applied:
        parked = _apply_parked(session, e.shop_order_id, now) if head.parked else []
        out[i] = _paid_result(e, head.order_id, buyers[i], bool(head.is_first_order), head.plan_id, rows_i, parked)
    return out


def _create_buyers(session: Session, items: list[tuple[int, ShopEvent]], now: datetime) -> dict[int, int]:
    """Members for buyers none of whose identities exists yet, in two statements for the batch: {item: member}.

    Orders of one new buyer (the same identities) share one member. Left out, for the one-buyer path: buyers
    whose identities overlap another new buyer's without being the same, and all of them when an identity was
    created meanwhile by a concurrent first order (the unique (kind, value) refuses it and the savepoint undoes
    the lot; that path then finds the winner)."""
    groups: dict[tuple, list[int]] = {}
    for i, e in items:
        groups.setdefault(tuple((k, e.buyer[k]) for k in BUYER_KEYS if e.buyer.get(k)), []).append(i)
    owner: dict[tuple[str, str], tuple] = {}
    overlapping = set()
    for key in groups:
        for ident in key:
            if owner.setdefault(ident, key) != key:
                overlapping.update((key, owner[ident]))
    todo = [(key, members) for key, members in groups.items() if key not in overlapping]
    if not todo:
        return {}
    buyer_of = dict(items)
    members_t, identities_t = Member.__table__, Identity.__table__
    try:
        with session.begin_nested():
            ids = session.scalars(insert(members_t).returning(members_t.c.id, sort_by_parameter_order=True), [
                _buyer_member(buyer_of[members[0]].buyer, now) for _key, members in todo]).all()
            # in (kind, value) order: two batches creating the same new buyers wait on each other, never deadlock
            session.execute(insert(identities_t), sorted((
                {"member_id": member_id, "kind": kind, "value": value, "created_at": now}
                for (key, _members), member_id in zip(todo, ids, strict=True) for kind, value in key),
                key=lambda row: (row["kind"], row["value"])))
    except IntegrityError:
        return {}
    return {i: member_id for (_key, members), member_id in zip(todo, ids, strict=True) for i in members}


def _record_payers(session: Session, pairs: list[tuple[int, str | None]]) -> None:
    rows = [{"order_id": order_id, "payer_openid": payer} for order_id, payer in pairs if payer]
    if rows:
        session.execute(OrderPayer.__table__.insert(), rows)


def _paid_event(order_id: int, buyer_id: int, paid_fen: int, chain: list[ChainMember]) -> dict:
    return {"order_id": order_id, "buyer_id": buyer_id, "paid_fen": paid_fen,
            "referrer_ids": [m.id for m in chain[1:3]]}


def _settled_chain(session: Session, buyer_id: int, shop_order_id: str):
    """Re-read an order's chain after an earner changed (was merged) between the chain's read and its lock.

    A commission left on a merged-away member could never be withdrawn, so the chain is read again and its
    earners share-locked until their committed state is the one read."""
    chain = session.execute(text(_CHAIN), {"b": buyer_id, "s": shop_order_id}).all()
    for _ in range(3):
        ids = [r.id for r in chain[1:]]
        if not ids:
            return chain
        statuses = dict(session.execute(text("SELECT id, status FROM members WHERE id = ANY(:ids) ORDER BY id "
                                             "FOR SHARE"), {"ids": ids}).all())
        if all(statuses.get(r.id) == r.status for r in chain[1:]):
            return chain
        chain = session.execute(text(_CHAIN), {"b": buyer_id, "s": shop_order_id}).all()
    return chain


def _paid_replay(session: Session, event: ShopEvent, buyer_id: int) -> dict:
    order = session.scalar(select(Order).where(Order.shop_order_id == event.shop_order_id))
    lines = session.execute(select(OrderLine.product_id, OrderLine.category, OrderLine.quantity, OrderLine.paid_fen)
                            .where(OrderLine.order_id == order.id).order_by(OrderLine.line_no)).all()

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
        _completed(session, parse_shop_event(p.payload, now), now)
        applied.append(p.payload["event"])
        session.delete(p)
    session.flush()
    return applied


# -- completed -------------------------------------------------------------------------------------------------

def _completed(session: Session, event: ShopEvent, now: datetime) -> dict:
    order = session.scalar(select(Order).where(Order.shop_order_id == event.shop_order_id)
                           .with_for_update(key_share=True))
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

def _refunded(session: Session, event: ShopEvent, now: datetime) -> dict:
    order = session.scalar(select(Order).where(Order.shop_order_id == event.shop_order_id)
                           .with_for_update(key_share=True))
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
    record_event(session, "order.refunded", order_id=order.id, buyer_id=order.buyer_id, refund_id=event.refund_id,
                 amount_fen=event.amount_fen, refunded_total_fen=total)
    return {"status": "applied", "event": "refunded", "order_id": order.id, "shop_order_id": event.shop_order_id,
            "refund_id": event.refund_id, "refunded_fen": total, "reversals": reversals}


def net_spent_fen(session: Session, member_id: int) -> int:
    """What the member has paid for orders, net of refunds (the "spent a threshold" partner policy)."""
    return int(session.scalar(select(func.coalesce(func.sum(Order.paid_fen - Order.refunded_fen), 0))
                              .where(Order.buyer_id == member_id)) or 0)
