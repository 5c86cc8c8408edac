"""Periodic: freeze the contests whose deadline has passed."""
from __future__ import annotations

from app.boards import contests
from app.outbox import job
from app.runtime import Runtime


@job("boards.freeze_contests")
def freeze_contests(rt: Runtime) -> int:
    """Freeze every due contest, each in its own transaction; returns how many this run froze."""
    with rt.session() as s:
        due = contests.due_contests(s)
    frozen = 0
    for contest_id in due:
        with rt.session() as s:
            frozen += contests.freeze(s, contest_id)
    return frozen
