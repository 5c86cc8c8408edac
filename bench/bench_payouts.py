"""Payouts/s to SUCCESS through real RQ workers against the WeChat Pay emulator: with the Redis limiter at WeChat's
100 requests/s, and without it (the capacity), next to a baseline measured in the same run with as many processes.

`python -m bench.bench_payouts [--workers 2] [--withdrawals 1000] [--worker-class rq.worker.SimpleWorker]`

A payout counts once its withdrawal is SUCCESS in our database, WeChat's final state: the bill is created by a
worker (WAIT_USER_CONFIRM), the member confirms it (the bench plays every member: it confirms a bill in the
emulator as soon as our database shows it WAIT_USER_CONFIRM with its package_info, i.e. once the mini-program could
show it), WeChat notifies, and our notification endpoint (the app under gunicorn, 1 worker, gthread) books it.

Timed, per phase: from the commit that approves every withdrawal of the phase (one transaction: outbox rows written,
handed to RQ after the commit; the approvals before it are not timed, every worker has run one warm-up job first)
until every one of them is SUCCESS. Two phases, same run, same workers count, fresh withdrawals each:
- capped: the limiter at WECHATPAY_RATE_LIMIT=100 (WeChat's per-merchant cap, the production default);
- uncapped: WECHATPAY_RATE_LIMIT=1000000 in the workers' environment: the limiter is still consulted (one Redis
  script call per request) but never waits, so this is what the workers, database and endpoint can do.
Baseline, same run: as many client processes as workers, each creating its share of the same number of bills
back to back (no database, RQ or limiter), each bill confirmed by the same bench "member" as soon as the emulator
has it, its notification delivered to a bare endpoint (bench/trivial_app.py, no verification, no database) under
the same gunicorn settings; timed from the go until every bill is SUCCESS and its notification answered. So both
sides have the same processes: 2 creating, 1 receiving notifications, the emulator + the confirming member.

Uses its own database (BENCH_DATABASE_URL, default liebian_bench_payouts, dropped and recreated) and Redis db
(BENCH_REDIS_URL, default redis://127.0.0.1:6379/3, flushed)."""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis as redis_lib
import requests
from sqlalchemy import func, select, text
from bench.procs import free_port, stop, tree_pids

ROOT = Path(__file__).resolve().parents[1]
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/liebian_bench_payouts")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
WECHAT_CAP = 100.0
UNCAPPED_RATE = "1000000"  # WECHATPAY_RATE_LIMIT for the uncapped phase: the limiter never waits
WEB_THREADS = 4  # gunicorn gthread threads of the one web process (the app's endpoint, or the baseline's)
POLL = 0.01  # seconds between the bench member's looks for bills to confirm


def _drained(wsgi):
    """Read every request body fully before the app runs, so a kept-alive connection's next request line is
    never read from the middle of an unread body."""
    import io

    def app(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(length) if length > 0 else b"")
        return wsgi(environ, start_response)

    return app


