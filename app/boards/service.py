"""Reading boards (with names, avatars and each board's privacy), board privacy, opting out, and rebuilding
every board in Redis from the credits in the database."""
from __future__ import annotations

import hashlib
import hmac
import math
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from redis import Redis
from sqlalchemy import BigInteger, Date, cast, delete, func, select
from sqlalchemy.orm import Session

from app.boards.credits import KINDS, METRICS
from app.boards.models import BoardConfig, BoardCredit, BoardOptOut
from app.boards.badges import badges_of
from app.boards.periods import PERIODS, SHANGHAI, expires_at, local, period_id, shanghai_today
from app.boards.store import (PREFIX, REBUILDING, board_key, clear_cache, day_targets, mark_applied, read,
                              write_board)
from app.config import BoardSettings
from app.db import utcnow
from app.errors import NotFound, ValidationFailed
from app.members.models import Member
from app.referrals.models import Store
from app.teams.models import Team

TOP_MAX = 100


def board_name(kind: str, metric: str) -> str:
    if kind not in KINDS:
        raise ValidationFailed("Unknown board.", code="board_invalid", details={"kinds": list(KINDS)})
    if metric not in METRICS:
        raise ValidationFailed("Unknown metric.", code="board_invalid", details={"metrics": list(METRICS)})
    return f"{kind}:{metric}"


def config(session: Session, kind: str, metric: str) -> dict:
    """What members are offered of the board (enabled, periods, leagues) and its privacy; defaults without a row."""
    row = session.get(BoardConfig, board_name(kind, metric))
    return {"board": board_name(kind, metric), "enabled": row.enabled if row else True,
            "periods": [p for p in PERIODS if p in row.periods] if row else list(PERIODS),
            "leagues": row.leagues if row else True, "hide_amounts": bool(row and row.hide_amounts),
            "anonymise": bool(row and row.anonymise)}


def configs(session: Session) -> list[dict]:
    return [config(session, kind, metric) for kind in KINDS for metric in METRICS]


def set_config(session: Session, kind: str, metric: str, *, enabled: bool | None = None,
               periods: list[str] | None = None, leagues: bool | None = None, hide_amounts: bool | None = None,
               anonymise: bool | None = None, operator_id: int | None = None) -> tuple[dict, dict]:
    """Change what members are offered of a board and its privacy; returns the config and what changed
    ({field: [before, after]}). Operators keep seeing every board and period; credits keep counting on all of
    them, so a period switched on again shows its full history."""
    name = board_name(kind, metric)
    if periods is not None:
        if not periods or any(p not in PERIODS for p in periods) or len(set(periods)) != len(periods):
            raise ValidationFailed("periods is a non-empty list of day, week, month and all, each once.",
                                   code="board_invalid", details={"periods": list(PERIODS)})
        periods = [p for p in PERIODS if p in periods]
    row = session.get(BoardConfig, name, with_for_update=True)
    if row is None:
        row = BoardConfig(board=name, enabled=True, periods=list(PERIODS), leagues=True, hide_amounts=False,
                          anonymise=False)
        session.add(row)
    changes = {}
    for field, value in (("enabled", enabled), ("periods", periods), ("leagues", leagues),
                         ("hide_amounts", hide_amounts), ("anonymise", anonymise)):
        if value is not None and getattr(row, field) != value:
            changes[field] = [getattr(row, field), value]
            setattr(row, field, value)
    row.updated_at, row.updated_by = utcnow(), operator_id
    session.flush()
    clear_cache()
    return config(session, kind, metric), changes


