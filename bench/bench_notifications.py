"""Notification fan-out: commission events to WeChat messages through the outbox, RQ workers and the WeChat
emulator, next to the emulator's raw send rate measured in the same run by as many processes.

    python -m bench.bench_notifications                  # 10,000 events, 2 workers
    BENCH_EVENTS=2000 BENCH_CHANNEL=template python -m bench.bench_notifications

Measured: BENCH_EVENTS `commission.accrued` events recorded with `app.events.record_many` in committed
transactions of BENCH_BATCH events (as an order batch would record them), each naming one of BENCH_MEMBERS
partners as the earner and a real order (its buyer's masked nickname goes in the message). The outbox hands the
deliveries to RQ; BENCH_WORKERS `rq worker` processes (SimpleWorker) on the `notifications` queue run the
moment's subscriber, which plans one message per event and, the message being due now, sends it (locks the
message, passes the rate limiter, takes a subscribe grant, calls WeChat, records the attempt). Timed from the
start of the first recording transaction to the last message sent (`sent_at`); the workers are warmed first by
a few events of their own. Deliveries for other subscribers of the event (boards, queue `default`) are left
queued: this measures the notifications pool.

Baseline, same run, same emulator: BENCH_WORKERS processes, each with one keep-alive HTTP connection and a
valid access_token, POSTing valid payloads (the same formatted values) back to back straight to the
emulator's send API, BENCH_EVENTS sends in all. Ratio = messages/s / raw sends/s.

The emulator (`wechat.emulator`, in memory, no state file) is served on loopback as its own process: gunicorn,
1 worker, BENCH_EMULATOR_THREADS gthread threads; Liebian reaches it through WECHAT_API_BASE. Each event is one
message: the moment's digest window is 0 (the default: digests are off until an operator sets one), quiet
hours are off (NOTIFY_QUIET_START = NOTIFY_QUIET_END), and NOTIFY_RATE_LIMIT is set far above the rate reached
(printed), so the limiter is consulted on every send but never waits. At the end it checks that exactly one
message per (moment, member, event) was sent: rows in the database, and the emulator's record of messages
received (msgids match one to one, every grant used once).

Env: BENCH_EVENTS (10000), BENCH_WORKERS (2), BENCH_MEMBERS (1000 earners), BENCH_BATCH (50 events per
transaction), BENCH_CHANNEL (subscribe: mini-program subscribe messages on one-time grants; template: service-
account template messages to followers, whose send also asks WeChat's user/info), BENCH_NOTIFY_RATE_LIMIT
(1000000 per second), BENCH_EMULATOR_THREADS (8), BENCH_DATABASE_URL (postgresql+psycopg://postgres@127.0.0.1:
5432/liebian_bench_notify, dropped and recreated), BENCH_REDIS_URL (redis://127.0.0.1:6379/5, flushed)."""
from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import requests
from bench.procs import cpu_seconds, free_port, stop, tree_pids