def _serve(wsgi):
    """The emulator on a threaded werkzeug server with persistent HTTP/1.1 connections, like WeChat Pay's
    (werkzeug's own handler answers `Connection: close` to every request: a new TCP connection and a new
    server thread per payout, paid by both sides)."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class _NoDrain:
        """werkzeug reads whatever follows a response (up to 10 MB) assuming the connection closes, which would
        swallow the next request of a kept-alive connection: that one read returns nothing here."""

        def __init__(self, raw):
            self._raw = raw

        def read(self, n=-1):
            return b"" if n == 10_000_000 else self._raw.read(n)

        def __getattr__(self, name):
            return getattr(self._raw, name)

    class KeepAlive(WSGIRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):

            super().setup()
            self.rfile = _NoDrain(self.rfile)
            # headers and body go out in two writes: without NODELAY the body waits for the client's delayed ACK
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def send_header(self, keyword, value):
            if keyword.lower() == "connection" and value.lower() == "close" and \
                    "chunked" not in (self.headers.get("Transfer-Encoding") or "").lower():
                return  # bodies are drained (see _drained): the connection can serve the next request
            super().send_header(keyword, value)

    server = make_server("127.0.0.1", 0, _drained(wsgi), threaded=True, request_handler=KeepAlive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.port}", server


def _world(web_url: str):
    from app.config import load_settings
    from wechat.emulator import config_for, create_emulator
    from wechat.keys import generate_private_pem, public_pem_of

    merchant, platform = generate_private_pem(), generate_private_pem()
    holder = {}

    def late(environ, start_response):
        return holder["app"](environ, start_response)

    emu_url, server = _serve(late)
    env = {"DATABASE_URL": DB_URL, "REDIS_URL": REDIS_URL, "SECRET_KEY": "bench-secret",
           "WECHAT_APP_ID": "wxbenchservice001", "WECHAT_APP_SECRET": "s", "WECHAT_TOKEN": "benchtoken",
           "WECHAT_MINIAPP_ID": "wxbenchminiapp001", "WECHAT_MINIAPP_SECRET": "s",
           "WECHAT_API_BASE": emu_url, "WECHAT_OPEN_BASE": emu_url, "WECHAT_MP_BASE": emu_url,
           "WECHATPAY_API_BASE": emu_url, "WECHATPAY_MCH_ID": "1900000109",
           "WECHATPAY_API_V3_KEY": "benchApiV3Key0123456789abcdefghi", "WECHATPAY_PRIVATE_KEY": merchant,
           "WECHATPAY_CERT_SERIAL": "BENCHSERIAL0001", "WECHATPAY_PUBLIC_KEY": public_pem_of(platform),
           "WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_BENCH0001", "PUBLIC_BASE_URL": web_url,
           "WECHAT_ENCODING_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "SHOP_WEBHOOK_SECRET": "b"}
    app = create_emulator(config_for(load_settings(env), platform_private_key=platform,
                                     merchant_public_key=public_pem_of(merchant)))
    holder["app"] = app
    emulator = app.extensions["wechat_emulator"]
    emulator.pay.cfg["balance"] = 10**12
    emulator.pay.reset()
    return env, emulator, server


def _fresh_database() -> None:
    from app.migrate import upgrade_database

    from bench.db import recreate_database

    recreate_database(DB_URL)
    upgrade_database(DB_URL)


WEB_LOG = Path(os.environ.get("BENCH_WEB_LOG", f"/tmp/liebian-bench-payouts-web-{os.getpid()}.log"))


def _gunicorn(app: str, port: int, env: dict) -> subprocess.Popen:
    """One web process (gthread, WEB_THREADS threads): the app's notification endpoint, or the baseline's. Its
    output (the app's startup logging, any handler traceback) goes to WEB_LOG."""
    cmd = [sys.executable, "-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads", str(WEB_THREADS),
           "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--keep-alive", "30", app]
    with WEB_LOG.open("ab") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                                start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=0.5)
            return proc
        except requests.RequestException:
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError(f"gunicorn for {app} did not start")


class _Member(threading.Thread):
    """The bench playing every member: confirms each bill `pending()` lists (once), every POLL seconds."""

    def __init__(self, emulator, pending):
        super().__init__(daemon=True)
        self.emulator, self.pending = emulator, pending
        self.confirmed: set[str] = set()
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        from wechat.emulator.paydesk import PayErr

        while not self.stop.is_set():
            for no in self.pending():
                if no in self.confirmed:
                    continue
                try:
                    self.emulator.pay.settle(no, "confirm")  # what /_sim/pay/bills/<no>/confirm does
                except PayErr:
                    self.errors += 1
                self.confirmed.add(no)
            self.stop.wait(POLL)


def _baseline_client(env: dict, openids: list[str], prefix: str, notify_url: str, ready, go) -> None:
    """One baseline process: its own client, warmed (keys parsed, connection open), then bills back to back."""
    from app.config import load_settings
    from wechat.errors import PayNotFound
    from wechat.pay import WeChatPay

    settings = load_settings(env)
    pay = WeChatPay(settings)
    try:
        pay.query_transfer_bill(f"{prefix}WARM")
    except PayNotFound:
        pass
    ready.set()
    go.wait()
    for i, openid in enumerate(openids):
        pay.create_transfer_bill(f"{prefix}{i:010d}", openid, 100, "佣金提现", appid=settings.wechat_miniapp_id,
                                 notify_url=notify_url)


