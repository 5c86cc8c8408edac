"""Posting balanced, idempotent journal entries and keeping cached balances in step.

The one way money moves: `post_entry` / `post_entries`. Everything else (commissions, withdrawals, payouts)
describes a movement as (account, amount_fen) lines and a key derived from the business event."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, ValidationFailed
from app.ledger.models import (MEMBER_ACCOUNT_KINDS, PLATFORM_ACCOUNT_KINDS, JournalEntry, JournalLine,
                               LedgerAccount)

_CACHE = "ledger.account_ids"


@dataclass(frozen=True)
class EntrySpec:
    key: str
    lines: Sequence[tuple[int, int]]  # (account_id, amount_fen); debit-positive, sums to zero
    kind: str
    ref_type: str | None = None
    ref_id: str | None = None
    memo: str = ""


@dataclass(frozen=True)
class Posted:
    entry_id: int
    key: str
    created: bool  # False: the key existed with the same lines, nothing changed


def insert_ignoring_conflicts(session: Session, table):
    """INSERT ... ON CONFLICT DO NOTHING for the session's dialect (PostgreSQL, or SQLite in embedded mode)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing()


# -- accounts ------------------------------------------------------------------------------------------------

def _cache(session: Session) -> dict[str, int]:
    cache = session.info.get(_CACHE)
    if cache is None:
        cache = session.info[_CACHE] = {}

        # An account created in a rolled-back transaction no longer exists: forget every cached id then.
        @event.listens_for(session, "after_soft_rollback")
        def _forget(_session, _previous):
            cache.clear()

    return cache


def _account_codes_to_ids(session: Session, specs: Iterable[tuple[str, int | None, str]]) -> dict[str, int]:
    cache = _cache(session)
    specs = {code: (member_id, kind) for code, member_id, kind in specs}
    missing = [c for c in specs if c not in cache]
    if missing:
        rows = session.execute(select(LedgerAccount.code, LedgerAccount.id).where(LedgerAccount.code.in_(missing)))
        cache.update(dict(rows.all()))
        still = [c for c in missing if c not in cache]
        if still:
            now = utcnow()
            session.execute(insert_ignoring_conflicts(session, LedgerAccount.__table__), [
                {"code": c, "member_id": specs[c][0], "kind": specs[c][1], "balance_fen": 0, "updated_at": now}
                for c in sorted(still)])
            rows = session.execute(select(LedgerAccount.code, LedgerAccount.id).where(LedgerAccount.code.in_(still)))
            cache.update(dict(rows.all()))
    return {c: cache[c] for c in specs}


def member_account_code(member_id: int, kind: str) -> str:
    if kind not in MEMBER_ACCOUNT_KINDS:
        raise ValueError(f"not a member account kind: {kind}")
    return f"member:{int(member_id)}:{kind}"


def member_account(session: Session, member_id: int, kind: str) -> int:
    """The id of a member's `pending` | `available` | `withdrawing` account, created on first use."""
    code = member_account_code(member_id, kind)
    return _account_codes_to_ids(session, [(code, member_id, kind)])[code]