def retention(cfg: BoardSettings, now: datetime | None = None) -> dict:
    """When the boards of closed periods leave Redis (the database keeps their credits: `flask boards rebuild`
    brings back what is still within these windows), with the current periods' expiry as an example."""
    today = shanghai_today(now or utcnow())
    keep = {"day": (cfg.keep_days, "days"), "week": (cfg.keep_weeks, "weeks"), "month": (cfg.keep_months, "months")}
    out = {}
    for period in PERIODS:
        at = expires_at(period, today, cfg.keep_days, cfg.keep_weeks, cfg.keep_months)
        out[period] = {"kept_after_end": None if period == "all" else {"count": keep[period][0],
                                                                      "unit": keep[period][1]},
                       "current": period_id(period, today),
                       "current_expires_at": datetime.fromtimestamp(at, timezone.utc).isoformat() if at else None}
    return out


def set_opt_out(session: Session, member_id: int, opt_out: bool) -> bool:
    if opt_out:
        if session.get(BoardOptOut, member_id) is None:
            session.add(BoardOptOut(member_id=member_id, at=utcnow()))
    else:
        session.execute(delete(BoardOptOut).where(BoardOptOut.member_id == member_id))
    session.flush()
    clear_cache()
    return opt_out


def opted_out(session: Session, member_id: int) -> bool:
    return session.get(BoardOptOut, member_id) is not None


def pseudonym(secret: str, member_id: int) -> str:
    """The same member gets the same pseudonym on every board, and it does not reveal the id."""
    digest = hmac.new(secret.encode(), f"board-member:{member_id}".encode(), hashlib.sha256).hexdigest()
    return f"会员{int(digest[:8], 16) % 1000000:06d}"


def _names(session: Session, kind: str, ids: list[int]) -> dict[int, dict]:
    if not ids:
        return {}
    if kind == "member":
        rows = session.execute(select(Member.id, Member.nickname, Member.avatar_url, BoardOptOut.member_id)
                               .outerjoin(BoardOptOut, BoardOptOut.member_id == Member.id)
                               .where(Member.id.in_(ids))).all()
        return {r[0]: {"name": r[1], "avatar_url": r[2] or "", "opted_out": r[3] is not None} for r in rows}
    model = Team if kind == "team" else Store
    return {r[0]: {"name": r[1], "avatar_url": "", "opted_out": False}
            for r in session.execute(select(model.id, model.name).where(model.id.in_(ids))).all()}