def baseline(env: dict, emulator, n: int, processes: int) -> tuple[float, dict]:
    """Bills/s to SUCCESS with their notification answered: `processes` client processes creating bills back to
    back, the bench member confirming each, notifications to a bare endpoint under the same gunicorn settings."""
    import multiprocessing

    client = importlib.import_module("bench.bench_payouts")._baseline_client  # picklable by module name
    miniapp = env["WECHAT_MINIAPP_ID"]
    openids = [emulator.create_person(nickname=f"b{i}")["openids"][miniapp] for i in range(n)]
    port = free_port()
    web = _gunicorn("bench.trivial_app:app", port, env)
    ctx = multiprocessing.get_context("spawn")  # this process runs server threads: no fork
    go = ctx.Event()
    readies = [ctx.Event() for _ in range(processes)]
    procs = [ctx.Process(target=client, args=(env, openids[w::processes], f"BASE{w}X",
                                              f"http://127.0.0.1:{port}/wechatpay/notify/transfer", readies[w], go))
             for w in range(processes)]
    pay = emulator.pay

    def waiting():
        with pay.lock:
            return [no for no, b in pay.bills.items() if b["state"] == "WAIT_USER_CONFIRM"]

    member = _Member(emulator, waiting)
    try:
        for p in procs:
            p.start()
        for r in readies:
            r.wait(60)
        member.start()
        cpu0 = sum(os.times()[:2])
        web_pids = tree_pids(web.pid)
        _cpu_mark([p.pid for p in procs] + web_pids)
        t0 = time.perf_counter()
        go.set()
        done = 0
        while time.perf_counter() - t0 < 120:
            with pay.lock:
                paid = sum(1 for b in pay.bills.values() if b["state"] == "SUCCESS")
                answered = len({x["out_bill_no"] for x in pay.notifications if x.get("ok")})
            done = min(paid, answered)
            if done >= n:
                break
            time.sleep(POLL)
        elapsed = time.perf_counter() - t0
        cpu = {f"client{i}": _cpu_seconds(p.pid) for i, p in enumerate(procs)}
        cpu["web"] = sum(_cpu_seconds(pid) for pid in web_pids)
        cpu["bench+emulator"] = sum(os.times()[:2]) - cpu0
    finally:
        member.stop.set()
        for p in procs:
            p.join(timeout=30)
        stop(web)
    pay.wait_idle(timeout=10)
    if done < n:
        print(f"  (baseline: only {done} of {n} bills paid and notified in {elapsed:.0f}s)")
    return done / elapsed, cpu


_cpu_start: dict[int, float] = {}


def _cpu_seconds(pid: int) -> float:
    """CPU seconds used by a process (user + system) since _cpu_mark (or the first call) for it."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    used = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used - _cpu_start.setdefault(pid, used)


def _pg_cpu(rt, start: dict[int, float] | None = None) -> dict[int, float]:
    """CPU seconds of the bench database's PostgreSQL backends: absolute, or since `start` (a backend that
    started since counts whole; one that ended meanwhile is missed)."""
    with rt.engine.connect() as c:
        pids = c.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                              "AND pid <> pg_backend_pid()")).scalars().all()
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") - (start or {}).get(pid, 0.0)
    return out


def _cpu_mark(pids) -> None:
    """Start counting these processes' CPU from now (the web process lives through both phases)."""
    for pid in pids:
        _cpu_start.pop(pid, None)
        _cpu_seconds(pid)


def warm(seconds: float) -> str:
    """Bench-only RQ job: load what a payout needs (imports, runtime, pools, pay client) once per worker, as a
    long-running production worker has long before any payout; it holds the worker a moment so that every
    worker gets one."""
    from app.runtime import get_runtime
    from app.withdrawals.payouts import _fast_engine, limiter, pay_client
    from workers.outbox import _marker_engine

    rt = get_runtime()
    pay_client(rt)
    limiter(rt)
    with _fast_engine(rt).connect(), _marker_engine(rt).connect():
        pass
    time.sleep(seconds)
    return "warm"


def _warm_up(rt, workers: int) -> None:
    """Every worker runs `warm` once before the clock starts (a worker's first job would otherwise import the
    app inside the timed run: about a second of CPU that a long-running worker pays once at start)."""
    from rq import Queue

    q = Queue("payouts", connection=rt.redis)
    warmed: set = set()
    deadline = time.monotonic() + 60
    while len(warmed) < workers and time.monotonic() < deadline:  # until each worker has run one
        jobs = [q.enqueue("bench.bench_payouts.warm", 0.3, result_ttl=60) for _ in range(workers)]
        while time.monotonic() < deadline and any(j.get_status(refresh=True) != "finished" for j in jobs):
            time.sleep(0.05)
        for j in jobs:
            j.refresh()
        warmed |= {j.worker_name for j in jobs if j.worker_name}
    if len(warmed) < workers:
        print(f"  (warm-up reached {len(warmed)} of {workers} workers)")


