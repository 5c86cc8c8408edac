"""The events' periodic job: retention (app/events/retention.py, app/outbox/retention.py). `rt` is the process's
runtime (app.runtime, a layer above this one)."""
from __future__ import annotations

from datetime import datetime

from app.db import utcnow
from app.events.retention import held_events, prune_events
from app.outbox import job
from app.outbox.retention import prune_done

JOB = "events.prune"


@job(JOB)
def prune(rt, now_iso: str | None = None) -> str:
    """Each chunk in its own transaction, so a first run over a long history holds no long locks. Safe twice at
    once: the two delete the same rows, and a row already gone is no error."""
    now = datetime.fromisoformat(now_iso) if now_iso else utcnow()
    cfg = rt.settings.retention
    events = rows = 0
    with rt.session() as s:
        held = held_events(s)
    after: int | None = 0
    while after is not None:
        with rt.session() as s:
            n, after = prune_events(s, keep_days=cfg.events_days, now=now, after=after, held=held)
        events += n
    after = 0
    while after is not None:
        with rt.session() as s:
            n, after = prune_done(s, keep_days=cfg.outbox_days, now=now, after=after)
        rows += n
    return f"{events} events, {rows} outbox rows pruned"
