"""Periodic jobs, outside RQ: `python -m workers.scheduler` (one or more processes; they agree through Redis).

Each periodic job has a name and an interval; time is cut into slots of that interval and a slot runs once
across every scheduler process (claimed with SET NX on `scheduler:<name>:<slot>`), with the deterministic RQ
job id `periodic-<name>-<slot>`. Periodic jobs are named jobs (`app.outbox.job`) run by RQ workers; the outbox
sweeper runs in the scheduler itself, because it is what rescues work RQ lost."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable

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
        Periodic("commissions-mature", 600.0, job="commissions.mature_due"),
        Periodic("grades-evaluate", 86400.0, job="grades.evaluate_all"),
        Periodic("referrals-renew-qr", 3600.0, job="referrals.renew_temporary_qr_codes"),
    ]


def tick(rt: Runtime | None = None, now: float | None = None, jobs: list[Periodic] | None = None) -> list[str]:
    """Run or enqueue every job whose current slot nobody has claimed yet. Returns the names started."""
    rt = rt or get_runtime()
    load_plugins()
    now = time.time() if now is None else now
    started = []
    for p in jobs or periodic_jobs(rt):
        slot = int(now // p.every)
        if not rt.redis.set(f"scheduler:{p.name}:{slot}", os.getpid(), nx=True, ex=max(int(p.every * 2), 5)):
            continue
        started.append(p.name)
        try:
            if p.inline is not None:
                p.inline(rt)
            elif rt.inline_jobs:  # embedded mode: no RQ worker, run it here
                resolve_job(p.job).fn(rt)
            else:
                rt.handoff.queue(resolve_job(p.job).queue).enqueue(
                    "workers.outbox.run_job", p.job, job_id=f"periodic-{p.name}-{slot}", result_ttl=600)
        except Exception:
            log.exception("periodic job %s failed", p.name)
    return started


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
