"""Payouts/s through real RQ workers against the WeChat Pay emulator, next to WeChat's 100 requests/s cap.

`python -m bench.bench_payouts [--workers 2] [--withdrawals 1000] [--worker-class rq.worker.SimpleWorker]`

What is timed: from the commit that approves every withdrawal (one transaction: outbox rows written, handed to
RQ after the commit; the approvals before it are not timed, and every worker has run one warm-up job first)
until every withdrawal's bill is at WeChat (WAIT_USER_CONFIRM), with the Redis rate limiter at WeChat's
100 requests/s. Baseline, same run, same machine: one in-process client creating bills
against the same emulator back to back (no database, no RQ, no limiter): the ceiling of client + emulator.

Uses its own database (BENCH_DATABASE_URL, default liebian_bench_payouts, dropped and recreated) and Redis db
(BENCH_REDIS_URL, default redis://127.0.0.1:6379/3, flushed)."""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis as redis_lib
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/liebian_bench_payouts")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
WECHAT_CAP = 100.0


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
            import socket

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


def _world():
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
           "WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_BENCH0001", "PUBLIC_BASE_URL": "http://127.0.0.1:9",
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


def baseline(env: dict, emulator, n: int = 300) -> float:
    """Bills/s created back to back by one in-process client: no DB, no RQ, no limiter."""
    from app.config import load_settings
    from wechat.pay import WeChatPay

    settings = load_settings(env)
    pay = WeChatPay(settings)
    openids = [emulator.create_person(nickname=f"b{i}")["openids"][settings.wechat_miniapp_id] for i in range(n)]
    t0 = time.perf_counter()
    for i, openid in enumerate(openids):
        pay.create_transfer_bill(f"BASE{i:010d}", openid, 100, "佣金提现", appid=settings.wechat_miniapp_id,
                                 notify_url="http://127.0.0.1:9/none")
    return n / (time.perf_counter() - t0)


_cpu_start: dict[int, float] = {}


def _cpu_seconds(pid: int) -> float:
    """CPU seconds used by a process (user + system) since the first call for it."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    used = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used - _cpu_start.setdefault(pid, used)


def warm(seconds: float) -> str:
    """Bench-only RQ job: load what a payout needs (imports, runtime, pools, pay client) once per worker, as a
    long-running production worker has long before any payout; it holds the worker a moment so that every
    worker gets one."""
    from app.runtime import get_runtime
    from app.withdrawals.config import payout_config
    from app.withdrawals.payouts import _fast_engine, limiter, pay_client
    from workers.outbox import _marker_engine

    rt, cfg = get_runtime(), payout_config()
    pay_client(rt.settings, cfg)
    limiter(rt, cfg)
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--withdrawals", type=int, default=1000)
    ap.add_argument("--worker-class", default="rq.worker.SimpleWorker")
    args = ap.parse_args()

    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    env, emulator, server = _world()
    os.environ.update(env)
    _fresh_database()
    redis_lib.Redis.from_url(REDIS_URL).flushdb()

    from app.config import load_settings
    from app.db import import_all_models
    from app.runtime import build_runtime, set_runtime

    import_all_models()
    rt = build_runtime(load_settings(env))
    set_runtime(rt)
    from app.ledger.service import member_account, platform_account, post_entry
    from app.withdrawals.models import Withdrawal
    from app.withdrawals.service import approve_withdrawal, request_withdrawal
    from tests.factories import make_partner

    base = baseline(env, emulator)
    emulator.pay.reset()

    ids = []
    with rt.session() as s:
        for i in range(args.withdrawals):
            openid = emulator.create_person(nickname=f"p{i}")["openids"][env["WECHAT_MINIAPP_ID"]]
            m = make_partner(s, mini_openid=openid)
            post_entry(s, f"bench:fund:{m.id}", [(member_account(s, m.id, "available"), 10_000),
                                                 (platform_account(s, "commission_expense"), -10_000)], "bench")
            ids.append(request_withdrawal(s, m.id, 1_000 + i % 500, "bench", appid=env["WECHAT_MINIAPP_ID"])[0].id)

    wenv = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    rq_bin = str(Path(sys.executable).with_name("rq"))
    procs = [subprocess.Popen([rq_bin, "worker", "payouts", "default", "--url", REDIS_URL, "--path", str(ROOT),
                               "-w", args.worker_class, "-q", "-n", f"bench-{i}-{os.getpid()}"],
                              cwd=ROOT, env=wenv, start_new_session=True, stdout=subprocess.DEVNULL)
             for i in range(args.workers)]
    try:
        from rq import Worker

        deadline = time.monotonic() + 60
        while len(Worker.all(connection=rt.redis)) < args.workers and time.monotonic() < deadline:
            time.sleep(0.1)
        _warm_up(rt, args.workers)
        with rt.session() as s:  # one commit approves all: outbox rows in it, handed to RQ right after
            for wid in ids:
                approve_withdrawal(s, wid, actor="bench")
            s.flush()
            cpu0 = sum(os.times()[:2])
            for p in procs:
                _cpu_seconds(p.pid)
            t0 = time.perf_counter()  # the clock starts at the commit (the approvals themselves are not timed)
        done = 0
        while done < len(ids) and time.perf_counter() - t0 < 300:
            time.sleep(0.05)
            with rt.sessions() as s:
                done = s.scalar(select(func.count()).select_from(Withdrawal)
                                .where(Withdrawal.state == "WAIT_USER_CONFIRM"))
        elapsed = time.perf_counter() - t0
        cpu = {f"worker{i}": _cpu_seconds(p.pid) for i, p in enumerate(procs)}
        cpu["bench+emulator"] = sum(os.times()[:2]) - cpu0
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait(timeout=20)
        server.shutdown()
    bills = len(emulator.pay.ledger()["bills"])
    rate = done / elapsed
    print(f"payouts through {args.workers} RQ workers ({args.worker_class.rsplit('.', 1)[-1]}): {done} bills in "
          f"{elapsed:.2f}s = {rate:.1f} payouts/s")
    print(f"  vs WeChat's cap of {WECHAT_CAP:.0f} requests/s per merchant: {rate / WECHAT_CAP:.2f}x")
    print(f"  baseline, one in-process client back to back (no DB/RQ/limiter): {base:.1f} bills/s; "
          f"workers/baseline = {rate / base:.2f}x")
    print("  CPU seconds during the run: " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()))
    workers_ms = 1000 * sum(v for k, v in cpu.items() if k.startswith("worker")) / max(done, 1)
    emulator_ms = 1000 * cpu["bench+emulator"] / max(done, 1)
    print(f"  CPU per payout: workers {workers_ms:.1f} ms, bench+emulator {emulator_ms:.1f} ms")
    print(f"  bills at the emulator: {bills} for {len(ids)} withdrawals (one out_bill_no each)")


if __name__ == "__main__":
    main()
