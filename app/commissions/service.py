"""Commission lifecycle: accrue on paid, start the hold on completed, reverse on refund, mature, hold, cancel.

Every money movement is a ledger entry keyed on the business event:
  order:<order_id>:paid:L<level>                 commission_expense → member pending
  order:<order_id>:refund:<refund_id>:L<level>   member pending|available → commission_expense
  maturation:<batch id>:<member id>              member pending → member available (one per earner and batch)
  commission:<id>:cancel                         member pending → commission_expense (confirmed fraud)"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from app.commissions.models import Commission
from app.commissions.plans import PlanSnapshot
from app.commissions.rules import (ChainMember, commission_fen, earners, money_account_for,
                                   remaining_after_refunds, resolve_bps, transition)
from app.db import json_param, utcnow
from app.events import deliver_recorded, record_many
from app.events import record as record_event
from app.fraud.service import has_open_flags
from app.ledger.service import (BALANCES_CTE, EntrySpec, member_account, member_accounts, platform_account,
                                post_entries)


# The commissions of a whole batch of orders, their entries (keys new by construction: each order row was created
# by this transaction), their lines and the balances (locked in id order first) in one round trip. The platform
# expense account, which every order credits, is locked and updated once per batch, not once per order.
_ACCRUE_PG = text(f"""
    WITH {BALANCES_CTE},
    x AS (
        SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
            AS x(order_id bigint, level smallint, earner_id bigint, plan_id bigint, grade text, base_fen bigint,
                 amount_fen bigint, state text, key text, account_id bigint)),
    c AS (
        INSERT INTO commissions (order_id, level, earner_id, plan_id, grade, base_fen, amount_fen, reversed_fen,
                                 state, created_at, updated_at)
        SELECT order_id, level, earner_id, plan_id, grade, base_fen, amount_fen, 0, state, :now, :now FROM x
        RETURNING id, order_id, level),
    e AS (
        INSERT INTO journal_entries (key, kind, ref_type, ref_id, memo, created_at)
        SELECT x.key, 'commission_accrued', 'commission', CAST(c.id AS text), '', CAST(:now AS timestamptz)
        FROM c JOIN x ON x.order_id = c.order_id AND x.level = c.level
        RETURNING id, key),
    l AS (
        INSERT INTO journal_lines (entry_id, account_id, amount_fen)
        SELECT e.id, y.account_id, y.amount_fen
        FROM e JOIN x ON x.key = e.key
        CROSS JOIN LATERAL (VALUES (x.account_id, x.amount_fen), (CAST(:expense AS bigint), -x.amount_fen))
            AS y(account_id, amount_fen))
    SELECT c.id, c.order_id, c.level, (SELECT COUNT(*) FROM e) AS entries, (SELECT COUNT(*) FROM balances) AS updated
    FROM c
