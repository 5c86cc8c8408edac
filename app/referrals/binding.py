"""Touches and binding: who referred whom.

All touches go through `process_touches`, which handles a batch set-based (a handful of statements for a
hundred touches) so a launch-day burst of scans stays cheap; `touch` is the batch of one.

members.referrer_id is written only here, with a conditional UPDATE (compare-and-set on the referrer we read),
so concurrent touches for one person bind exactly one referrer whatever the timing: the database decides."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import exists, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.db import json_param, utcnow
from app.events import record_many
from app.members.models import Identity, Member, MemberRole
from app.referrals.models import Binding, Partner, PendingReferral, ReferralCode, StaffAssignment, Touch
from app.referrals.rules import BindingRules, code_standing, decide
from app.referrals.saved_rules import get_rules

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TouchResult:
    outcome: str  # bound | rebound | pending | already_bound | protected | not_new | self | cycle | ...
    referrer_id: int | None = None
    code_id: int | None = None

    @property
    def bound(self) -> bool:
        return self.outcome in ("bound", "rebound")


@dataclass
class IncomingTouch:
    """A touch to process (a scan, follow, launch or landing); `Touch` is the row it leaves."""

    channel: str
    scene: str | None
    at: datetime = field(default_factory=utcnow)
    member_id: int | None = None  # a known member (mini-program, H5) ...
    openid: str | None = None  # ... or a service-account openid, found or created here
    new_follower: bool = False
    event_key: str | None = None  # makes re-processing the same WeChat event a no-op
    ip: str | None = None
    user_agent: str | None = None


@dataclass
class _CodeInfo:
    id: int
    kind: str
    referrer_id: int | None
    store_id: int | None
    can_bind: bool


class _Cycle(Exception):
    pass


def _insert(session: Session, table):
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(table)


def _insert_rows(session: Session, model, rows: list[dict], *, conflict: str = "", returning: str = ""):
    """Insert many rows. PostgreSQL: one INSERT ... SELECT FROM jsonb_to_recordset, a constant statement (prepared
    once) whatever the batch size; executemany sent one statement per row, and a VALUES list built per batch was
    parsed anew each time. `conflict`: an ON CONFLICT clause; `returning`: columns to return."""
    if not rows:
        return []
    if session.get_bind().dialect.name != "postgresql":
        stmt = _insert(session, model)
        if conflict:
            stmt = stmt.on_conflict_do_nothing()
        if returning:
            return session.execute(stmt.returning(*[model.__table__.c[c] for c in returning.split(", ")]),
                                   rows).all()
        session.execute(stmt, rows)
        return []
    table = model.__table__
    names = list(rows[0])
    dialect = session.get_bind().dialect
    spec = ", ".join(f"{n} {table.c[n].type.compile(dialect=dialect)}" for n in names)
    sql = (f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(names)} "
           f"FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x({spec}) {conflict}"
           + (f" RETURNING {returning}" if returning else ""))
    result = session.execute(text(sql), {"rows": json_param(rows)})
    return result.all() if returning else []


def touch(session: Session, *, scene: str | None, member_id: int, channel: str, new_follower: bool = False,
          ip: str | None = None, user_agent: str | None = None, now: datetime | None = None) -> TouchResult:
    """Record one touch and apply the binding rules. Always logged, even when nothing binds."""
    return process_touches(session, [IncomingTouch(channel=channel, scene=scene, at=now or utcnow(),
                                                member_id=member_id, new_follower=new_follower, ip=ip,
                                                user_agent=user_agent)])[0]


def process_touches(session: Session, incoming: list[IncomingTouch]) -> list[TouchResult | None]:
    """Apply a batch of touches in order. Returns one result per touch (None for one already processed)."""
    return with_deadlock_retry(session, lambda: _process(session, incoming))


def _process(session: Session, incoming: list[IncomingTouch]) -> list[TouchResult | None]:
    for e in incoming:
        if e.openid:
            e.member_id = None  # a retried attempt must not reuse members its rolled-back savepoint created
    fresh = _drop_processed(session, incoming)
    created = _resolve_openids(session, [e for e in fresh if e.member_id is None])
    codes = _load_codes(session, {e.scene for e in fresh if e.scene})
    rules = get_rules(session)
    state = _MemberState(session, {e.member_id for e in fresh}, created)
    results: dict[int, TouchResult] = {}
    touches, bindings = [], []
    for e in fresh:
        result = _apply(session, rules, state, codes.get(e.scene or ""), e, bindings)
        results[id(e)] = result
        code = codes.get(e.scene or "")
        touches.append({"code_id": code.id if code else None, "scene": (e.scene or "")[:64],
                        "member_id": e.member_id, "channel": e.channel, "new_follower": e.new_follower,
                        "outcome": result.outcome, "ip": e.ip, "user_agent": (e.user_agent or "")[:256] or None,
                        "created_at": e.at, "event_key": e.event_key})
    state.write_binds(results, fresh)
    bindings = [b for b in bindings if b.pop("_ok", True)]
    _insert_rows(session, Binding, bindings)
    _record_bound(session, bindings)
    _insert_rows(session, Touch, touches, conflict="ON CONFLICT (event_key) WHERE event_key IS NOT NULL DO NOTHING")
    session.flush()
    return [results.get(id(e)) for e in incoming]


def _drop_processed(session: Session, incoming: list[IncomingTouch]) -> list[IncomingTouch]:
    keys = [e.event_key for e in incoming if e.event_key]
    if not keys:
        return list(incoming)
    seen = set(session.scalars(select(Touch.event_key).where(Touch.event_key.in_(keys))))
    out, batch_keys = [], set()
    for e in incoming:
        if e.event_key and (e.event_key in seen or e.event_key in batch_keys):
            continue
        batch_keys.add(e.event_key)
        out.append(e)
    return out


def _resolve_openids(session: Session, incoming: list[IncomingTouch]) -> set[int]:
    """Find or create the members behind service-account openids, in bulk. Returns the ids created now."""
    openids = sorted({e.openid for e in incoming if e.openid})
    created: dict[str, int] = {}
    if not openids:
        return set()
    known = dict(session.execute(select(Identity.value, Identity.member_id)
                                 .where(Identity.kind == "oa_openid", Identity.value.in_(openids))).all())
    missing = [o for o in openids if o not in known]
    if missing:
        now = utcnow()
        if session.get_bind().dialect.name == "postgresql":  # ids first: then one constant INSERT for them all
            ids = list(session.scalars(text("SELECT nextval(pg_get_serial_sequence('members', 'id')) "
                                            "FROM generate_series(1, :n)"), {"n": len(missing)}))
            _insert_rows(session, Member, [{"id": i, "nickname": "", "avatar_url": "", "status": "active",
                                            "created_at": now, "updated_at": now} for i in ids])
        else:
            ids = session.scalars(_insert(session, Member).returning(Member.id, sort_by_parameter_order=True),
                                  [{"nickname": "", "avatar_url": "", "status": "active", "created_at": now,
                                    "updated_at": now} for _ in missing]).all()
        won = {r[0] for r in _insert_rows(
            session, Identity, [{"member_id": mid, "kind": "oa_openid", "value": o, "created_at": now}
                                for o, mid in zip(missing, ids, strict=True)],
            conflict="ON CONFLICT (kind, value) DO NOTHING", returning="value")}
        created = {o: mid for o, mid in zip(missing, ids, strict=True) if o in won}
        lost = [mid for o, mid in zip(missing, ids, strict=True) if o not in won]
        if lost:  # another process created these people a moment ago: use theirs, drop ours
            session.execute(Member.__table__.delete().where(Member.id.in_(lost)))
            known.update(session.execute(select(Identity.value, Identity.member_id).where(
                Identity.kind == "oa_openid", Identity.value.in_([o for o in missing if o not in won]))).all())
        _insert_rows(session, MemberRole,
                     [{"member_id": mid, "role": "consumer", "granted_at": now} for mid in created.values()])
        known.update(created)
    # A merged member's identities point at the survivor already (merges move identities).
    for e in incoming:
        if e.openid:
            e.member_id = known[e.openid]
    return set(created.values())


def _code_rows():
    return (select(ReferralCode.id, ReferralCode.scene, ReferralCode.kind, ReferralCode.referrer_id,
                   ReferralCode.store_id, ReferralCode.status, ReferralCode.replaced_by_id,
                   Partner.status.label("partner_status"), StaffAssignment.store_id.label("staff_store_id"),
                   StaffAssignment.id.label("assignment_id"))
            .outerjoin(Partner, Partner.member_id == ReferralCode.referrer_id)
            .outerjoin(StaffAssignment, (StaffAssignment.member_id == ReferralCode.referrer_id)
                       & StaffAssignment.ended_at.is_(None)))


def _load_codes(session: Session, scenes: set[str]) -> dict[str, _CodeInfo]:
    scenes = {s for s in scenes if len(s) <= 32}
    if not scenes:
        return {}
    rows = session.execute(_code_rows().where(ReferralCode.scene.in_(scenes))).all()
    # A duplicate personal code retired in favour of another (codes.retire_duplicates) binds as that code, so
    # whatever was shared with its scene keeps working for the same person.
    forwarded = {r.replaced_by_id for r in rows if r.status != "active" and r.replaced_by_id is not None}
    survivors = {r.id: r for r in session.execute(_code_rows().where(ReferralCode.id.in_(forwarded)))} \
        if forwarded else {}
    out = {}
    for scanned in rows:
        r = survivors.get(scanned.replaced_by_id, scanned) if scanned.status != "active" else scanned
        can = code_standing(r.kind, r.status, r.partner_status, r.assignment_id is not None,
                            r.referrer_id is not None) == "active"
        # Credit: a campaign's store, else the clerk's store at this moment (a clerk who moves keeps one code;
        # customers won before the move stay with the old store).
        store = None if r.kind == "partner" else (r.store_id or r.staff_store_id)
        out[scanned.scene] = _CodeInfo(r.id, r.kind, r.referrer_id, store, can)
    return out


class _MemberState:
    """Referrers of the batch's members as the batch sees them: read once, updated as binds are decided."""

    def __init__(self, session: Session, member_ids: set[int], created: set[int] = frozenset()):
        self.session = session
        # Members created in this transaction have no downline (nobody can reference an uncommitted row),
        # so binding them can never close a cycle: no upline walk needed.
        self.created = created
        rows = session.execute(select(Member.id, Member.referrer_id, Member.bound_at, Member.created_at)
                               .where(Member.id.in_(member_ids))).all() if member_ids else []
        self.rows = {r.id: {"referrer_id": r.referrer_id, "bound_at": r.bound_at, "created_at": r.created_at,
                            "read_referrer_id": r.referrer_id} for r in rows}
        self.pending: dict[int, dict] = {}  # member id -> the bind to write

    def upline_contains(self, start: int, target: int) -> bool:
        """Is target above start? Ancestors are share-locked: the UPDATE that would close a cycle conflicts
        with that lock, so two people binding under each other at once serialise (or deadlock, which PostgreSQL
        breaks) and a cycle never commits, while the many fans of one partner never wait for each other."""
        current, depth = start, 0
        while current is not None and depth < 256:
            if current == target:
                return True
            if current in self.pending:
                current = self.pending[current]["referrer_id"]
            else:
                current = self.session.scalar(select(Member.referrer_id).where(Member.id == current)
                                              .with_for_update(read=True))
            depth += 1
        return False

    def write_binds(self, results: dict, incoming: list[IncomingTouch]) -> None:
        """Compare-and-set every decided bind; a bind that lost a race reports what won instead."""
        if not self.pending:
            return
        if self.session.get_bind().dialect.name == "postgresql":
            lost = self._cas_postgresql()
        else:
            lost = set()
            for member_id, bind in self.pending.items():
                expected = self.rows[member_id]["read_referrer_id"]
                changed = self.session.execute(
                    update(Member).where(Member.id == member_id,
                                         Member.referrer_id.is_(None) if expected is None
                                         else Member.referrer_id == expected)
                    .values(referrer_id=bind["referrer_id"], bound_at=bind["at"])
                    .execution_options(synchronize_session=False)).rowcount
                if changed != 1:
                    lost.add(member_id)
        for obj in list(self.session.identity_map.values()):
            if isinstance(obj, Member) and obj.id in self.pending:
                self.session.expire(obj)
        if lost:
            for e in incoming:
                if e.member_id in lost and results[id(e)].bound:
                    current = self.session.scalar(select(Member.referrer_id).where(Member.id == e.member_id))
                    results[id(e)] = TouchResult("already_bound", current, results[id(e)].code_id)
                    self.pending[e.member_id]["binding"]["_ok"] = False


    def _cas_postgresql(self) -> set[int]:
        """All binds of the batch as one UPDATE ... FROM a JSON recordset: each row changes only if its referrer
        is still the one we read (IS NOT DISTINCT FROM handles "was unbound")."""
        rows = [{"m": mid, "r": b["referrer_id"], "o": self.rows[mid]["read_referrer_id"], "a": b["at"].isoformat()}
                for mid, b in self.pending.items()]
        changed = set(self.session.execute(text(
            "UPDATE members m SET referrer_id = v.r, bound_at = v.a "
            "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(m bigint, r bigint, o bigint, a timestamptz) "
            "WHERE m.id = v.m AND m.referrer_id IS NOT DISTINCT FROM v.o RETURNING m.id"),
            {"rows": json_param(rows)}).scalars())
        return {r["m"] for r in rows if r["m"] not in changed}