def _setup_withdrawals(rt, emulator, env: dict, n: int, tag: str) -> list[int]:
    """n funded partners known to the emulated WeChat, one pending withdrawal each (not timed)."""
    from app.ledger.service import member_account, platform_account, post_entry
    from app.withdrawals.service import request_withdrawal
    from tests.factories import make_partner

    ids = []
    with rt.session() as s:
        for i in range(n):
            openid = emulator.create_person(nickname=f"{tag}{i}")["openids"][env["WECHAT_MINIAPP_ID"]]
            m = make_partner(s, mini_openid=openid)
            post_entry(s, f"bench:fund:{m.id}", [(member_account(s, m.id, "available"), 10_000),
                                                 (platform_account(s, "commission_expense"), -10_000)], "bench")
            ids.append(request_withdrawal(s, m.id, 1_000 + i % 500, "bench", appid=env["WECHAT_MINIAPP_ID"])[0].id)
    return ids


def _phase(rt, emulator, env: dict, ids: list[int], args, web, rate: str | None) -> dict:
    """Start the RQ workers (WECHATPAY_RATE_LIMIT=rate, None: the default 100/s), warm them, approve `ids` in one
    commit and time until every one is SUCCESS in the database."""
    from rq import Worker

    from app.withdrawals.models import Withdrawal
    from app.withdrawals.service import approve_withdrawal

    wenv = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    wenv.pop("WECHATPAY_RATE_LIMIT", None)
    if rate is not None:
        wenv["WECHATPAY_RATE_LIMIT"] = rate
    rt.redis.delete(f"wechatpay:rate:{env['WECHATPAY_MCH_ID']}")  # the limiter starts from an idle merchant
    rq_bin = str(Path(sys.executable).with_name("rq"))
    procs = [subprocess.Popen([rq_bin, "worker", "payouts", "default", "--url", REDIS_URL, "--path", str(ROOT),
                               "-w", args.worker_class, "-q", "-n", f"bench-{i}-{os.getpid()}-{rate or 'cap'}"],
                              cwd=ROOT, env=wenv, start_new_session=True, stdout=subprocess.DEVNULL)
             for i in range(args.workers)]
    lo, hi = min(ids), max(ids)
    in_phase = Withdrawal.id.between(lo, hi)

    def waiting():  # what the members' mini-program can show: bills awaiting confirmation, package_info known
        with rt.engine.connect() as c:
            return list(c.execute(select(Withdrawal.out_bill_no).where(
                in_phase, Withdrawal.state == "WAIT_USER_CONFIRM", Withdrawal.package_info.is_not(None))).scalars())

    member = _Member(emulator, waiting)
    bills_before = len(emulator.pay.bills)
    try:
        deadline = time.monotonic() + 60
        names = {f"bench-{i}-{os.getpid()}-{rate or 'cap'}" for i in range(args.workers)}
        while len(names & {w.name for w in Worker.all(connection=rt.redis)}) < args.workers \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        _warm_up(rt, args.workers)
        member.start()
        web_pids = tree_pids(web.pid)
        with rt.session() as s:  # one commit approves all: outbox rows in it, handed to RQ right after
            for wid in ids:
                approve_withdrawal(s, wid, actor="bench")
            s.flush()
            pg0 = _pg_cpu(rt)
            cpu0 = sum(os.times()[:2])
            _cpu_mark([p.pid for p in procs] + web_pids)
            t0 = time.perf_counter()  # the clock starts at the commit (the approvals themselves are not timed)
        done, created_at = 0, None
        while done < len(ids) and time.perf_counter() - t0 < 150:
            time.sleep(POLL)
            if created_at is None and len(emulator.pay.bills) - bills_before >= len(ids):
                created_at = time.perf_counter() - t0
            with rt.sessions() as s:
                done = s.scalar(select(func.count()).select_from(Withdrawal)
                                .where(in_phase, Withdrawal.state == "SUCCESS"))
        elapsed = time.perf_counter() - t0
        cpu = {f"worker{i}": _cpu_seconds(p.pid) for i, p in enumerate(procs)}
        cpu["web"] = sum(_cpu_seconds(pid) for pid in web_pids)
        cpu["bench+emulator"] = sum(os.times()[:2]) - cpu0
        cpu["postgres"] = sum(_pg_cpu(rt, pg0).values())
    finally:
        member.stop.set()
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait(timeout=20)
    return {"done": done, "n": len(ids), "elapsed": elapsed, "rate": done / elapsed, "cpu": cpu,
            "created_at": created_at, "confirm_errors": member.errors}