""")


def commission_rows(*, order_id: int, paid_fen: int, lines: list[tuple[str, int]], is_first: bool,
                    plan: PlanSnapshot, buyer: ChainMember, referrer: ChainMember | None,
                    referrers_referrer: ChainMember | None, now: datetime) -> list[dict]:
    """The commissions one paid order earns (at most two), not yet stored. Pure: no database.

    lines: [(category, paid_fen)]. Each line is rounded down on its own: floor(paid × bps / 10000)."""
    rows = []
    for level, m in earners(buyer, referrer, referrers_referrer, plan.self_purchase):
        amount = sum(commission_fen(paid, resolve_bps(plan.rates, m.grade, level, category, is_first))
                     for category, paid in lines)
        if amount <= 0:
            continue
        rows.append({"order_id": order_id, "level": level, "earner_id": m.id, "plan_id": plan.id, "grade": m.grade,
                     "base_fen": paid_fen, "amount_fen": amount, "reversed_fen": 0,
                     # An open fraud flag holds new commissions: they accrue but never mature until released.
                     "state": "held" if m.flagged else "pending",
                     "created_at": now, "updated_at": now})
    return rows


def _accrual_key(row: dict) -> str:
    return f"order:{row['order_id']}:paid:L{row['level']}"


def accrue_commissions(session: Session, rows: list[dict], now: datetime) -> list[dict]:
    """Store commissions of freshly created orders (from `commission_rows`, any number of orders) and credit each
    earner's pending account from commission_expense, one entry per commission keyed `order:<id>:paid:L<level>`.

    Sets each row's "id" and returns the rows. PostgreSQL: one round trip for the lot (plus one for accounts not
    yet known to the session)."""
    if not rows:
        return rows
    accounts = member_accounts(session, [(r["earner_id"], "pending") for r in rows])
    expense = platform_account(session, "commission_expense")
    for r in rows:
        if type(r["amount_fen"]) is not int or r["amount_fen"] <= 0:
            raise ValueError("a commission is a positive integer number of fen")
    if session.get_bind().dialect.name != "postgresql":
        table = Commission.__table__
        for r in rows:
            r["id"] = session.execute(table.insert().values(**r).returning(table.c.id)).scalar_one()
        post_entries(session, [EntrySpec(_accrual_key(r), [(accounts[(r["earner_id"], "pending")], r["amount_fen"]),
                                                           (expense, -r["amount_fen"])],
                                         "commission_accrued", "commission", str(r["id"])) for r in rows], fresh=True)
        _record_accrued(session, rows)
        return rows
    deltas: dict[int, int] = {expense: 0}
    for r in rows:
        account = accounts[(r["earner_id"], "pending")]
        deltas[account] = deltas.get(account, 0) + r["amount_fen"]
        deltas[expense] -= r["amount_fen"]
    ids = sorted(a for a, d in deltas.items() if d)
    out = session.execute(_ACCRUE_PG, {
        "now": now, "expense": expense, "ids": ids, "deltas": [deltas[a] for a in ids],
        "rows": json_param([{"order_id": r["order_id"], "level": r["level"], "earner_id": r["earner_id"],
                             "plan_id": r["plan_id"], "grade": r["grade"], "base_fen": r["base_fen"],
                             "amount_fen": r["amount_fen"], "state": r["state"], "key": _accrual_key(r),
                             "account_id": accounts[(r["earner_id"], "pending")]} for r in rows])}).all()
    if len(out) != len(rows) or out[0].entries != len(rows) or out[0].updated != len(ids):
        raise RuntimeError("ledger: an accrual did not land whole; the transaction must be rolled back")
    by_key = {(o.order_id, o.level): o.id for o in out}
    for r in rows:
        r["id"] = by_key[(r["order_id"], r["level"])]
    _record_accrued(session, rows)
    return rows


def _record_accrued(session: Session, rows: list[dict]) -> None:
    record_many(session, [("commission.accrued", {"commission_id": r["id"], "order_id": r["order_id"],
                                                  "earner_id": r["earner_id"], "level": r["level"],
                                                  "amount_fen": r["amount_fen"]}) for r in rows])


def accrue_for_paid_order(session: Session, *, order_id: int, paid_fen: int, lines: list[tuple[str, int]],
                          is_first: bool, plan: PlanSnapshot, buyer: ChainMember, referrer: ChainMember | None,
                          referrers_referrer: ChainMember | None, now: datetime) -> list[dict]:
    """Create one order's commissions (at most two) and credit each earner's pending account."""
    return accrue_commissions(session, commission_rows(
        order_id=order_id, paid_fen=paid_fen, lines=lines, is_first=is_first, plan=plan, buyer=buyer,
        referrer=referrer, referrers_referrer=referrers_referrer, now=now), now)


def start_hold_period(session: Session, order_id: int, completed_at: datetime, hold_days: int) -> None:
    """The refund window starts when the order completes: commissions mature hold_days later."""
    session.execute(update(Commission).where(Commission.order_id == order_id, Commission.mature_at.is_(None))
                    .values(mature_at=completed_at + timedelta(days=hold_days), updated_at=utcnow()))


def reverse_for_refund(session: Session, *, order_id: int, refund_id: str, paid_fen: int,
                       refunded_total_fen: int) -> list[dict]:
    """Bring every commission of the order down to its share of what is still paid, at both levels.

    The amount to reverse is computed from the cumulative refund, so partial refunds add up exactly and never
    exceed the commission. Money comes back from wherever it sits now (pending, or available even if that makes
    the balance negative: later earnings repay it first, since a balance is just a sum)."""
    commissions = session.scalars(select(Commission).where(Commission.order_id == order_id)
                                  .order_by(Commission.level).with_for_update(key_share=True)).all()
    specs, out = [], []
    expense = None
    now = utcnow()
    for c in commissions:
        account_kind = money_account_for(c.state)
        if account_kind is None:  # reversed or canceled: its money already went back
            continue
        target = c.amount_fen - remaining_after_refunds(c.amount_fen, paid_fen, refunded_total_fen)
        delta = target - c.reversed_fen
        if delta <= 0:
            continue
        expense = expense or platform_account(session, "commission_expense")
        specs.append(EntrySpec(f"order:{order_id}:refund:{refund_id}:L{c.level}",
                               [(member_account(session, c.earner_id, account_kind), -delta), (expense, delta)],
                               "commission_reversed", "commission", str(c.id)))
        c.reversed_fen = target
        if target == c.amount_fen:
            c.state = transition(c.state, "reverse_all")
        c.updated_at = now
        out.append({"commission_id": c.id, "earner_id": c.earner_id, "level": c.level, "reversed_fen": delta,
                    "from": account_kind})
    session.flush()
    post_entries(session, specs)
    if out:
        record_event(session, "commission.reversed", order_id=order_id, refund_id=refund_id,
                     reversals=[{"commission_id": o["commission_id"], "earner_id": o["earner_id"],
                                 "amount_fen": o["reversed_fen"]} for o in out])
    return out


def hold_open_commissions(session: Session, member_id: int) -> int:
    """Call when a fraud flag opens: the member's pending commissions become held (they stop maturing)."""
    return session.execute(update(Commission).where(Commission.earner_id == member_id, Commission.state == "pending")
                           .values(state="held", updated_at=utcnow())).rowcount


