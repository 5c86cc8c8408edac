"""Settlement benchmark on real PostgreSQL: ingest orders through the webhook's service, then mature commissions.

    python -m bench.bench_settlement            # 100,000 orders
    BENCH_ORDERS=20000 python -m bench.bench_settlement
    python -m bench.bench_settlement --orders 20000
    python -m bench.bench_settlement --snapshot liebian_bench_snap   # also keep a copy after ingestion
    python -m bench.bench_settlement --mature-only liebian_bench_snap   # maturation only, from that copy

Uses its own database (BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/liebian_bench), dropped
and recreated each run, and real Redis db 7 (BENCH_REDIS_URL, flushed) for the jobs each commit enqueues.
Orders go in through `ingest_order_events`, BENCH_BATCH (50) events per call and transaction, as the shop's batch
webhook sends them; BENCH_SINGLES (3,000) more go one event per transaction, the single-event webhook's shape.
Each figure is printed next to a baseline measured in the same run on the same machine, with the same number of
processes as the path it is compared with:
- ingestion baseline: one plain INSERT per order of the same order rows into a bare table, same commit batching
  (the floor of "one round trip per order"), from BENCH_WORKERS processes each taking the same share of the
  orders as the measured path's (events[w::BENCH_WORKERS]), each with its own engine, forked inside the timing
  as the measured path's are;
- single-event baseline: the same plain INSERT, one order per transaction, from one process (the single-event
  path runs in one process), over the same number of orders;
- maturation baseline: one plain UPDATE flipping the state of the same number of rows in a bare copy.
Targets (2 cores): >= 2,000 orders/s ingested, >= 50,000 commissions/s matured."""
from __future__ import annotations

import argparse
import os
import random
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from bench.db import recreate_database

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/liebian_bench"
COMMIT_EVERY = int(os.environ.get("BENCH_COMMIT_EVERY", "50"))  # the baseline's batching
BATCH = int(os.environ.get("BENCH_BATCH", "50"))  # events per ingest_order_events call (one webhook batch)
SINGLES = int(os.environ.get("BENCH_SINGLES", "3000"))  # extra orders sent one event per transaction
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))  # processes, like web workers (threads would share one GIL)
VACUUM_EVERY = 2000


def _snapshot(url: str, snapshot: str) -> None:
    """Copy the bench database (ingested and set up, not matured) to `snapshot` for --mature-only runs."""
    admin_url, name = url.rsplit("/", 1)
    recreate_database(f"{admin_url}/{snapshot}", template=name)
    print(f"snapshot of the set-up database saved as {snapshot}")


def _tree(engine, partners: int, buyers: int, rng: random.Random) -> list[str]:
    """Partners form a random tree (each under an earlier partner); buyers hang under random partners."""
    now = datetime.now(timezone.utc)
    with engine.begin() as c:
        c.execute(text("INSERT INTO members (nickname, avatar_url, status, created_at, updated_at) "
                       "SELECT 'p' || g, '', 'active', :now, :now FROM generate_series(1, :n) g"),
                  {"now": now, "n": partners + buyers})
        c.execute(text("INSERT INTO member_roles (member_id, role, granted_at) SELECT id, 'partner', :now "
                       "FROM members WHERE id <= :p"), {"now": now, "p": partners})
        referrers = [(i, rng.randint(1, i - 1)) for i in range(2, partners + 1)]
        referrers += [(i, rng.randint(1, partners)) for i in range(partners + 1, partners + buyers + 1)]
        c.exec_driver_sql("CREATE TEMP TABLE refs (id bigint, referrer_id bigint)")
        c.connection.driver_connection.cursor().executemany(
            "INSERT INTO refs VALUES (%s, %s)", referrers)
        c.execute(text("UPDATE members m SET referrer_id = r.referrer_id, bound_at = :now FROM refs r "
                       "WHERE m.id = r.id"), {"now": now})
        c.execute(text("INSERT INTO identities (member_id, kind, value, created_at) "
                       "SELECT id, 'unionid', 'u' || id, :now FROM members"), {"now": now})
        c.execute(text("ANALYZE"))
    return [f"u{i}" for i in range(partners + 1, partners + buyers + 1)]