def _apply(session: Session, rules: BindingRules, state: _MemberState, code: _CodeInfo | None, e: IncomingTouch,
           bindings: list[dict]) -> TouchResult:
    if code is None:
        return TouchResult("unknown_code")
    if not code.can_bind:
        return TouchResult("code_inactive", code_id=code.id)
    if code.referrer_id is None:  # store-only campaign code: counted, binds to no person
        return TouchResult("counted", code_id=code.id)
    if code.referrer_id == e.member_id:
        return TouchResult("self", code.referrer_id, code.id)
    row = state.rows[e.member_id]
    is_new = rules.who != "new_only" or _is_new(session, rules, e.member_id, row["created_at"], e.at)
    if rules.when == "first_purchase":
        if row["referrer_id"] is None and not is_new:
            return TouchResult("not_new", None, code.id)
        return _remember_for_purchase(session, rules, code, e, row["referrer_id"])
    action = decide(rules, current_referrer_id=row["referrer_id"], bound_at=row["bound_at"],
                    candidate_referrer_id=code.referrer_id, member_is_new=is_new, now=e.at)
    if action not in ("bind", "rebind"):
        return TouchResult(action, row["referrer_id"], code.id)
    if e.member_id not in state.created and state.upline_contains(code.referrer_id, e.member_id):
        return TouchResult("cycle", code.referrer_id, code.id)
    binding = {"member_id": e.member_id, "referrer_id": code.referrer_id, "previous_referrer_id": row["referrer_id"],
               "code_id": code.id, "store_id": code.store_id, "channel": e.channel,
               "kind": "bind" if action == "bind" else "rebind", "created_at": e.at}
    previous = state.pending.get(e.member_id)
    if previous is not None:  # a later touch in the same batch supersedes the earlier decision
        previous["binding"]["_ok"] = False
    bindings.append(binding)
    state.pending[e.member_id] = {"referrer_id": code.referrer_id, "at": e.at, "binding": binding}
    row["referrer_id"], row["bound_at"] = code.referrer_id, e.at
    return TouchResult("bound" if action == "bind" else "rebound", code.referrer_id, code.id)