def release_held_commissions(session: Session, member_id: int) -> int:
    """Call when the last open flag is dismissed: held commissions go back to pending and mature as usual."""
    if has_open_flags(session, member_id):
        return 0
    return session.execute(update(Commission).where(Commission.earner_id == member_id, Commission.state == "held")
                           .values(state="pending", updated_at=utcnow())).rowcount


def cancel_commissions_for_fraud(session: Session, member_id: int) -> int:
    """Confirmed fraud: the member's not-yet-available commissions are canceled and their money returned.

    Available money is left alone (it may already be withdrawn); operators claw it back case by case."""
    commissions = session.scalars(select(Commission).where(Commission.earner_id == member_id,
                                                           Commission.state.in_(("pending", "held")))
                                  .order_by(Commission.id).with_for_update(key_share=True)).all()
    if not commissions:
        return 0
    pending = member_account(session, member_id, "pending")
    expense = platform_account(session, "commission_expense")
    specs, now = [], utcnow()
    for c in commissions:
        net = c.amount_fen - c.reversed_fen
        if net > 0:
            specs.append(EntrySpec(f"commission:{c.id}:cancel", [(pending, -net), (expense, net)],
                                   "commission_canceled", "commission", str(c.id)))
        c.state = transition(c.state, "cancel")
        c.updated_at = now
    session.flush()
    post_entries(session, specs)
    return len(commissions)


# -- maturation: set-based, one batch per call ----------------------------------------------------------------

# No ORDER BY: the order of maturation does not matter, and sorting the whole due backlog for every batch made
# each batch cost O(backlog).
_DUE_WHERE = """c.state = 'pending' AND c.mature_at <= :now
      AND NOT EXISTS (SELECT 1 FROM risk_flags f WHERE f.member_id = c.earner_id AND f.status = 'open')"""