def _ranked(top: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """(rank, id, score): equal scores share a rank (1, 2, 2, 4)."""
    out, rank = [], 0
    for i, (subject, score) in enumerate(top):
        if i == 0 or score != top[i - 1][1]:
            rank = i + 1
        out.append((rank, subject, score))
    return out


def resolve_period(period: str, day=None, now: datetime | None = None) -> str:
    if period not in PERIODS:
        raise ValidationFailed("Unknown period.", code="board_invalid", details={"periods": list(PERIODS)})
    return period_id(period, day or shanghai_today(now or utcnow()))


_OPEN = {"hide_amounts": False, "anonymise": False}


def _offered(settings: dict, period: str, league: str) -> None:
    """Members see a board only as the operator offers it (operators see every board)."""
    if not settings["enabled"] or period not in settings["periods"] or (league and not settings["leagues"]):
        raise NotFound("This board is not offered.", code="board_not_offered",
                       details={"periods": settings["periods"] if settings["enabled"] else [],
                                "leagues": settings["leagues"]})


def _seen_by(row: dict, settings: dict, kind: str, private: bool, secret: str, viewer: int | None,
             me: int | None) -> dict:
    """One top row as `viewer` sees it (amounts hidden except `me`'s, anonymised or opted-out members by
    pseudonym except the viewer)."""
    row = dict(row)
    opted = row.pop("opted_out", False)
    hidden = private and kind == "member" and (settings["anonymise"] or opted) and row["id"] != viewer
    if hidden:
        row.update(name=pseudonym(secret, row["id"]), avatar_url="", badges=[])
    if settings["hide_amounts"] and row["id"] != me:
        row["score"] = None
    if hidden:
        row["id"] = None  # an anonymised member is not identified by id either
    return row


def standings(session: Session, r: Redis, cfg: BoardSettings, *, kind: str, metric: str, period: str,
              day=None, league: str = "", limit: int = 50, me: int | None = None, viewer: int | None = None,
              private: bool = True, secret: str = "", follow: str | None = None) -> dict:
    """The board's top `limit` with names and avatars, plus `me`'s own standing (rank, score, top X%).

    `private` applies the board's privacy for a member `viewer`: amounts hidden and names anonymised if the
    board says so, and members who opted out shown by pseudonym without avatar; the viewer always sees
    themself. Operators read with private=False. `follow`: a key that may hold the member `me` now lives on as
    (a token signed before a merge, app.identity.merged); `me`, and the viewer if it is `me`, then follow it.

    The top with names, the board's privacy and the top as a bystander sees it are shared in the process for
    BOARDS_TOP_CACHE_SECONDS (cleared here when privacy or an opt-out changes); a read then costs one Redis
    round trip for the caller's standing, and only the caller's own rows are redone; `session` is used only
    then (a lazy session costs nothing on the other reads). The items' rows may be those shared ones: callers
    read them, never change them."""
    board_name(kind, metric)
    pid = resolve_period(period, day)
    limit = max(1, min(limit, TOP_MAX))
    key = board_key(kind, metric, pid, league)

    def decorate(top):
        names = _names(session, kind, [s for s, _ in top])
        earned = badges_of(session, [s for s, _ in top]) if kind == "member" else {}
        rows = [{"rank": rank, "id": subject, "score": score,
                 "badges": [b["code"] for b in earned.get(subject, ())],
                 **names.get(subject, {"name": None, "avatar_url": "", "opted_out": False})}
                for rank, subject, score in _ranked(top)]
        return {"rows": rows, "ids": {row["id"] for row in rows}, "settings": config(session, kind, metric),
                "views": {}}

    standing, shared = read(r, key, limit, me, cache_seconds=cfg.top_cache_seconds, decorate=decorate,
                            follow=follow)
    if me is not None and standing.subject != me:
        viewer = standing.subject if viewer == me else viewer
        me = standing.subject
    if private:
        _offered(shared["settings"], period, league)
    settings = shared["settings"] if private else _OPEN
    view = shared["views"].get((private, secret))
    if view is None:  # the top as a bystander sees it (no row is theirs), shared with the rows
        view = shared["views"][(private, secret)] = [_seen_by(row, settings, kind, private, secret, None, None)
                                                     for row in shared["rows"]]
    mine = {viewer, me} - {None}
    items = view
    if mine & shared["ids"]:
        items = [_seen_by(row, settings, kind, private, secret, viewer, me) if row["id"] in mine else seen
                 for row, seen in zip(shared["rows"], view, strict=True)]
    standing_out = None
    if me is not None:
        standing_out = {"id": me, "rank": standing.rank, "score": standing.score or 0, "top_percent": None}
        if standing.rank is not None and standing.rank > limit and standing.size:
            standing_out["top_percent"] = max(1, math.ceil(100 * standing.rank / standing.size))
    return {"board": f"{kind}:{metric}", "period": pid, "league": league or None, "size": standing.size,
            "hide_amounts": settings["hide_amounts"], "items": items, "me": standing_out}


def _day_sums(session: Session, chunk: int):
    """Batches of (subject kind, metric, league, Shanghai day, subject id, summed amount, credits) from
    board_credits: on PostgreSQL summed per day by the database; elsewhere one row per credit."""
    t = BoardCredit.__table__.c
    conn = session.connection().execution_options(yield_per=chunk)
    if conn.dialect.name == "postgresql":
        day = cast(func.timezone(SHANGHAI.key, t.at), Date)
        query = (select(t.subject_kind, t.metric, t.league, day, t.subject_id, cast(func.sum(t.amount), BigInteger),
                        func.count())
                 .group_by(t.subject_kind, t.metric, t.league, day, t.subject_id))
        for rows in conn.execute(query).partitions():
            yield rows
        return
    query = select(t.subject_kind, t.metric, t.league, t.at, t.subject_id, t.amount)
    for rows in conn.execute(query).partitions():
        yield [(kind, metric, league, local(at).date(), subject, amount, 1)
               for kind, metric, league, at, subject, amount in rows]


def rebuild(session: Session, r: Redis, cfg: BoardSettings, *, progress: Callable[[int], None] | None = None,
            now: datetime | None = None, chunk: int = 20000) -> dict:
    """Restore every board in Redis from board_credits. Live credits wait (retry) while it runs; each board is
    written to a scratch key and renamed over the live one, boards with no credits left are removed, and the
    dedupe keys of recent credits are set again so that a replay after the rebuild still counts once.

    The database sums the credits per subject and Shanghai day; each day's sums are added to the boards of its
    periods (the keys a credit of that day counts on, as app.boards.store.targets says)."""
    now = now or utcnow()
    r.set(REBUILDING, "1", ex=3600)
    try:
        boards: dict[str, dict[int, int]] = defaultdict(dict)
        expiry: dict[str, int] = {}
        stamp = int(now.timestamp())
        where: dict[tuple, list] = {}
        for rows in _day_sums(session, chunk):
            for kind, metric, league, day, subject, amount, _ in rows:
                keys = where.get((kind, metric, league, day))
                if keys is None:
                    keys = [(key, exp) for key, exp in day_targets(kind, metric, league, day, cfg)
                            if not exp or exp > stamp]  # a period past its keep time is not written
                    where[(kind, metric, league, day)] = keys
                    for key, exp in keys:
                        expiry[key] = exp
                for key, _ in keys:
                    board = boards[key]
                    board[subject] = board.get(subject, 0) + amount
            if progress:
                progress(sum(row[-1] for row in rows))
        live = {k.decode() if isinstance(k, bytes) else k for k in r.scan_iter(match=f"{PREFIX}:*:*:*", count=10000)}
        live = {k for k in live if not k.startswith((f"{PREFIX}:applied:",)) and k != REBUILDING}
        for key, scores in boards.items():
            write_board(r, key, scores, expiry[key])
            live.discard(key)
        for key in live:  # boards whose credits are gone
            r.delete(key)
        t = BoardCredit.__table__.c
        recent = session.connection().execution_options(yield_per=chunk).execute(
            select(t.id).where(t.created_at >= now - timedelta(days=cfg.dedupe_days)))
        recent_count = 0
        for rows in recent.partitions():
            mark_applied(r, [credit_id for credit_id, in rows], cfg.dedupe_days * 86400)
            recent_count += len(rows)
    finally:
        r.delete(REBUILDING)
        clear_cache()
    return {"boards": len(boards), "credits_recent": recent_count}


def credit_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(BoardCredit)) or 0


def board_members(r: Redis, key: str) -> dict[int, int]:
    """Every member of a board with their score (tests, checks)."""
    return {int(m): int(float(s)) for m, s in r.zrange(key, 0, -1, withscores=True)}


def named_rows(session: Session, kind: str, rows: list[dict], *, secret: str = "", viewer: int | None = None,
               private: bool = True) -> list[dict]:
    """Contest standings with names: members who opted out appear by pseudonym to others."""
    names = _names(session, kind, [r["subject_id"] for r in rows])
    out = []
    for r in rows:
        n = names.get(r["subject_id"], {"name": None, "avatar_url": "", "opted_out": False})
        hidden = private and kind == "member" and n["opted_out"] and r["subject_id"] != viewer
        out.append({"rank": r["rank"], "id": None if hidden else r["subject_id"], "score": r["score"],
                    "name": pseudonym(secret, r["subject_id"]) if hidden else n["name"],
                    "avatar_url": "" if hidden else n["avatar_url"]})
    return out
