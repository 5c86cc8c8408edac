"""Periodic jobs, outside RQ: `python -m workers.scheduler` (one or more processes; they agree through Redis).

Each periodic job has a name and an interval; time is cut into slots of that interval and a slot runs once
across every scheduler process (claimed with SET NX on `scheduler:<name>:<slot>`), with the deterministic RQ
job id `periodic-<name>-<slot>`. `inline` jobs run in the scheduler itself — the outbox sweeper must, because it
is what rescues work RQ lost — the others are enqueued for the workers.

Other domains add theirs with `register_periodic(...)` in a module listed in PERIODIC_MODULES, or append to
DEFAULTS here (e.g. commission maturation below)."""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass

from app.runtime import get_runtime

log = logging.getLogger("workers.scheduler")


@dataclass(frozen=True)
class Periodic:
    name: str
    func: str  # import path of a function without arguments
    every: float  # seconds
    queue: str = "default"
    inline: bool = False


DEFAULTS = [
    Periodic("outbox-sweep", "workers.outbox.sweep", float(os.environ.get("OUTBOX_SWEEP_SECONDS", "2")), inline=True),
    Periodic("payouts-reconcile", "workers.jobs_payouts.reconcile_payouts",
             float(os.environ.get("PAYOUT_RECONCILE_SECONDS", "300")), queue="payouts"),
    Periodic("commissions-mature", "workers.jobs_ledger.mature_due_commissions", 600.0),
    Periodic("grades-evaluate", "workers.jobs_ledger.evaluate_all_grades", 86400.0),
    Periodic("referrals-renew-qr", "workers.jobs_referrals.renew_temporary_qr_codes", 3600.0),
]
_registry: dict[str, Periodic] = {p.name: p for p in DEFAULTS}


def register_periodic(name: str, func: str, every: float, queue: str = "default", inline: bool = False) -> None:
    _registry[name] = Periodic(name, func, float(every), queue, inline)


def periodic_jobs() -> list[Periodic]:
    for module in filter(None, os.environ.get("PERIODIC_MODULES", "").split(",")):
        importlib.import_module(module.strip())
    return list(_registry.values())


def _call(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)()


def tick(now: float | None = None, jobs: list[Periodic] | None = None) -> list[str]:
    """Run or enqueue every job whose current slot nobody has claimed yet. Returns the names started."""
    rt = get_runtime()
    now = time.time() if now is None else now
    started = []
    for job in jobs or periodic_jobs():
        slot = int(now // job.every)
        if not rt.redis.set(f"scheduler:{job.name}:{slot}", os.getpid(), nx=True, ex=max(int(job.every * 2), 5)):
            continue
        started.append(job.name)
        try:
            if job.inline or rt.inline_jobs:
                _call(job.func)
            else:
                from workers.queues import get_queue

                get_queue(job.queue).enqueue(job.func, job_id=f"periodic-{job.name}-{slot}", result_ttl=600)
        except Exception:
            log.exception("periodic job %s failed", job.name)
    return started


def run(stop: threading.Event | None = None, interval: float = 0.5) -> None:
    stop = stop or threading.Event()
    log.info("scheduler running: %s", ", ".join(f"{p.name}/{p.every:g}s" for p in periodic_jobs()))
    while not stop.is_set():
        tick()
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