def member_accounts(session: Session, pairs: Iterable[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Several member accounts in one round trip: {(member_id, kind): account_id}."""
    pairs = list(dict.fromkeys(pairs))
    ids = _account_codes_to_ids(session, [(member_account_code(m, k), m, k) for m, k in pairs])
    return {(m, k): ids[member_account_code(m, k)] for m, k in pairs}


def platform_account(session: Session, kind: str) -> int:
    """The id of a platform account: commission_expense | payout_clearing | fees | tax_withheld."""
    if kind not in PLATFORM_ACCOUNT_KINDS:
        raise ValueError(f"not a platform account kind: {kind}")
    code = f"platform:{kind}"
    return _account_codes_to_ids(session, [(code, None, kind)])[code]


# -- posting -------------------------------------------------------------------------------------------------

def _normalised(lines: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    per_account: dict[int, int] = defaultdict(int)
    for account_id, amount in lines:
        per_account[account_id] += amount
    return tuple(sorted((a, v) for a, v in per_account.items() if v))


def validate_entry(spec: EntrySpec) -> None:
    """Raise ValidationFailed unless the entry is a well-formed balanced integer-fen entry."""
    if not isinstance(spec.key, str) or not spec.key or len(spec.key) > 160:
        raise ValidationFailed("A journal entry needs a key of 1 to 160 characters.", code="ledger_bad_key")
    if len(spec.lines) < 2:
        raise ValidationFailed("A journal entry needs at least two lines.", code="ledger_unbalanced",
                               details={"key": spec.key})
    for account_id, amount in spec.lines:
        if type(amount) is not int or type(account_id) is not int:
            raise ValidationFailed("Ledger amounts are integer fen.", code="ledger_not_integer",
                                   details={"key": spec.key})
        if amount == 0:
            raise ValidationFailed("A journal line cannot be zero.", code="ledger_zero_line",
                                   details={"key": spec.key})
    if sum(a for _, a in spec.lines) != 0:
        raise ValidationFailed("The lines of a journal entry must sum to zero.", code="ledger_unbalanced",
                               details={"key": spec.key, "sum": sum(a for _, a in spec.lines)})


def post_entry(session: Session, key: str, lines: Sequence[tuple[int, int]], kind: str,
               ref_type: str | None = None, ref_id: str | int | None = None, memo: str = "") -> Posted:
    """Post one balanced entry; see `post_entries`."""
    return post_entries(session, [EntrySpec(key, list(lines), kind, ref_type,
                                            None if ref_id is None else str(ref_id), memo)])[0]


def post_entries(session: Session, specs: Sequence[EntrySpec], *, fresh: bool = False) -> list[Posted]:
    """Post balanced entries atomically with their cached balances. Idempotent on each entry's key.

    - Lines must be integer fen, non-zero, at least two, summing to zero (else ValidationFailed).
    - A key already posted with the same lines (per account) is a replay: nothing changes, created=False.
      The same key with different lines raises Conflict `ledger_key_reused` (roll the transaction back).
    - Balance rows are locked (SELECT ... FOR NO KEY UPDATE) in account-id order before they change, so two
      transactions touching the same accounts queue instead of deadlocking. Post all entries of one business
      event in one call to keep that order across them.
    - fresh=True is for keys that are new by construction (derived from a row this transaction just created):
      no replay check, and on PostgreSQL the lock, the balance update, the entries and their lines go in one
      round trip. A key that exists anyway raises IntegrityError (a bug, never silently ignored).
    Flushes, never commits."""
    if not specs:
        return []
    for spec in specs:
        validate_entry(spec)
    if len({s.key for s in specs}) != len(specs):
        raise ValidationFailed("Two entries in one posting share a key.", code="ledger_bad_key")
    if fresh and session.get_bind().dialect.name == "postgresql":
        return _post_fresh_pg(session, specs)

    now = utcnow()
    postgres = session.get_bind().dialect.name == "postgresql"
    inserted = _insert_pg(session, specs, now) if postgres else _insert_many(session, specs, now)

    replays = [s for s in specs if s.key not in inserted]
    results: dict[str, Posted] = {}
    if replays:
        existing = session.execute(
            select(JournalEntry.key, JournalEntry.id, JournalLine.account_id, JournalLine.amount_fen)
            .join(JournalLine, JournalLine.entry_id == JournalEntry.id, isouter=True)
            .where(JournalEntry.key.in_([s.key for s in replays]))).all()
        found: dict[str, tuple[int, list]] = {}
        for key, entry_id, account_id, amount in existing:
            found.setdefault(key, (entry_id, []))[1].append((account_id, amount or 0))
        for s in replays:
            entry_id, lines = found[s.key]
            if _normalised(lines) != _normalised(s.lines):
                raise Conflict("This ledger key was already posted with different amounts.",
                               code="ledger_key_reused", details={"key": s.key})
            results[s.key] = Posted(entry_id, s.key, False)

    new = [s for s in specs if s.key in inserted]
    if new:
        if not postgres:  # on PostgreSQL the lines went in with their entries, in one statement
            session.execute(JournalLine.__table__.insert(), [
                {"entry_id": inserted[s.key], "account_id": a, "amount_fen": v} for s in new for a, v in s.lines])
        deltas: dict[int, int] = defaultdict(int)
        for s in new:
            for a, v in s.lines:
                deltas[a] += v
        apply_balance_deltas(session, deltas, now)
        for s in new:
            results[s.key] = Posted(inserted[s.key], s.key, True)
    return [results[s.key] for s in specs]


def _entries_and_lines(on_conflict: str = "") -> str:
    """CTEs `e` (the entries, RETURNING id, key) and `l` (their lines, only for entries that `e` returned).
    Parameters :now, :keys, :kinds, :ref_types, :ref_ids, :memos, :line_keys, :line_accounts, :line_amounts."""
    return f"""
    e AS (
        INSERT INTO journal_entries (key, kind, ref_type, ref_id, memo, created_at)
        SELECT x.key, x.kind, x.ref_type, x.ref_id, x.memo, CAST(:now AS timestamptz)
        FROM unnest(CAST(:keys AS text[]), CAST(:kinds AS text[]), CAST(:ref_types AS text[]),
                    CAST(:ref_ids AS text[]), CAST(:memos AS text[])) AS x(key, kind, ref_type, ref_id, memo)
        {on_conflict}
        RETURNING id, key),
    l AS (
        INSERT INTO journal_lines (entry_id, account_id, amount_fen)
        SELECT e.id, y.account_id, y.amount_fen
        FROM e JOIN unnest(CAST(:line_keys AS text[]), CAST(:line_accounts AS bigint[]),
                           CAST(:line_amounts AS bigint[])) AS y(key, account_id, amount_fen) ON y.key = e.key)"""


# Entries and their lines in one round trip: lines are inserted only for entries whose key was new.
_POST_PG = text(f"WITH {_entries_and_lines('ON CONFLICT (key) DO NOTHING')} SELECT id, key FROM e")


def _insert_pg(session: Session, specs: Sequence[EntrySpec], now) -> dict[str, int]:
    params = {"now": now, "keys": [s.key for s in specs], "kinds": [s.kind for s in specs],
              "ref_types": [s.ref_type for s in specs], "ref_ids": [s.ref_id for s in specs],
              "memos": [s.memo[:255] for s in specs],
              "line_keys": [s.key for s in specs for _ in s.lines],
              "line_accounts": [a for s in specs for a, _ in s.lines],
              "line_amounts": [v for s in specs for _, v in s.lines]}
    return {k: i for i, k in session.execute(_POST_PG, params).all()}


# Lock the balance rows in id order (the materialised CTE takes them one by one in that order before any is
# updated), then add the deltas: one round trip, and no deadlock between two postings sharing accounts.
# NO KEY UPDATE, not UPDATE: inserting journal lines takes KEY SHARE locks on their accounts (the foreign key
# check), and FOR UPDATE would conflict with another transaction's KEY SHARE on the same hot platform account:
# two postings would each hold KEY SHARE and wait for the other's, a deadlock. The balance is no key.
_APPLY_PG = text("""
    WITH locked AS MATERIALIZED (
        SELECT id FROM ledger_accounts WHERE id = ANY(CAST(:ids AS bigint[])) ORDER BY id FOR NO KEY UPDATE)
    UPDATE ledger_accounts a SET balance_fen = a.balance_fen + d.delta, updated_at = :now
    FROM locked JOIN unnest(CAST(:ids AS bigint[]), CAST(:deltas AS bigint[])) AS d(id, delta) ON d.id = locked.id
    WHERE a.id = locked.id
""")


# The prefix of every PostgreSQL posting statement: the balance rows locked in id order (no deadlocks between
# postings), then the deltas added. Parameters :ids, :deltas, :now.
BALANCES_CTE = """
    locked AS MATERIALIZED (
        SELECT id FROM ledger_accounts WHERE id = ANY(CAST(:ids AS bigint[])) ORDER BY id FOR NO KEY UPDATE),
    balances AS (
        UPDATE ledger_accounts a SET balance_fen = a.balance_fen + d.delta, updated_at = :now
        FROM locked JOIN unnest(CAST(:ids AS bigint[]), CAST(:deltas AS bigint[])) AS d(id, delta)
             ON d.id = locked.id
        WHERE a.id = locked.id
        RETURNING a.id)"""


_POST_FRESH_PG = text(f"""WITH {BALANCES_CTE}, {_entries_and_lines()}
    SELECT e.id, e.key, (SELECT COUNT(*) FROM balances) AS updated FROM e""")


def _post_fresh_pg(session: Session, specs: Sequence[EntrySpec]) -> list[Posted]:
    deltas: dict[int, int] = defaultdict(int)
    for s in specs:
        for a, v in s.lines:
            deltas[a] += v
    ids = sorted(a for a, d in deltas.items() if d)
    rows = session.execute(_POST_FRESH_PG, {
        "now": utcnow(), "ids": ids, "deltas": [deltas[a] for a in ids],
        "keys": [s.key for s in specs], "kinds": [s.kind for s in specs],
        "ref_types": [s.ref_type for s in specs], "ref_ids": [s.ref_id for s in specs],
        "memos": [s.memo[:255] for s in specs], "line_keys": [s.key for s in specs for _ in s.lines],
        "line_accounts": [a for s in specs for a, _ in s.lines],
        "line_amounts": [v for s in specs for _, v in s.lines]}).all()
    if len(rows) != len(specs) or (rows and rows[0].updated != len(ids)):
        raise RuntimeError("ledger: a fresh posting did not land whole; the transaction must be rolled back")
    by_key = {r.key: r.id for r in rows}
    return [Posted(by_key[s.key], s.key, True) for s in specs]


def _insert_many(session: Session, specs: Sequence[EntrySpec], now) -> dict[str, int]:
    entries = JournalEntry.__table__
    stmt = insert_ignoring_conflicts(session, entries).values([
        {"key": s.key, "kind": s.kind, "ref_type": s.ref_type, "ref_id": s.ref_id, "memo": s.memo[:255],
         "created_at": now} for s in specs]).returning(entries.c.id, entries.c.key)
    return {k: i for i, k in session.execute(stmt).all()}


def apply_balance_deltas(session: Session, deltas: dict[int, int], now=None) -> None:
    """Add deltas to cached balances, locking the rows in id order first. Only for lines just inserted."""
    deltas = {a: d for a, d in deltas.items() if d}
    if not deltas:
        return
    ids = sorted(deltas)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_APPLY_PG, {"ids": ids, "deltas": [deltas[a] for a in ids], "now": now or utcnow()})
        return
    session.execute(select(LedgerAccount.id).where(LedgerAccount.id.in_(ids)).order_by(LedgerAccount.id)
                    .with_for_update(key_share=True)).all()
    session.execute(text("UPDATE ledger_accounts SET balance_fen = balance_fen + :d, updated_at = :now WHERE id = :id"),
                    [{"d": deltas[a], "id": a, "now": now or utcnow()} for a in ids])


# -- reading ---------------------------------------------------------------------------------------------------

def member_balances(session: Session, member_id: int) -> dict[str, int]:
    """{pending, available, withdrawing} in fen (0 for an account never used)."""
    rows = session.execute(select(LedgerAccount.kind, LedgerAccount.balance_fen)
                           .where(LedgerAccount.member_id == member_id)).all()
    out = {k: 0 for k in MEMBER_ACCOUNT_KINDS}
    out.update({k: v for k, v in rows})
    return out


def account_statement(session: Session, member_id: int, limit: int | None = None, before_id: int | None = None):
    """A member's journal lines, newest first: dicts with entry key, kind, account kind, amount and time."""
    q = (select(JournalLine.id, JournalEntry.id.label("entry_id"), JournalEntry.key, JournalEntry.kind,
                JournalEntry.ref_type, JournalEntry.ref_id, JournalEntry.memo, JournalEntry.created_at,
                LedgerAccount.kind.label("account"), JournalLine.amount_fen)
         .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
         .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
         .where(LedgerAccount.member_id == member_id)
         .order_by(JournalLine.id.desc()))
    if before_id:
        q = q.where(JournalLine.id < before_id)
    if limit:
        q = q.limit(limit)
    return [dict(r._mapping) for r in session.execute(q)]


@dataclass
class LedgerReport:
    entries: int = 0
    accounts: int = 0
    unbalanced_entries: list[dict] = field(default_factory=list)
    mismatched_accounts: list[dict] = field(default_factory=list)
    pending_mismatches: list[dict] = field(default_factory=list)
    broken_maturation_links: list[dict] = field(default_factory=list)
    total_balance_fen: int = 0

    @property
    def ok(self) -> bool:
        return (not self.unbalanced_entries and not self.mismatched_accounts and not self.pending_mismatches
                and not self.broken_maturation_links and self.total_balance_fen == 0)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "entries": self.entries, "accounts": self.accounts,
                "unbalanced_entries": self.unbalanced_entries, "mismatched_accounts": self.mismatched_accounts,
                "pending_mismatches": self.pending_mismatches,
                "broken_maturation_links": self.broken_maturation_links, "total_balance_fen": self.total_balance_fen}


def check_ledger(session: Session, limit: int = 100) -> LedgerReport:
    """Prove the books: every entry's lines sum to zero (and it has lines), every cached balance equals the sum
    of its lines, all balances together sum to zero, each member's pending account equals the open (pending or
    held) part of their commissions, and every matured commission (available, or reversed after maturing) names
    in `mature_entry_id` an existing maturation entry that credited its earner's available account (the column
    has no foreign key, to keep maturation fast: this check is what holds the link)."""
    report = LedgerReport()
    report.entries = session.scalar(select(func.count()).select_from(JournalEntry)) or 0
    report.accounts = session.scalar(select(func.count()).select_from(LedgerAccount)) or 0
    rows = session.execute(text(
        "SELECT e.id, e.key, COALESCE(SUM(l.amount_fen), 0) AS total, COUNT(l.id) AS n FROM journal_entries e "
        "LEFT JOIN journal_lines l ON l.entry_id = e.id GROUP BY e.id, e.key "
        "HAVING COALESCE(SUM(l.amount_fen), 0) <> 0 OR COUNT(l.id) < 2 ORDER BY e.id LIMIT :lim"), {"lim": limit})
    report.unbalanced_entries = [{"entry_id": r.id, "key": r.key, "sum_fen": int(r.total), "lines": int(r.n)}
                                 for r in rows]
    rows = session.execute(text(
        "SELECT a.id, a.code, a.balance_fen, COALESCE(d.total, 0) AS derived FROM ledger_accounts a "
        "LEFT JOIN (SELECT account_id, SUM(amount_fen) AS total FROM journal_lines GROUP BY account_id) d "
        "ON d.account_id = a.id WHERE a.balance_fen <> COALESCE(d.total, 0) ORDER BY a.id LIMIT :lim"),
        {"lim": limit})
    report.mismatched_accounts = [{"account_id": r.id, "code": r.code, "cached_fen": int(r.balance_fen),
                                   "derived_fen": int(r.derived)} for r in rows]
    report.total_balance_fen = int(session.scalar(text("SELECT COALESCE(SUM(balance_fen), 0) FROM ledger_accounts")))
    rows = session.execute(text(
        "SELECT COALESCE(a.member_id, c.earner_id) AS member_id, COALESCE(a.balance_fen, 0) AS pending, "
        "COALESCE(c.open_fen, 0) AS open_fen FROM "
        "(SELECT member_id, balance_fen FROM ledger_accounts WHERE kind = 'pending') a FULL OUTER JOIN "
        "(SELECT earner_id, SUM(amount_fen - reversed_fen) AS open_fen FROM commissions "
        " WHERE state IN ('pending', 'held') GROUP BY earner_id) c ON c.earner_id = a.member_id "
        "WHERE COALESCE(a.balance_fen, 0) <> COALESCE(c.open_fen, 0) LIMIT :lim"), {"lim": limit})
    report.pending_mismatches = [{"member_id": r.member_id, "pending_fen": int(r.pending),
                                  "open_commissions_fen": int(r.open_fen)} for r in rows]
    rows = session.execute(text(
        # NOT EXISTS probing by the commission's own entry id: a join to the set of all maturation entries let a
        # stale row estimate pick a nested loop that rescanned that set per commission (170 s at 200k commissions).
        "SELECT c.id, c.earner_id, c.state, c.mature_entry_id FROM commissions c "
        "WHERE (c.state = 'available' OR c.mature_entry_id IS NOT NULL) AND NOT EXISTS ("
        " SELECT 1 FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.id "
        " JOIN ledger_accounts a ON a.id = l.account_id "
        " WHERE e.id = c.mature_entry_id AND e.kind = 'commission_matured' AND a.member_id = c.earner_id "
        " AND a.kind = 'available' AND l.amount_fen > 0) "
        "ORDER BY c.id LIMIT :lim"), {"lim": limit})
    report.broken_maturation_links = [{"commission_id": r.id, "earner_id": r.earner_id, "state": r.state,
                                       "mature_entry_id": r.mature_entry_id} for r in rows]
    return report