_DUE = f"""
    SELECT c.id FROM commissions c
    WHERE {_DUE_WHERE}
    LIMIT :batch
"""


# Commissions per batch (and transaction). Each batch pays a fixed cost and one entry, two lines and two balance
# updates per earner in it, so larger batches are faster (docs/ledger.md §6: 35k/s at 20,000, 59k/s at 100,000);
# the price is how long a batch holds its commission row locks (~1.5-2 s at 100,000 here): a refund of a
# commission in the batch waits that long. (Member balances are locked late in the statement, after the flip.)
MATURE_BATCH = 100_000


def _batch_key(batch_id: int, member_id: int) -> str:
    return f"maturation:{batch_id}:{member_id}"


# One statement per batch, no temp table: select and lock the due commissions (SKIP LOCKED: a row a concurrent
# refund holds is left for the next run), sum them per earner, add each earner's -pending/+available to the cached
# balances (an upsert in account-id order: it locks existing rows FOR NO KEY UPDATE like every other posting, and
# creates a missing `available` account with its first balance), post one entry per earner with its two lines,
# and flip the commissions to available pointing at their earner's entry. The entry key is new by construction
# (the batch id is a commission id that leaves `pending` in this transaction), so a plain INSERT: a reused key
# would be a bug, and fails loudly.
_MATURE_PG = text(f"""
    WITH due AS MATERIALIZED (
        SELECT c.id, c.earner_id, c.amount_fen - c.reversed_fen AS net FROM commissions c
        WHERE {_DUE_WHERE}
        LIMIT :batch FOR NO KEY UPDATE OF c SKIP LOCKED),
    per_earner AS MATERIALIZED (
        SELECT earner_id, SUM(net) AS net, (SELECT MIN(id) FROM due) AS batch_id
        FROM due GROUP BY earner_id HAVING SUM(net) <> 0),
    moves AS MATERIALIZED (
        SELECT p.earner_id, s.kind, 'member:' || p.earner_id || ':' || s.kind AS code, s.sign * p.net AS amount
        FROM per_earner p CROSS JOIN (VALUES ('pending', -1), ('available', 1)) AS s(kind, sign)),
    balances AS (
        INSERT INTO ledger_accounts AS a (code, member_id, kind, balance_fen, updated_at)
        SELECT m.code, m.earner_id, m.kind, m.amount, CAST(:now AS timestamptz)
        FROM moves m LEFT JOIN ledger_accounts x ON x.code = m.code
        ORDER BY x.id NULLS LAST, m.code
        ON CONFLICT (code) DO UPDATE SET balance_fen = a.balance_fen + EXCLUDED.balance_fen,
                                         updated_at = EXCLUDED.updated_at
        RETURNING a.id, a.code),
    e AS (
        INSERT INTO journal_entries (key, kind, ref_type, ref_id, memo, created_at)
        SELECT 'maturation:' || batch_id || ':' || earner_id, 'commission_matured', 'member',
               CAST(earner_id AS text), '', CAST(:now AS timestamptz)
        FROM per_earner
        RETURNING id, CAST(ref_id AS bigint) AS earner_id),
    l AS (
        INSERT INTO journal_lines (entry_id, account_id, amount_fen)
        SELECT e.id, b.id, m.amount FROM e JOIN moves m ON m.earner_id = e.earner_id JOIN balances b ON b.code = m.code
        RETURNING 1),
    upd AS (
        UPDATE commissions c SET state = 'available', matured_at = :now, updated_at = :now, mature_entry_id = e.id
        FROM due d LEFT JOIN e ON e.earner_id = d.earner_id
        WHERE c.id = d.id AND c.state = 'pending'
        RETURNING 1),
    ev AS (
        INSERT INTO domain_events (name, data, occurred_at)
        SELECT 'commission.matured', jsonb_build_object('member_id', earner_id, 'amount_fen', net,
                                                        'batch_id', batch_id), CAST(:now AS timestamptz)
        FROM per_earner
        RETURNING id)
    SELECT (SELECT COUNT(*) FROM due) AS due, (SELECT COUNT(*) FROM upd) AS flipped,
           (SELECT COUNT(*) FROM moves) AS moves, (SELECT COUNT(*) FROM balances) AS balances,
           (SELECT COUNT(*) FROM l) AS lines, (SELECT array_agg(id) FROM ev) AS event_ids
""")


