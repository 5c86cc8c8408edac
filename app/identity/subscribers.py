"""A merge marks the merged-away member's id in Redis, so tokens signed before it read as the survivor
(app.identity.merged)."""
from __future__ import annotations

from app.events import Event, subscriber
from app.identity import merged
from app.runtime import Runtime

MARK_MERGED = "identity.mark_merged"


@subscriber("member.merged", name=MARK_MERGED)
def mark_merged(rt: Runtime, event: Event) -> str:
    with rt.session() as s:  # a SET per id: running twice, or after a later merge, writes the same marks
        marks = merged.mark(s, rt.redis, event.data["merged_id"])
    return f"marked {len(marks)}"