def _events(n: int, unionids: list[str], rng: random.Random, paid_at: str, prefix: str = "SO") -> list[dict]:
    events = []
    for i in range(n):
        buyer = {"unionid": rng.choice(unionids)} if rng.random() > 0.02 else {"mini_openid": f"new-{i}"}
        lines = [{"product_id": f"P{rng.randint(1, 500)}", "category": rng.choice(("food", "wine", "home")),
                  "quantity": rng.randint(1, 3), "paid_fen": rng.randint(100, 50000)}
                 for _ in range(rng.choice((1, 1, 2, 3)))]
        events.append({"event": "paid", "order_id": f"{prefix}{i}", "occurred_at": paid_at, "buyer": buyer,
                       "lines": lines})
    return events


def _ingest_worker(url: str, redis_url: str, events: list[dict], vacuum_every: int | None) -> None:
    """One web worker's share: its own engine and runtime, one transaction per batch of BATCH events. A deadlock
    with the other worker (both touching one buyer or account) is retried, as the webhook handler does."""
    from sqlalchemy.exc import OperationalError

    from app.config import load_settings
    from app.db import make_engine, make_session_factory
    from app.orders.service import ingest_order_events
    from app.runtime import Runtime, make_redis, set_runtime

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    set_runtime(Runtime(load_settings().with_(database_url=url, redis_url=redis_url), engine, sessions,
                        make_redis(redis_url)))
    vacuum_engine = make_engine(url, isolation_level="AUTOCOMMIT") if vacuum_every else None
    with sessions() as s:
        for start in range(0, len(events), BATCH):
            for attempt in range(5):
                try:
                    results = ingest_order_events(s, events[start:start + BATCH])
                    s.commit()
                    break
                except OperationalError as err:
                    s.rollback()
                    if attempt == 4 or getattr(err.orig, "sqlstate", None) not in ("40P01", "40001"):
                        raise
            assert all(r["status"] == "applied" for r in results), results
            if vacuum_engine and (start + BATCH) // vacuum_every != start // vacuum_every:
                with vacuum_engine.connect() as vc:
                    vc.execute(text("VACUUM ledger_accounts"))
                    vc.execute(text("ANALYZE orders, order_lines, commissions, journal_entries, journal_lines"))
    engine.dispose()


def _plain_insert_worker(url: str, rows: list[tuple], commit_every: int) -> None:
    """The ingestion baseline's share for one process: its own engine, one plain INSERT per order into a bare
    table, a commit every `commit_every` orders."""
    from app.db import make_engine, make_session_factory

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions() as s:
        for i, (order_id, buyer, paid_fen) in enumerate(rows, 1):
            s.execute(text("INSERT INTO bench_plain_orders VALUES (:o, :b, :p, :t)"),
                      {"o": order_id, "b": buyer, "p": paid_fen, "t": datetime.now(timezone.utc)})
            if i % commit_every == 0:
                s.commit()
        s.commit()
    engine.dispose()


def _in_processes(fn, url: str, rows: list, *args) -> float:
    """Seconds for WORKERS forked processes to run fn(url, rows[w::WORKERS], *args) (one process: in this one),
    the fork included, as the measured ingestion path does it."""
    t = time.perf_counter()
    if WORKERS == 1:
        fn(url, rows, *args)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("fork")) as pool:
            for f in [pool.submit(fn, url, rows[w::WORKERS], *args) for w in range(WORKERS)]:
                f.result()
    return time.perf_counter() - t