def mature_due_commissions(session: Session, now: datetime | None = None, batch_size: int = MATURE_BATCH) -> int:
    """Move one batch of due commissions (pending, hold period over, earner not flagged) to available.

    One journal entry per earner and batch, `maturation:<batch id>:<member id>` (the batch id is the smallest
    commission id in the batch), moving the sum of that earner's matured commissions pending -> available; each
    commission keeps the entry that matured it in `mature_entry_id`. Idempotent because the commissions leave
    `pending` in the same transaction as the entry: a re-run never finds them again, and a batch id, being a
    commission id, is never reused.

    Set-based on PostgreSQL: one statement per batch whatever its size, no per-row Python. Rows locked by a
    concurrent refund are skipped (SKIP LOCKED) and picked up by the next run. Returns how many matured; call
    again until it returns less than batch_size. Flushes, never commits: the caller commits each batch."""
    now = now or utcnow()
    if session.get_bind().dialect.name != "postgresql":
        return _mature_portable(session, now, batch_size)
    session.execute(text("SET LOCAL work_mem = '64MB'"))  # the batch's CTEs and hashes stay in memory
    r = session.execute(_MATURE_PG, {"now": now, "batch": batch_size}).one()
    if r.flipped != r.due or r.balances != r.moves or r.lines != r.moves:
        raise RuntimeError("maturation: a batch did not land whole; the transaction must be rolled back")
    deliver_recorded(session, "commission.matured", r.event_ids or [])
    return r.due


def _mature_portable(session: Session, now: datetime, batch_size: int) -> int:
    """Embedded (SQLite) fallback: same movements through post_entries, for small demo volumes."""
    ids = session.scalars(text(_DUE), {"now": now, "batch": batch_size}).all()
    commissions = []  # in chunks: SQLite caps the number of bound parameters (32,766)
    for start in range(0, len(ids), 10000):
        commissions += session.scalars(select(Commission).where(Commission.id.in_(ids[start:start + 10000]))).all()
    commissions.sort(key=lambda c: c.id)
    if not commissions:
        return 0
    batch_id = commissions[0].id
    nets: dict[int, int] = {}
    for c in commissions:
        nets[c.earner_id] = nets.get(c.earner_id, 0) + c.amount_fen - c.reversed_fen
    specs = [EntrySpec(_batch_key(batch_id, member_id),
                       [(member_account(session, member_id, "pending"), -net),
                        (member_account(session, member_id, "available"), net)],
                       "commission_matured", "member", str(member_id))
             for member_id, net in sorted(nets.items()) if net]
    entry_ids = {int(p.key.rsplit(":", 1)[1]): p.entry_id for p in post_entries(session, specs)}
    for c in commissions:
        c.state, c.matured_at, c.updated_at = transition(c.state, "mature"), now, now
        c.mature_entry_id = entry_ids.get(c.earner_id)
    session.flush()
    record_many(session, [("commission.matured", {"member_id": member_id, "amount_fen": net, "batch_id": batch_id})
                          for member_id, net in sorted(nets.items()) if net])
    return len(commissions)


def mature_all_due(session_factory, now: datetime | None = None, batch_size: int = MATURE_BATCH) -> int:
    """Run batches until nothing is due, committing each batch (short locks). Used by the RQ job and the bench."""
    total = 0
    while True:
        with session_factory() as s:
            n = mature_due_commissions(s, now, batch_size)
            s.commit()
        total += n
        if n < batch_size:
            return total