ROOT = Path(__file__).resolve().parents[1]
DB_URL = os.environ.get("BENCH_DATABASE_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/liebian_bench_notify")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
EVENTS = int(os.environ.get("BENCH_EVENTS", "10000"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
MEMBERS = int(os.environ.get("BENCH_MEMBERS", "1000"))
BATCH = int(os.environ.get("BENCH_BATCH", "50"))
CHANNEL = os.environ.get("BENCH_CHANNEL", "subscribe")
RATE_LIMIT = os.environ.get("BENCH_NOTIFY_RATE_LIMIT", "1000000")
RATE_BURST = "1000"
EMULATOR_THREADS = int(os.environ.get("BENCH_EMULATOR_THREADS", "8"))
MOMENT = "commission_accrued"
SUB_TEMPLATE, OA_TEMPLATE = "BENCH_SUB_COMMISSION", "BENCH_TPL_COMMISSION"
WARM_PER_WORKER = 10  # warm-up events per worker (their own members), not timed
BUYERS = 200
SEND_PATH = {"subscribe": "/cgi-bin/message/subscribe/send", "template": "/cgi-bin/message/template/send"}


def _env(emulator_url: str, merchant_key: str, platform_key: str) -> dict:
    from app.config import load_settings  # noqa: F401  (before wechat.keys, which imports it through app)
    from wechat.keys import public_pem_of

    return {"DATABASE_URL": DB_URL, "REDIS_URL": REDIS_URL, "SECRET_KEY": "bench-secret",
            "WECHAT_APP_ID": "wxbenchservice001", "WECHAT_APP_SECRET": "bench-oa-secret",
            "WECHAT_TOKEN": "benchtoken", "WECHAT_ENCODING_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
            "WECHAT_MINIAPP_ID": "wxbenchminiapp001", "WECHAT_MINIAPP_SECRET": "bench-mini-secret",
            "WECHAT_API_BASE": emulator_url, "WECHAT_OPEN_BASE": emulator_url, "WECHAT_MP_BASE": emulator_url,
            "WECHATPAY_API_BASE": emulator_url, "WECHATPAY_MCH_ID": "1900000109",
            "WECHATPAY_API_V3_KEY": "benchApiV3Key0123456789abcdefghi", "WECHATPAY_PRIVATE_KEY": merchant_key,
            "WECHATPAY_CERT_SERIAL": "BENCHSERIAL0001", "WECHATPAY_PUBLIC_KEY": public_pem_of(platform_key),
            "WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_BENCH0001", "PUBLIC_BASE_URL": "http://127.0.0.1:9",
            "SHOP_WEBHOOK_SECRET": "bench-shop", "BENCH_PLATFORM_KEY": platform_key,
            "NOTIFY_RATE_LIMIT": RATE_LIMIT, "NOTIFY_RATE_BURST": RATE_BURST,
            "NOTIFY_QUIET_START": "0", "NOTIFY_QUIET_END": "0"}


def emulator_app():
    """The emulator's WSGI app for gunicorn (`bench.bench_notifications:emulator_app()`): the accounts of the
    bench's environment, in memory only."""
    from app.config import load_settings
    from wechat.emulator import config_for, create_emulator
    from wechat.keys import public_pem_of

    settings = load_settings(os.environ)
    return create_emulator(config_for(settings, platform_private_key=os.environ["BENCH_PLATFORM_KEY"],
                                      merchant_public_key=public_pem_of(os.environ["WECHATPAY_PRIVATE_KEY"])))


# --- processes ---

def _start_emulator(port: int, env: dict) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads", str(EMULATOR_THREADS),
           "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--keep-alive", "30",
           "bench.bench_notifications:emulator_app()"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                            start_new_session=True)
    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{port}/", timeout=0.5).ok:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.1)
    stop(proc)
    raise RuntimeError("the emulator did not start")


def _start_workers(env: dict) -> list[subprocess.Popen]:
    rq_bin = str(Path(sys.executable).with_name("rq"))
    wenv = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    return [subprocess.Popen([rq_bin, "worker", "notifications", "--url", REDIS_URL, "--path", str(ROOT),
                              "-w", "rq.worker.SimpleWorker", "-q", "-n", f"bench-notify-{i}-{os.getpid()}"],
                             cwd=ROOT, env=wenv, start_new_session=True, stdout=subprocess.DEVNULL)
            for i in range(WORKERS)]


def _wait_for_workers(redis, procs) -> None:
    from rq import Worker

    names = {f"bench-notify-{i}-{os.getpid()}" for i in range(len(procs))}
    deadline = time.monotonic() + 60
    while names - {w.name for w in Worker.all(connection=redis)}:
        if time.monotonic() > deadline:
            raise RuntimeError("the RQ workers did not start")
        time.sleep(0.1)


def _redis_pids(redis) -> list[int]:
    try:
        return [int(redis.info("server")["process_id"])]
    except Exception:  # a Redis elsewhere: not counted
        return []


def _pg_pids(engine) -> list[int]:
    from sqlalchemy import text

    with engine.connect() as c:
        return list(c.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                   "AND pid <> pg_backend_pid()")).scalars())


class _Cpu:
    """CPU seconds per role between start() and stop() (a process born in between counts whole)."""

    def __init__(self, roles):
        self.roles = roles  # name -> callable returning pids

    def start(self) -> None:
        self.before = {pid: cpu_seconds(pid) for get in self.roles.values() for pid in get()}
        self.self0 = sum(os.times()[:2])

    def stop(self) -> dict[str, float]:
        out = {name: sum(max(0.0, cpu_seconds(pid) - self.before.get(pid, 0.0)) for pid in get())
               for name, get in self.roles.items()}
        out["bench"] = sum(os.times()[:2]) - self.self0
        return out


