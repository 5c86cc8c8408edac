"""Named jobs. A package registers the work it owns (`@job("withdrawals.drive_payout", queue="payouts")`);
outbox rows and periodic schedules name jobs by that name, never by import path, so nothing below `workers/`
refers to a module above it.

A job is `fn(rt, *args)`: it receives the process's Runtime (sessions, Redis, settings) from the runner and
takes ids only. Registration happens when `app/<package>/jobs.py` and `subscribers.py` are imported, which
`app.modules.load_plugins()` does for every package."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from app.modules import load_plugins

QUEUES = ("payouts", "default", "posters", "notifications")


@dataclass(frozen=True)
class Job:
    name: str
    fn: Callable
    queue: str


_jobs: dict[str, Job] = {}


def job(name: str, queue: str = "default"):
    """Register `fn(rt, *args)` under `name`. Registering another function under a taken name is an error."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")

    def register(fn: Callable) -> Callable:
        known = _jobs.get(name)
        if known is not None and known.fn is not fn and known.fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"job {name!r} is registered twice")
        _jobs[name] = Job(name, fn, queue)
        return fn

    return register


def resolve_job(name: str) -> Job:
    """The job registered under `name` (loading every package's jobs on first use)."""
    found = _jobs.get(name)
    if found is None:
        load_plugins()
        found = _jobs.get(name)
    if found is None:
        raise LookupError(f"no job named {name!r}")
    return found


def registered_jobs() -> dict[str, Job]:
    return dict(_jobs)