def _is_new(session: Session, rules: BindingRules, member_id: int, created_at: datetime, now: datetime) -> bool:
    earlier = session.scalar(select(exists().where(Touch.member_id == member_id, Touch.code_id.is_not(None))))
    return not earlier and now - created_at <= timedelta(hours=rules.new_member_hours)


def _remember_for_purchase(session: Session, rules: BindingRules, code: _CodeInfo, e: IncomingTouch,
                           current: int | None) -> TouchResult:
    if current is not None and rules.duration == "permanent":
        return TouchResult("already_bound", current, code.id)
    # Two first touches racing: the insert that loses the race is a no-op, then both read the winner's row.
    session.execute(_insert(session, PendingReferral).on_conflict_do_nothing(index_elements=["member_id"]),
                    [{"member_id": e.member_id, "code_id": code.id, "channel": e.channel, "touched_at": e.at}])
    pending = session.get(PendingReferral, e.member_id, with_for_update=True, populate_existing=True)
    if pending.code_id != code.id and rules.duration == "last_touch":
        pending.code_id, pending.channel, pending.touched_at = code.id, e.channel, e.at
    session.flush()
    return TouchResult("pending", code.referrer_id, code.id)


def confirm_pending_referral(session: Session, member_id: int, now: datetime | None = None) -> TouchResult | None:
    """Called when the member's first order is paid: a remembered touch binds now."""
    now = now or utcnow()
    pending = session.get(PendingReferral, member_id, with_for_update=True)
    if pending is None:
        return None
    scene = session.scalar(select(ReferralCode.scene).where(ReferralCode.id == pending.code_id))
    channel = pending.channel
    session.delete(pending)
    session.flush()
    rules = get_rules(session)
    code = _load_codes(session, {scene}).get(scene)
    if code is None or not code.can_bind or code.referrer_id in (None, member_id):
        return TouchResult("code_inactive", code_id=pending.code_id)
    # "New member only" was judged when the touch was remembered; the remembered touch itself is not history.
    immediate = BindingRules.from_dict({**rules.to_dict(), "when": "first_touch", "who": "any_unbound"})
    state = _MemberState(session, {member_id})
    bindings: list[dict] = []
    e = IncomingTouch(channel=channel, scene=scene, at=now, member_id=member_id)
    result = _apply(session, immediate, state, code, e, bindings)
    state.write_binds({id(e): result}, [e])
    ok = [b for b in bindings if b.pop("_ok", True)]
    if ok:
        session.execute(_insert(session, Binding), ok)
        _record_bound(session, ok)
        session.flush()
    return result if ok or not result.bound else TouchResult("already_bound", None, code.id)


def _record_bound(session: Session, bindings: list[dict]) -> None:
    record_many(session, [("member.bound", {"member_id": b["member_id"], "referrer_id": b["referrer_id"],
                                            "previous_referrer_id": b.get("previous_referrer_id"),
                                            "code_id": b.get("code_id"), "store_id": b.get("store_id"),
                                            "channel": b["channel"]}) for b in bindings])


def with_deadlock_retry(session: Session, fn, attempts: int = 3):
    """Run fn() in a savepoint, retrying when PostgreSQL breaks a deadlock (two people binding under each
    other at the same instant); the retry then sees the other's bind and reports a cycle."""
    for attempt in range(attempts):
        try:
            with session.begin_nested():
                return fn()
        except OperationalError as exc:
            if "deadlock" not in str(exc).lower() or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")
