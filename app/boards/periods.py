"""Calendar periods in Asia/Shanghai: a moment belongs to one day, one ISO week, one month, and all time.
23:59:59 and 00:00:00 Shanghai time are in different days (and weeks, and months, when those change too)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
PERIODS = ("day", "week", "month", "all")


def local(at: datetime) -> datetime:
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(SHANGHAI)


def period_id(kind: str, day: date) -> str:
    """The id of the period of `kind` containing the Shanghai calendar day `day`."""
    if kind == "day":
        return f"d{day.isoformat()}"
    if kind == "week":
        year, week, _ = day.isocalendar()
        return f"w{year}-W{week:02d}"
    if kind == "month":
        return f"m{day.year}-{day.month:02d}"
    if kind == "all":
        return "all"
    raise ValueError(kind)


def periods_of(at: datetime) -> dict[str, str]:
    """{period kind: period id} of every period the moment `at` counts in."""
    day = local(at).date()
    return {kind: period_id(kind, day) for kind in PERIODS}


def period_end(kind: str, day: date) -> datetime | None:
    """The UTC moment the period containing `day` ends (None for all time)."""
    if kind == "day":
        end = day + timedelta(days=1)
    elif kind == "week":
        end = day + timedelta(days=7 - day.weekday())
    elif kind == "month":
        end = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    else:
        return None
    return datetime(end.year, end.month, end.day, tzinfo=SHANGHAI).astimezone(timezone.utc)


def expires_at(kind: str, day: date, keep_days: int, keep_weeks: int, keep_months: int) -> int | None:
    """When a period's board may go (Unix seconds): its end plus what is kept of closed periods."""
    end = period_end(kind, day)
    if end is None:
        return None
    keep = {"day": timedelta(days=keep_days), "week": timedelta(weeks=keep_weeks),
            "month": timedelta(days=31 * keep_months)}[kind]
    return int((end + keep).timestamp())


def shanghai_today(now: datetime) -> date:
    return local(now).date()
