"""RQ queues of this process's runtime. Work reaches them through the outbox (app/outbox) or the scheduler."""
from __future__ import annotations

from rq import Queue

from app.outbox.jobs import QUEUES
from app.runtime import get_runtime

__all__ = ["QUEUES", "get_queue"]


def get_queue(name: str = "default") -> Queue:
    return get_runtime().handoff.queue(name)
