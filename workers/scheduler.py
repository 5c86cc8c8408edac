"""Periodic jobs, outside RQ: `python -m workers.scheduler` (one or more processes; they agree through Redis).

Each periodic job has a name and an interval; time is cut into slots of that interval and a slot runs once
across every scheduler process (claimed with SET NX on `scheduler:<name>:<slot>`), with the deterministic RQ
job id `periodic-<name>-<slot>`. Periodic jobs are named jobs (`app.outbox.job`) run by RQ workers; the outbox
sweeper runs in the scheduler itself, because it is what rescues work RQ lost.

Every tick records a heartbeat, and every periodic job run here its outcome, in Redis (`app.health`): /healthz
is degraded when the scheduler stops ticking or a periodic job keeps failing.

The embedded default (no REDIS_URL: one process, in-process Redis, inline jobs) has no scheduler process: the
served process runs the same ticks in a daemon thread (`InProcessScheduler`, started by wsgi.py through
`start_for_served_app`; EMBEDDED_SCHEDULER=0 turns it off)."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable

import click

from app.boards import service as boards
from app.health import record_periodic, record_tick
from app.modules import load_plugins
from app.outbox import resolve_job
from app.runtime import Runtime, get_runtime
from workers.outbox import sweep

log = logging.getLogger("workers.scheduler")


@dataclass(frozen=True)
class Periodic:
    name: str
    every: float  # seconds
    job: str | None = None  # a named job, run by an RQ worker on its queue
    inline: Callable[[Runtime], object] | None = None  # or a function run here, in the scheduler


def periodic_jobs(rt: Runtime) -> list[Periodic]:
    return [
        Periodic("outbox-sweep", rt.settings.outbox.sweep_every, inline=lambda r: sweep(r)),
        Periodic("payouts-reconcile", rt.settings.payout.reconcile_every, job="withdrawals.reconcile"),
        Periodic("commissions-mature", rt.settings.scheduler.mature_every, job="commissions.mature_due"),
        Periodic("grades-evaluate", 86400.0, job="grades.evaluate_all"),
        Periodic("referrals-renew-qr", 3600.0, job="referrals.renew_temporary_qr_codes"),
        Periodic("boards-freeze-contests", rt.settings.boards.freeze_every, job="boards.freeze_contests"),
        Periodic("events-prune", rt.settings.retention.every, job="events.prune"),
    ]


def tick(rt: Runtime | None = None, now: float | None = None, jobs: list[Periodic] | None = None) -> list[str]:
    """Run or enqueue every job whose current slot nobody has claimed yet. Returns the names started."""
    rt = rt or get_runtime()
    load_plugins()
    record_tick(rt.redis)  # liveness is wall-clock time, whatever slot `now` asks for
    now = time.time() if now is None else now
    started = []
    for p in jobs or periodic_jobs(rt):
        slot = int(now // p.every)
        if not rt.redis.set(f"scheduler:{p.name}:{slot}", os.getpid(), nx=True, ex=max(int(p.every * 2), 5)):
            continue
        started.append(p.name)
        runs_here = p.inline is not None or rt.inline_jobs
        try:
            if p.inline is not None:
                p.inline(rt)
            elif rt.inline_jobs:  # embedded mode: no RQ worker, run it here
                resolve_job(p.job).fn(rt)
            else:
                rt.handoff.queue(resolve_job(p.job).queue).enqueue(
                    "workers.outbox.run_job", p.job, job_id=f"periodic-{p.name}-{slot}", result_ttl=600)
        except Exception as exc:
            log.exception("periodic job %s failed", p.name)
            _record(rt, p.job or p.name, exc)
        else:
            if runs_here:  # an enqueued job's outcome is recorded by its RQ shell, workers.outbox.run_job
                _record(rt, p.job or p.name, None)
    return started


def _record(rt: Runtime, name: str, error: BaseException | None) -> None:
    try:
        record_periodic(rt.redis, name, error)
    except Exception:  # the health record must never stop the schedule
        log.exception("could not record the outcome of %s", name)


class InProcessScheduler:
    """The scheduler as a daemon thread of the served process: the embedded default (no REDIS_URL) has no
    scheduler process, and its in-process Redis is visible to this process only. Ticks every `interval` seconds
    until `stop()`; a tick that fails (the database busy, say) is logged and the next one runs as usual."""

    def __init__(self, rt: Runtime, interval: float = 0.5):
        self.rt, self.interval = rt, interval
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="liebian-scheduler", daemon=True)

    def start(self) -> "InProcessScheduler":
        log.info("in-process scheduler running: %s",
                 ", ".join(f"{p.name}/{p.every:g}s" for p in periodic_jobs(self.rt)))
        self.thread.start()
        return self

    def _loop(self) -> None:
        restore = not self.rt.settings.redis_url
        while not self._stop.is_set():
            try:
                tick(self.rt)
            except Exception:
                log.exception("scheduler tick failed")
            if restore:
                restore = False
                self._restore_boards()
            self._stop.wait(self.interval)

    def _restore_boards(self) -> None:
        """The in-process Redis starts empty in every process (the demo seed's boards went with the seed's
        process): the leaderboards are rebuilt from the database once, as `flask boards rebuild` would."""
        try:
            with self.rt.session() as s:
                boards.rebuild(s, self.rt.redis, self.rt.settings.boards)
        except Exception:
            log.exception("could not rebuild the leaderboards in the in-process Redis")

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout)


def start_for_served_app(app, interval: float = 0.5) -> InProcessScheduler | None:
    """wsgi.py's call: in the embedded default (no REDIS_URL) with EMBEDDED_SCHEDULER on, start the in-process
    scheduler for the process that serves `app`. Not for a testing app, nor when a Flask CLI command other
    than `flask run` loaded wsgi.py (`flask db upgrade`, `flask seed-demo`, ... do their work and exit)."""
    rt: Runtime = app.extensions["liebian"]
    if not rt.inline_jobs or not rt.settings.scheduler.in_process or app.testing:
        return None
    command = click.get_current_context(silent=True)
    if command is not None and command.command.name != "run":
        return None
    scheduler = InProcessScheduler(rt, interval).start()
    app.extensions["liebian_scheduler"] = scheduler
    return scheduler


def run(stop: threading.Event | None = None, interval: float = 0.5) -> None:
    rt = get_runtime()
    stop = stop or threading.Event()
    log.info("scheduler running: %s", ", ".join(f"{p.name}/{p.every:g}s" for p in periodic_jobs(rt)))
    while not stop.is_set():
        tick(rt)
        stop.wait(interval)


def main() -> None:
    ap = argparse.ArgumentParser(description="Liebian periodic jobs (outbox sweeper, reconciliation, ...)")
    ap.add_argument("--once", action="store_true", help="run one tick and exit")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between ticks")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.once:
        print(tick())
        return
    run(stop, args.interval)


if __name__ == "__main__":
    main()