def _cpu_line(cpu: dict, n: int) -> str:
    return ", ".join(f"{k} {1000 * v / max(n, 1):.1f}" for k, v in cpu.items())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--withdrawals", type=int, default=1000, help="per phase (capped, uncapped), and the baseline")
    ap.add_argument("--worker-class", default="rq.worker.SimpleWorker")
    args = ap.parse_args()

    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    web_port = free_port()
    env, emulator, server = _world(f"http://127.0.0.1:{web_port}")
    os.environ.update(env)
    _fresh_database()
    redis_lib.Redis.from_url(REDIS_URL).flushdb()

    from app.config import load_settings
    from app.db import import_all_models
    from app.ledger.service import check_ledger
    from app.runtime import build_runtime, set_runtime

    import_all_models()
    rt = build_runtime(load_settings(env))
    set_runtime(rt)
    web = None
    try:
        base, base_cpu = baseline(env, emulator, args.withdrawals, args.workers)
        emulator.pay.reset()
        t = time.perf_counter()
        capped_ids = _setup_withdrawals(rt, emulator, env, args.withdrawals, "c")
        uncapped_ids = _setup_withdrawals(rt, emulator, env, args.withdrawals, "u")
        print(f"setup: {2 * args.withdrawals} funded partners with a pending withdrawal each in "
              f"{time.perf_counter() - t:.1f}s (not timed)")
        web = _gunicorn("wsgi:app", web_port, env)
        capped = _phase(rt, emulator, env, capped_ids, args, web, None)
        uncapped = _phase(rt, emulator, env, uncapped_ids, args, web, UNCAPPED_RATE)
        emulator.pay.wait_idle(timeout=20)
    finally:
        if web is not None:
            stop(web)
        server.shutdown()
    with rt.sessions() as s:
        ledger_ok = check_ledger(s).ok
        by_state = dict(s.execute(text("SELECT state, count(*) FROM withdrawals GROUP BY state")).all())
    pay = emulator.pay.ledger()
    paid_bills = [p["out_bill_no"] for p in pay["payouts"]]
    failed_notes = sum(1 for x in emulator.pay.notifications if not x.get("ok"))

    kind = args.worker_class.rsplit(".", 1)[-1]
    n = args.workers
    print(f"payouts to SUCCESS ({args.withdrawals} per phase): {n} RQ workers ({kind}) + 1 web process "
          f"(gunicorn 1x{WEB_THREADS} gthread) for WeChat's notifications; the bench member confirms each bill")
    print(f"  baseline: {n} client processes + 1 bare notify endpoint (same gunicorn), bills created back to back, "
          f"confirmed, notified: {base:7.1f} payouts/s")
    for name, ph, limit in (("capped  ", capped, "WECHATPAY_RATE_LIMIT=100"),
                            ("uncapped", uncapped, f"WECHATPAY_RATE_LIMIT={UNCAPPED_RATE}")):
        extra = f" | vs WeChat's 100/s cap {ph['rate'] / WECHAT_CAP:.2f}x" if ph is capped else ""
        print(f"  {name} ({limit}): {ph['done']}/{ph['n']} SUCCESS in {ph['elapsed']:.2f}s = {ph['rate']:7.1f} "
              f"payouts/s | baseline {base:7.1f}/s | ratio {ph['rate'] / base:.2f}{extra}")
        created = f"{ph['created_at']:.2f}s" if ph["created_at"] is not None else "not reached"
        print(f"      last bill created at WeChat after {created}; "
              f"CPU ms per payout: {_cpu_line(ph['cpu'], ph['done'])}")
    print(f"  uncapped / capped = {uncapped['rate'] / capped['rate']:.2f}x; "
          f"baseline CPU ms per payout: {_cpu_line(base_cpu, args.withdrawals)}")
    confirm_errors = capped["confirm_errors"] + uncapped["confirm_errors"]
    if not failed_notes and not confirm_errors:
        WEB_LOG.unlink(missing_ok=True)
    print(f"  checks: withdrawals by state {by_state}; emulator paid {len(paid_bills)} bills "
          f"({len(set(paid_bills))} distinct) for {2 * args.withdrawals} withdrawals; notification attempts "
          f"not answered 200: {failed_notes}; confirm errors: {confirm_errors}; "
          f"ledger check {'OK' if ledger_ok else 'FAILED'}" + (f" (web log: {WEB_LOG})" if WEB_LOG.exists() else ""))


if __name__ == "__main__":
    main()