def _cpu_line(cpu: dict, n: int) -> str:
    return ", ".join(f"{k} {1000 * v / max(n, 1):.2f}" for k, v in cpu.items())


# --- the world ---

class Sim:
    def __init__(self, url: str):
        self.url, self.http = url, requests.Session()

    def __call__(self, path: str, method: str = "POST", **body):
        r = self.http.request(method, f"{self.url}/_sim/{path}", json=body, timeout=60)
        r.raise_for_status()
        return r.json()


def _people(sim: Sim, n: int, per_person: int) -> list[dict]:
    """n emulated WeChat users, each with `per_person` subscribe consents (or following the account)."""
    out = []
    for _ in range(n):
        p = sim("persons", following=CHANNEL == "template")
        if CHANNEL == "subscribe":
            sim(f"persons/{p['pid']}/consent", template_id=SUB_TEMPLATE, count=per_person)
        out.append(p)
    return out


def _setup(rt, sim: Sim, env: dict) -> dict:
    """Templates, the moment's settings, earners (partners with their grants), buyers and orders."""
    from sqlalchemy import insert

    from app.db import utcnow
    from app.notifications.moments import MOMENTS
    from app.notifications.models import SubscriptionGrant
    from app.notifications.service import save_moment_config
    from app.orders.models import Order
    from tests.factories import make_member, make_partner

    m = MOMENTS[MOMENT]
    sim("templates", template_id=SUB_TEMPLATE, kind="subscribe", fields=list(m.subscribe_fields))
    sim("templates", template_id=OA_TEMPLATE, kind="template", fields=list(m.template_fields))
    warm_members = WARM_PER_WORKER * WORKERS
    per_member = -(-EVENTS // MEMBERS)
    people = _people(sim, MEMBERS, per_member)
    warm_people = _people(sim, warm_members, 1)
    mini, oa = env["WECHAT_MINIAPP_ID"], env["WECHAT_APP_ID"]
    now = utcnow()
    with rt.session() as s:
        saved = save_moment_config(s, MOMENT, {"enabled": True, "channels": [CHANNEL], "digest_seconds": 0,
                                               "subscribe": {"template_id": SUB_TEMPLATE},
                                               "template": {"template_id": OA_TEMPLATE}})
        earners = [make_partner(s, f"earner{i}", mini_openid=p["openids"][mini], oa_openid=p["openids"][oa]).id
                   for i, p in enumerate(people)]
        warm = [make_partner(s, f"warm{i}", mini_openid=p["openids"][mini], oa_openid=p["openids"][oa]).id
                for i, p in enumerate(warm_people)]
        if CHANNEL == "subscribe":
            grants = [{"member_id": mid, "template_id": SUB_TEMPLATE, "result": "accept", "created_at": now}
                      for mid in earners for _ in range(per_member)]
            grants += [{"member_id": mid, "template_id": SUB_TEMPLATE, "result": "accept", "created_at": now}
                       for mid in warm]
            s.execute(insert(SubscriptionGrant), grants)
        buyers = [make_member(s, f"买家{i}号").id for i in range(BUYERS)]
        orders = s.execute(insert(Order).returning(Order.id, sort_by_parameter_order=True), [
            {"shop_order_id": f"BENCH{i}", "buyer_id": buyers[i % BUYERS], "status": "paid",
             "paid_fen": 1000 + (i * 37) % 90000, "refunded_fen": 0, "is_first_order": False, "paid_at": now,
             "created_at": now} for i in range(EVENTS + warm_members)]).scalars().all()
    return {"earners": earners, "warm": warm, "orders": list(orders), "per_member": per_member,
            "digest_seconds": saved["digest_seconds"], "people": people}


def _events(earners: list[int], orders: list[int], first_id: int) -> list[tuple[str, dict]]:
    return [("commission.accrued", {"commission_id": first_id + i, "order_id": orders[i],
                                    "earner_id": earners[i % len(earners)], "level": 1,
                                    "amount_fen": 100 + (i * 53) % 9000}) for i in range(len(orders))]


def _record(rt, events: list[tuple[str, dict]]) -> int:
    """Record the events, BATCH per committed transaction (each commit hands its deliveries to RQ)."""
    from app.events import record_many

    for i in range(0, len(events), BATCH):
        with rt.session() as s:
            record_many(s, events[i:i + BATCH])
    return -(-len(events) // BATCH)


def _sent(rt, first_event: int) -> int:
    from sqlalchemy import func, select

    from app.notifications.models import NotificationMessage

    with rt.sessions() as s:
        return s.scalar(select(func.count()).select_from(NotificationMessage).where(
            NotificationMessage.event_id >= first_event, NotificationMessage.status != "pending"))


def _wait(rt, first_event: int, n: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    done = 0
    while time.monotonic() < deadline:
        done = _sent(rt, first_event)
        if done >= n:
            break
        time.sleep(0.25)  # the end is read from sent_at: polling only has to notice it
    return done


def _next_event_id(rt) -> int:
    from sqlalchemy import func, select

    from app.events.models import DomainEvent

    with rt.sessions() as s:
        return (s.scalar(select(func.max(DomainEvent.id))) or 0) + 1


# --- the baseline ---

def _raw_sender(api_base: str, appid: str, secret: str, path: str, bodies: list[bytes], ready, go, out) -> None:
    """One baseline process: a valid token, one keep-alive connection, the sends back to back."""
    http = requests.Session()
    token = http.post(f"{api_base}/cgi-bin/stable_token", timeout=10,
                      json={"grant_type": "client_credential", "appid": appid, "secret": secret}).json()
    url = f"{api_base}{path}?access_token={token['access_token']}"
    headers = {"Content-Type": "application/json"}
    http.post(url, data=b"{}", headers=headers, timeout=10)  # the connection open (answers 40003)
    ready.set()
    go.wait()
    errors = 0
    t0 = time.perf_counter()
    for body in bodies:
        if http.post(url, data=body, headers=headers, timeout=10).json().get("errcode"):
            errors += 1
    out.put((time.perf_counter() - t0, errors))


def _baseline(rt, sim: Sim, env: dict, emulator_pids) -> dict:
    """EVENTS raw sends from WORKERS processes, to people of their own, with the payload our path sends."""
    from app.notifications.service import data_for, moment_config
    from app.notifications.moments import page_for

    people = _people(sim, MEMBERS, -(-EVENTS // MEMBERS))
    with rt.session() as s:
        cfg = moment_config(s, MOMENT)
    values = {"title": "新佣金到账（待结算）", "amount_fen": 1230, "order_fen": 45600, "buyer": "买*",
              "status": "待结算", "level": 1, "time": "2026-01-01T10:00:00+00:00"}
    data = data_for(cfg, CHANNEL, values)
    page = page_for(cfg.page, values)
    mini, oa = env["WECHAT_MINIAPP_ID"], env["WECHAT_APP_ID"]
    bodies = []
    for i in range(EVENTS):
        p = people[i % len(people)]
        if CHANNEL == "subscribe":
            body = {"touser": p["openids"][mini], "template_id": SUB_TEMPLATE, "data": data,
                    "miniprogram_state": "formal", "lang": "zh_CN", "page": page}
        else:
            body = {"touser": p["openids"][oa], "template_id": OA_TEMPLATE, "data": data,
                    "miniprogram": {"appid": mini, "pagepath": page}}
        bodies.append(json.dumps(body, ensure_ascii=False).encode())
    appid, secret = (mini, env["WECHAT_MINIAPP_SECRET"]) if CHANNEL == "subscribe" else \
        (oa, env["WECHAT_APP_SECRET"])
    sender = importlib.import_module("bench.bench_notifications")._raw_sender  # picklable by module name
    ctx = multiprocessing.get_context("spawn")  # this process has threads (pools): no fork
    go, out = ctx.Event(), ctx.Queue()
    readies = [ctx.Event() for _ in range(WORKERS)]
    procs = [ctx.Process(target=sender, args=(env["WECHAT_API_BASE"], appid, secret, SEND_PATH[CHANNEL],
                                                   bodies[w::WORKERS], readies[w], go, out))
             for w in range(WORKERS)]
    for p in procs:
        p.start()
    for p, r in zip(procs, readies, strict=True):
        if not r.wait(60):
            raise RuntimeError(f"baseline sender {p.pid} did not get ready (exit code {p.exitcode})")
    cpu = _Cpu({"senders": lambda: [p.pid for p in procs], "emulator": emulator_pids})
    cpu.start()
    t0 = time.perf_counter()
    go.set()
    results = [out.get(timeout=max(120.0, EVENTS / 20)) for _ in procs]
    elapsed = time.perf_counter() - t0
    used = cpu.stop()
    for p in procs:
        p.join(timeout=30)
    return {"n": EVENTS, "elapsed": elapsed, "rate": EVENTS / elapsed, "errors": sum(e for _t, e in results),
            "cpu": used, "pids": {p["pid"] for p in people}}


# --- checks ---

def _check(rt, sim: Sim, first_warm: int, n_events: int, baseline_pids: set) -> tuple[bool, str]:
    from sqlalchemy import func, select, text

    from app.events.models import DomainEvent
    from app.notifications.models import NotificationAttempt, NotificationMessage, SubscriptionGrant
    from app.outbox.models import OutboxMessage

    M = NotificationMessage
    with rt.sessions() as s:
        events = s.scalar(select(func.count()).select_from(DomainEvent).where(
            DomainEvent.name == "commission.accrued", DomainEvent.id >= first_warm))
        rows = s.execute(select(M.status, func.count()).where(M.event_id >= first_warm).group_by(M.status)).all()
        keys = s.scalar(select(func.count()).select_from(
            select(M.moment, M.member_id, M.event_id).distinct().where(M.event_id >= first_warm).subquery()))
        missing = s.scalar(text("SELECT count(*) FROM domain_events e WHERE e.name = 'commission.accrued' AND "
                                "e.id >= :f AND NOT EXISTS (SELECT 1 FROM notification_messages m WHERE "
                                "m.event_id = e.id AND m.status = 'sent' AND m.member_id = "
                                "CAST(e.data->>'earner_id' AS bigint))"), {"f": first_warm})
        msgids = list(s.scalars(select(M.msgid).where(M.event_id >= first_warm, M.status == "sent")))
        grants_left = s.scalar(select(func.count()).select_from(SubscriptionGrant).where(
            SubscriptionGrant.result == "accept", SubscriptionGrant.consumed_at.is_(None)))
        grants_total = s.scalar(select(func.count()).select_from(SubscriptionGrant).where(
            SubscriptionGrant.result == "accept"))
        grants_used = s.scalar(select(func.count(func.distinct(SubscriptionGrant.message_id))).where(
            SubscriptionGrant.consumed_at.is_not(None)))
        not_sent_attempts = s.scalar(select(func.count()).select_from(NotificationAttempt).where(
            NotificationAttempt.outcome != "sent"))
        dead = s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.dead.is_(True)))
    received = [m for m in sim(f"messages?kind={CHANNEL}", method="GET") if m["pid"] not in baseline_pids]
    got = [m["msgid"] for m in received]
    by_status = dict(rows)
    ok = (events == n_events and by_status == {"sent": n_events} and keys == n_events and missing == 0
          and len(got) == n_events and len(set(got)) == n_events and set(got) == set(msgids)
          and (CHANNEL != "subscribe" or (grants_used == n_events and grants_left == grants_total - n_events))
          and not dead)
    line = (f"{events} events; messages by status {by_status}; {keys} distinct (moment, member, event); events "
            f"without their earner's sent message: {missing}; emulator received {len(got)} "
            f"({len(set(got))} distinct msgids, {'the same set as' if set(got) == set(msgids) else 'NOT'} "
            f"the database's)")
    if CHANNEL == "subscribe":
        line += f"; grants used {grants_used}, left {grants_left}"
    line += f"; attempts other than sent: {not_sent_attempts}; dead outbox rows: {dead}"
    return ok, line


def main() -> None:
    print(__doc__.split("\n\n")[0])
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start", flush=True)
    if CHANNEL not in SEND_PATH:
        raise SystemExit("BENCH_CHANNEL is subscribe or template")
    import logging

    import redis as redis_lib
    from sqlalchemy import func, select

    from app.config import load_settings  # before wechat.keys, which imports it through the app package
    from wechat.keys import generate_private_pem

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    env = _env(f"http://127.0.0.1:{port}", generate_private_pem(), generate_private_pem())
    os.environ.update({k: v for k, v in env.items()})

    from app.db import import_all_models
    from app.migrate import upgrade_database
    from app.notifications.models import NotificationMessage
    from app.runtime import build_runtime, set_runtime

    from bench.db import recreate_database

    recreate_database(DB_URL)
    upgrade_database(DB_URL)
    redis_lib.Redis.from_url(REDIS_URL).flushdb()
    import_all_models()
    rt = build_runtime(load_settings(env))
    set_runtime(rt)
    emulator = _start_emulator(port, env)
    workers: list[subprocess.Popen] = []
    try:
        sim = Sim(f"http://127.0.0.1:{port}")
        t = time.perf_counter()
        world = _setup(rt, sim, env)
        print(f"setup: {MEMBERS} earners ({world['per_member']} grants each) + {len(world['warm'])} warm-up "
              f"members, {BUYERS} buyers, {len(world['orders'])} orders in {time.perf_counter() - t:.1f}s "
              f"(not timed)", flush=True)
        emulator_pids = lambda: tree_pids(emulator.pid)  # noqa: E731
        base = _baseline(rt, sim, env, emulator_pids)

        workers = _start_workers(env)
        _wait_for_workers(rt.redis, workers)
        n_warm = len(world["warm"])
        first_warm = _next_event_id(rt)
        _record(rt, _events(world["warm"], world["orders"][:n_warm], 1))
        warmed = _wait(rt, first_warm, n_warm, 120)
        if warmed < n_warm:
            print(f"  (warm-up: only {warmed} of {n_warm} messages sent)")

        cpu = _Cpu({"workers": lambda: [p.pid for p in workers], "emulator": emulator_pids,
                    "postgres": lambda: _pg_pids(rt.engine), "redis (whole server)": lambda: _redis_pids(rt.redis)})
        first = _next_event_id(rt)
        events = _events(world["earners"], world["orders"][n_warm:], 1_000_000)
        cpu.start()
        wall0, t0 = time.time(), time.perf_counter()
        transactions = _record(rt, events)
        recorded = time.perf_counter() - t0
        done = _wait(rt, first, EVENTS, max(300.0, EVENTS / 10))
        used = cpu.stop()
        load = os.getloadavg()[0]
        with rt.sessions() as s:
            last = s.scalar(select(func.max(NotificationMessage.sent_at)).where(NotificationMessage.event_id >= first))
        elapsed = (last.timestamp() - wall0) if last is not None and done >= EVENTS else time.perf_counter() - t0
        rate = done / elapsed
        for w in workers:
            stop(w)
        workers = []
        ok, check = _check(rt, sim, first_warm, n_warm + EVENTS, base["pids"])
    finally:
        for w in workers:
            stop(w)
        stop(emulator)

    delay = timedelta(seconds=world["digest_seconds"])
    kind = {"subscribe": "mini-program subscribe messages on one-time grants",
            "template": "service-account template messages to followers (user/info, then send)"}[CHANNEL]
    print(f"{EVENTS} commission.accrued events -> {kind}; {WORKERS} RQ workers (SimpleWorker, queue "
          f"notifications); emulator: its own process, gunicorn 1x{EMULATOR_THREADS} gthread")
    print(f"  NOTIFY_RATE_LIMIT={RATE_LIMIT}/s (burst {RATE_BURST}); quiet hours off; {MOMENT} digest window "
          f"{delay.total_seconds():.0f}s (digests are off by default): one message per event")
    print(f"  load average {load:.2f} when the pipeline finished (this run's processes included)")
    print(f"  recorded in {transactions} transactions of {BATCH} events ({recorded:.2f}s, inside the timing)")
    print(f"  pipeline: {done}/{EVENTS} messages sent in {elapsed:.2f}s = {rate:8.1f} messages/s")
    print(f"  baseline: {WORKERS} processes sending straight to {SEND_PATH[CHANNEL]}: {base['n']} in "
          f"{base['elapsed']:.2f}s = {base['rate']:8.1f} sends/s ({base['errors']} errors)")
    print(f"  ratio: {rate / base['rate']:.2f}")
    print(f"  CPU ms per message: {_cpu_line(used, done)}; baseline per send: {_cpu_line(base['cpu'], base['n'])}")
    print(f"  check {'OK' if ok else 'FAILED'}: {check}", flush=True)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