def run(orders: int, snapshot: str | None = None, mature_only: str | None = None) -> dict:
    from app.commissions.plans import create_plan
    from app.db import import_all_models, make_engine, make_session_factory
    from app.migrate import upgrade_database
    from app.orders.service import ingest_order_event

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    if mature_only:  # maturation only, on a copy of a --snapshot database
        recreate_database(url, template=mature_only)
        import_all_models()
        engine = make_engine(url)
        with engine.connect() as c:
            n_commissions = c.execute(text("SELECT COUNT(*) FROM commissions")).scalar()
        return _mature_and_report(engine, make_session_factory(engine), orders, n_commissions, None, None)
    recreate_database(url)
    upgrade_database(url)
    import_all_models()
    prepare = os.environ.get("BENCH_PREPARE_THRESHOLD")
    engine = make_engine(url, **({"connect_args": {"prepare_threshold": None if prepare == "none" else int(prepare)}}
                                 if prepare else {}))
    sessions = make_session_factory(engine)
    # Jobs enqueued after each commit (grade evaluations) go to real Redis (BENCH_REDIS_URL, flushed) where no
    # worker drains them: the enqueue is paid for, the job is not run inside the measurement.
    from app.config import load_settings
    from app.runtime import Runtime, make_redis, set_runtime

    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
    settings = load_settings().with_(database_url=url, redis_url=redis_url)
    redis = make_redis(redis_url)
    redis.flushdb()
    set_runtime(Runtime(settings, engine, sessions, redis))
    rng = random.Random(6)
    partners, buyers = max(100, orders // 20), max(200, orders // 5)
    t = time.perf_counter()
    unionids = _tree(engine, partners, buyers, rng)
    print(f"tree: {partners} partners, {buyers} buyers in {time.perf_counter() - t:.1f}s")
    with sessions() as s:
        create_plan(s, rates=[{"level": 1, "bps": 1000}, {"level": 2, "bps": 300},
                              {"level": 1, "bps": 1500, "category": "wine"},
                              {"level": 1, "bps": 1200, "order_kind": "first"}],
                    hold_days=7, effective_from=datetime(2020, 1, 1, tzinfo=timezone.utc), allow_backdating=True)
        s.commit()
    paid_at = (datetime.now(timezone.utc) - timedelta(days=30)).isoformat()
    events = _events(orders, unionids, rng, paid_at)

    # -- baseline: one plain INSERT per order, same batching, same processes and split as the measured path ----
    with engine.begin() as c:
        c.execute(text("CREATE TABLE bench_plain_orders (shop_order_id text, buyer text, paid_fen bigint, "
                       "paid_at timestamptz)"))
    plain_rows = [(ev["order_id"], str(ev["buyer"]), sum(x["paid_fen"] for x in ev["lines"])) for ev in events]
    engine.dispose()  # the baseline's workers fork too: no connection may be shared with them
    base_ingest = orders / _in_processes(_plain_insert_worker, url, plain_rows, COMMIT_EVERY)

    # -- ingestion through the webhook's service function, by WORKERS processes (like web workers) -----------
    with engine.connect() as c:
        autovacuum = c.execute(text("SHOW autovacuum")).scalar() == "on"
    if not autovacuum:
        print("note: this server runs with autovacuum=off; every "
              f"{VACUUM_EVERY} orders the bench vacuums the hot ledger_accounts table and analyzes the growing "
              "tables, as autovacuum would (inside the measured time)")
    vacuum_engine = make_engine(url, isolation_level="AUTOCOMMIT")
    engine.dispose()  # the workers fork: no connection may be shared with them
    t = time.perf_counter()
    if WORKERS == 1:
        _ingest_worker(url, redis_url, events, None if autovacuum else VACUUM_EVERY)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("fork")) as pool:
            # worker 0 vacuums for everyone, at the same overall cadence
            futures = [pool.submit(_ingest_worker, url, redis_url, events[w::WORKERS],
                                   None if autovacuum or w else VACUUM_EVERY // WORKERS) for w in range(WORKERS)]
            for f in futures:
                f.result()
    ingest = orders / (time.perf_counter() - t)

    # -- for comparison: the one-event webhook shape, one event per transaction, one process -------------------
    singles = _events(SINGLES, unionids, rng, paid_at, prefix="SINGLE")
    base_single = None
    if SINGLES:  # its baseline: the same plain INSERT, one order per transaction, one process, as many orders
        t = time.perf_counter()
        _plain_insert_worker(url, [(ev["order_id"], str(ev["buyer"]), sum(x["paid_fen"] for x in ev["lines"]))
                                   for ev in singles], 1)
        base_single = SINGLES / (time.perf_counter() - t)
    t = time.perf_counter()
    with sessions() as s:
        for ev in singles:
            ingest_order_event(s, ev)
            s.commit()
    single = SINGLES / (time.perf_counter() - t) if SINGLES else None
    orders += SINGLES

    # -- setup (not measured): every order completed long enough ago for its hold period to be over -------------
    with engine.begin() as c:
        c.execute(text("UPDATE orders SET status = 'completed', completed_at = paid_at + interval '1 day'"))
        c.execute(text("UPDATE commissions SET mature_at = now() - interval '1 day'"))
        n_commissions = c.execute(text("SELECT COUNT(*) FROM commissions")).scalar()
        c.execute(text("CREATE TABLE bench_plain_commissions AS SELECT id, state FROM commissions"))
        c.execute(text("ANALYZE"))
    if snapshot:
        vacuum_engine.dispose()
        engine.dispose()
        _snapshot(url, snapshot)
    return _mature_and_report(engine, sessions, orders, n_commissions, ingest, base_ingest, single, base_single)


def _mature_and_report(engine, sessions, orders, n_commissions, ingest, base_ingest, single=None,
                       base_single=None) -> dict:
    from app.commissions.service import mature_all_due
    from app.ledger.service import check_ledger

    # -- baseline: one plain UPDATE of the same number of rows ------------------------------------------------
    t = time.perf_counter()
    with engine.begin() as c:
        c.execute(text("UPDATE bench_plain_commissions SET state = 'available'"))
    base_mature = n_commissions / (time.perf_counter() - t)

    # -- maturation ------------------------------------------------------------------------------------------
    t = time.perf_counter()
    matured = mature_all_due(sessions)  # MATURE_BATCH commissions per batch
    mature = matured / (time.perf_counter() - t)

    with sessions() as s:
        report = check_ledger(s)
    engine.dispose()
    result = {"orders": orders, "commissions": n_commissions, "matured": matured, "processes": WORKERS,
              "ingest_per_s": ingest, "ingest_baseline_per_s": base_ingest, "single_per_s": single,
              "single_baseline_per_s": base_single,
              "mature_per_s": mature, "mature_baseline_per_s": base_mature, "ledger_ok": report.ok}
    if ingest is not None:
        print(f"ingestion:  {ingest:9,.0f} orders/s through ingest_order_events ({BATCH} per call, {WORKERS} "
              f"processes) | baseline plain INSERT, commit every {COMMIT_EVERY}, {WORKERS} processes "
              f"{base_ingest:9,.0f}/s | ratio {ingest / base_ingest:.2f} | target >= 2,000/s")
    if single:
        print(f"            {single:9,.0f} orders/s through ingest_order_event, one per transaction, 1 process "
              f"({SINGLES} orders) | baseline plain INSERT, one per transaction, 1 process {base_single:9,.0f}/s "
              f"| ratio {single / base_single:.2f}")
    print(f"maturation: {mature:9,.0f} commissions/s ({matured} matured, 1 process) | baseline plain UPDATE, "
          f"1 process {base_mature:9,.0f}/s | ratio {mature / base_mature:.2f} | target >= 50,000/s")
    print(f"ledger check after the run: {'OK' if report.ok else 'FAILED'} ({report.entries} entries, "
          f"{report.accounts} accounts)")
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=int(os.environ.get("BENCH_ORDERS", "100000")))
    parser.add_argument("--snapshot", metavar="DB", help="after ingestion and setup, save a copy of the bench "
                        "database as DB (for --mature-only)")
    parser.add_argument("--mature-only", metavar="DB", help="skip ingestion: recreate the bench database from "
                        "the --snapshot copy DB and measure maturation only")
    args = parser.parse_args(argv)
    run(args.orders, snapshot=args.snapshot, mature_only=args.mature_only)


if __name__ == "__main__":
    main()
