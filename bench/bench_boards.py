"""Leaderboards benchmark: boards of 1,000,000 members, in PostgreSQL (members, board_credits) and Redis.

    python -m bench.bench_boards                        # 1,000,000 members (about 4 minutes on 2 cores)
    BENCH_MEMBERS=100000 python -m bench.bench_boards   # a quick run

What it loads (its own database, BENCH_DATABASE_URL, dropped, created and migrated; its own Redis database,
BENCH_REDIS_URL, flushed): BENCH_MEMBERS members, each with one sale at a random moment of the last BENCH_DAYS
days, counted as the boards count it: a credit for the member, one for their store (one store per 2,000 members)
and, for the 30% of members in a team (teams of 50), one for the team. The Redis boards are what applying those
credits leaves (same keys, scores and expiry; day boards past their keep time are gone), plus the dedupe keys of
the credits of the last BOARDS_DEDUPE_DAYS.

What it measures, in one run:
1. Reads over HTTP on loopback, gunicorn BENCH_WORKERS x BENCH_THREADS gthread (--reuse-port), the same client
   (wrk when installed, else bench/loadgen.py) and concurrency for each:
   - `GET /api/mp/leaderboard?period=<BENCH_PERIOD>&limit=50`: the 1,000,000-member all-time board's top 50 and
     the caller's own standing, callers drawn at random among BENCH_SESSIONS members signed in up front (a login
     row each, a bearer token as the mini-program gets);
   - a trivial Flask endpoint (bench/trivial_app.py) on the same path;
   the two served side by side and measured in turn, BENCH_ROUNDS rounds of BENCH_SECONDS each (the machine's
   speed drifts within minutes: each round's pair shares its minute; the verdicts take the rounds' medians);
   - the real app checking the member's token and answering a constant (bench/member_noop_app.py): the floor
     under the leaderboard read, which adds one Redis call and its answer to it; and the same signing the member
     in through PostgreSQL, as every member endpoint that reads the database does (for comparison);
   - raw Redis: as many redis-py clients as gunicorn has threads (BENCH_WORKERS processes x BENCH_THREADS threads)
     sending a standing's commands (ZSCORE, ZREVRANK, ZCARD) in one round trip, for the same members, for 5 s.
   Closed loops at saturation (16 connections): p99 is mostly queueing (16 requests in flight over the rate),
   so it follows the rate. With wrk, the leaderboard is also measured at the target rate, half the trivial
   endpoint's, offered steadily (64 connections each pausing a random time between requests), for its latency
   at that load.
2. Board updates: BENCH_UPDATE_EVENTS sales (a credit each for member, team and store: day, week, month and
   all-time boards), written to board_credits first, then applied through app.boards.store.apply_credits, as the
   subscribers do after their commit, one call per event, by BENCH_UPDATE_PROCESSES processes.
3. Redis memory of the 1,000,000-member board: MEMORY USAGE (SAMPLES 0) and the used_memory growth while it was
   loaded, per member.
4. `flask boards rebuild`'s function (app.boards.service.rebuild) after FLUSHDB: seconds, then every board's
   size, expiry and top 100, and a sample of BENCH_SAMPLE members of the big board, against what was there.

Targets on the 2-core machine: leaderboard reads >= half the trivial endpoint's rate with p99 < 20 ms; >= 5,000
update events/s; <= 100 bytes of Redis memory per member per board; the 1,000,000-member board rebuilt in < 60 s.

Env: BENCH_MEMBERS (1000000), BENCH_DAYS (60), BENCH_LEAGUES (0: no grades, as a fresh install; n: members
spread over n grade leagues, which doubles the member boards), BENCH_SESSIONS (3000), BENCH_PERIOD (all),
BENCH_REQUESTS (requests for the Python client: 20000; wrk runs BENCH_SECONDS, 6), BENCH_ROUNDS (3),
BENCH_WORKERS (3), BENCH_THREADS (1), BENCH_UPDATE_EVENTS (60000), BENCH_UPDATE_PROCESSES (4), BENCH_SAMPLE (10000),
BENCH_DATABASE_URL (postgresql+psycopg://postgres@127.0.0.1:5432/liebian_bench_boards),
BENCH_REDIS_URL (redis://127.0.0.1:6379/4)."""
from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import redis as redis_lib
import requests
from bench.procs import free_port, stop

ROOT = Path(__file__).resolve().parent.parent
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/liebian_bench_boards")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
MEMBERS = int(os.environ.get("BENCH_MEMBERS", "1000000"))
DAYS = int(os.environ.get("BENCH_DAYS", "60"))
LEAGUES = int(os.environ.get("BENCH_LEAGUES", "0"))
SESSIONS = int(os.environ.get("BENCH_SESSIONS", "3000"))
PERIOD = os.environ.get("BENCH_PERIOD", "all")
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "20000"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "6"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "3"))  # 3x1 gthread, as the README's deployment
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
UPDATE_EVENTS = int(os.environ.get("BENCH_UPDATE_EVENTS", "60000"))
UPDATE_PROCESSES = int(os.environ.get("BENCH_UPDATE_PROCESSES", "4"))
SAMPLE = int(os.environ.get("BENCH_SAMPLE", "10000"))
STORE_MEMBERS = 2000  # members per store
TEAM_SIZE = 50
TEAM_TENTHS = 3  # 3 members in 10 are in a team
SECRET = "bench-secret"
ENV = {
    "DATABASE_URL": DB_URL, "REDIS_URL": REDIS_URL, "SECRET_KEY": SECRET,
    "WECHAT_APP_ID": "wxbenchservice01", "WECHAT_APP_SECRET": "bench", "WECHAT_TOKEN": "benchtoken",
    "WECHAT_ENCODING_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "WECHAT_API_BASE": "http://127.0.0.1:9", "PUBLIC_BASE_URL": "http://127.0.0.1",
    "SHOP_WEBHOOK_SECRET": "bench-shop", "WECHATPAY_API_V3_KEY": "benchApiV3Key0123456789abcdefghi",
}
PATH = f"/api/mp/leaderboard?period={PERIOD}&limit=50"


def _say(msg: str) -> None:
    print(msg, flush=True)


def _pg_dsn() -> str:
    return DB_URL.replace("postgresql+psycopg://", "postgresql://", 1)


# -- subjects of a member (deterministic: the loader, the updates and the checks agree) ------------------------

def _store_of(k: int) -> int:
    return k % max(1, MEMBERS // STORE_MEMBERS) + 1


def _team_of(k: int) -> int | None:
    if k % 10 >= TEAM_TENTHS:
        return None
    return ((k // 10) * TEAM_TENTHS + k % 10) // TEAM_SIZE + 1


def _league_of(k: int) -> str:
    return f"L{k % LEAGUES}" if LEAGUES else ""


# -- loading ---------------------------------------------------------------------------------------------------

class _Row:
    """What app.boards.store.targets reads of a credit."""

    __slots__ = ("subject_kind", "metric", "league", "at")

    def __init__(self, subject_kind, metric, league, at):
        self.subject_kind, self.metric, self.league, self.at = subject_kind, metric, league, at


def _prepare_database() -> int:
    """A fresh migrated database with MEMBERS members; returns the first member id."""
    import psycopg

    from app.migrate import upgrade_database

    from bench.db import recreate_database

    recreate_database(DB_URL)
    upgrade_database(DB_URL)
    with psycopg.connect(_pg_dsn(), autocommit=True) as c:
        c.execute("INSERT INTO members (nickname, avatar_url, status, created_at, updated_at) "
                  "SELECT '会员' || g, 'https://thirdwx.qlogo.cn/mmopen/vi_32/bench' || g || '/132', 'active', "
                  "now(), now() FROM generate_series(1, %s) g", (MEMBERS,))
        first = c.execute("SELECT min(id) FROM members").fetchone()[0]
    return first


def _load(first: int, now, cfg) -> dict:
    """board_credits (COPY) and the Redis boards they make, plus the recent credits' dedupe keys."""
    import psycopg

    from app.boards.periods import local
    from app.boards.store import board_key, dedupe_key, targets

    rng = random.Random(14)
    stamp = int(now.timestamp())
    recent = stamp - cfg.dedupe_days * 86400
    boards: dict[str, dict[int, int]] = defaultdict(dict)
    expiry: dict[str, int] = {}
    recent_ids: list[tuple[int, int]] = []
    cache: dict[tuple, list] = {}
    credit_id = 0
    t0 = time.time()
    with psycopg.connect(_pg_dsn(), autocommit=True) as c:
        with c.cursor().copy("COPY board_credits (id, event_id, ref, subject_kind, subject_id, metric, amount, "
                             "league, at, created_at) FROM STDIN") as copy:
            lines = []
            for k in range(MEMBERS):
                member = first + k
                amount = rng.randint(100, 200000)
                at = now - timedelta(seconds=rng.random() * DAYS * 86400)
                at_s = at.isoformat()
                day = local(at).date()
                league = _league_of(k)
                subjects = [("member", member, league), ("store", _store_of(k), "")]
                team = _team_of(k)
                if team is not None:
                    subjects.append(("team", team, ""))
                for kind, subject, lg in subjects:
                    credit_id += 1
                    lines.append(f"{credit_id}\t{k + 1}\torder:{k + 1}\t{kind}\t{subject}\tsales_fen\t{amount}\t"
                                 f"{lg}\t{at_s}\t{at_s}\n")
                    where = cache.get((kind, lg, day))
                    if where is None:
                        where = cache[(kind, lg, day)] = targets(_Row(kind, "sales_fen", lg, at), cfg)
                    for key, exp in where:
                        if exp and exp <= stamp:
                            continue  # as apply_credits: a period past its keep time is not written
                        board = boards[key]
                        board[subject] = board.get(subject, 0) + amount
                        expiry[key] = exp
                    if at.timestamp() > recent + 1:
                        recent_ids.append((credit_id, int(at.timestamp())))
                if len(lines) >= 100000:
                    copy.write("".join(lines))
                    lines = []
            copy.write("".join(lines))
        c.execute("SELECT setval('board_credits_id_seq', %s)", (credit_id,))
        c.execute("ANALYZE")
    _say(f"  board_credits: {credit_id} rows written in {time.time() - t0:.1f} s")

    t0 = time.time()
    r = redis_lib.Redis.from_url(REDIS_URL)
    big = board_key("member", "sales_fen", "all")
    order = [big] + [k for k in boards if k != big]  # the big board alone first: its memory is measured
    mem = {}
    for key in order:
        before = r.info("memory")["used_memory"] if key == big else 0
        pipe = r.pipeline(transaction=False)
        items = list(boards[key].items())
        for i in range(0, len(items), 5000):
            pipe.zadd(key, dict(items[i:i + 5000]))
        if expiry[key]:
            pipe.expireat(key, expiry[key])
        pipe.execute()
        if key == big:
            mem = {"used_memory_delta": r.info("memory")["used_memory"] - before, "members": len(items)}
    pipe = r.pipeline(transaction=False)
    for i, (cid, at_ts) in enumerate(recent_ids):  # applied when written: kept BOARDS_DEDUPE_DAYS from then
        pipe.set(dedupe_key(cid), "1", exat=at_ts + cfg.dedupe_days * 86400)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    _say(f"  Redis: {len(boards)} boards, {sum(len(b) for b in boards.values())} entries, {len(recent_ids)} "
         f"dedupe keys, loaded in {time.time() - t0:.1f} s")
    return {"credits": credit_id, "boards": len(boards), "big": big, "mem": mem}


def _sessions(first: int, now) -> list[tuple[int, str]]:
    """Logins (api_sessions rows) for SESSIONS random members and their bearer tokens."""
    import psycopg

    from app.identity import tokens

    rng = random.Random(3)
    members = rng.sample(range(first, first + MEMBERS), min(SESSIONS, MEMBERS))
    rows = [(m, os.urandom(16).hex(), hashlib.sha256(os.urandom(32)).hexdigest()) for m in members]
    with psycopg.connect(_pg_dsn(), autocommit=True) as c:
        out = c.execute("INSERT INTO api_sessions (member_id, family, refresh_hash, created_at, expires_at) "
                        "SELECT m, f, h, %s, %s FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS t(m, f, h) "
                        "RETURNING id, member_id",
                        (now, now + timedelta(days=30), [r[0] for r in rows], [r[1] for r in rows],
                         [r[2] for r in rows])).fetchall()
    return [(member, tokens.issue(SECRET, "member", member, sid)) for sid, member in out]


# -- HTTP ------------------------------------------------------------------------------------------------------

def _gunicorn(app: str, port: int, env: dict) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "gunicorn", "-w", str(WORKERS), "-k", "gthread", "--threads", str(THREADS),
           "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--keep-alive", "30", "--reuse-port", app]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, start_new_session=True)
    for _ in range(200):
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=0.5)
            return proc
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn for {app} did not start")


def _measure(app: str, env: dict, reqs: list) -> dict:
    from bench.loadgen import have_wrk
    from bench.loadgen import run as run_load

    port = free_port()
    proc = _gunicorn(app, port, env)
    try:
        base = f"http://127.0.0.1:{port}"
        run_load(base, reqs[: min(2000, len(reqs))], seconds=2)  # warm up workers, pools and caches
        return run_load(base, reqs if have_wrk() else reqs[:REQUESTS], seconds=SECONDS)
    finally:
        stop(proc)


def _measure_reads(reqs: list, check) -> dict:
    """The leaderboard and the trivial endpoint, both served (on their own ports) for the whole comparison and
    measured in turn, BENCH_ROUNDS times: the machine's speed drifts by a third within minutes, so one pair can
    land on a fast and a slow minute; each round's pair shares its minute. Then the leaderboard paced at half the
    trivial endpoint's median rate."""
    from bench.loadgen import have_wrk
    from bench.loadgen import run as run_load

    ports = free_port(), free_port()
    procs = [_gunicorn("bench.trivial_app:app", ports[0], {}), _gunicorn("wsgi:app", ports[1], ENV)]
    try:
        trivial_base, board_base = (f"http://127.0.0.1:{port}" for port in ports)
        if check:
            check(board_base)
        for base in (trivial_base, board_base):
            run_load(base, reqs[: min(2000, len(reqs))], seconds=2)  # warm up workers, pools and caches
        rounds = []
        for _ in range(ROUNDS):
            trivial = run_load(trivial_base, reqs if have_wrk() else reqs[:REQUESTS], seconds=SECONDS)
            board = run_load(board_base, reqs if have_wrk() else reqs[:REQUESTS], seconds=SECONDS)
            rounds.append({"trivial": trivial, "board": board, "ratio": board["rps"] / trivial["rps"]})
        paced = None
        if have_wrk():
            paced = _paced(board_base, reqs, statistics.median(r["trivial"]["rps"] for r in rounds) / 2)
        return {"rounds": rounds, "paced": paced}
    finally:
        for proc in procs:
            stop(proc)


def _paced(base: str, reqs: list, target: float) -> dict:
    """The same reads at a steady offered load of `target` req/s, for the latency at that rate: wrk's 64
    connections each pause between requests. A pause is whole milliseconds and each response's time adds to it,
    so a short first run measures the shortfall and the measured run asks for that much more."""
    from bench.loadgen import run_wrk

    first = run_wrk(base, reqs, seconds=4, rate=target)
    ask = target * target / first["rps"] if first["rps"] else target
    return {**run_wrk(base, reqs, seconds=SECONDS, rate=ask), "target": target}


def _check_answer(tokens: list[tuple[int, str]], key: str):
    """One request, compared with Redis: the top 50 and the caller's competition rank."""
    def check(base: str) -> None:
        member, token = tokens[0]
        resp = requests.get(base + PATH, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        resp.raise_for_status()
        body = resp.json()
        r = redis_lib.Redis.from_url(REDIS_URL)
        score = int(float(r.zscore(key, member)))
        rank = r.zcount(key, f"({score}", "+inf") + 1
        top = [int(m) for m, _ in r.zrevrange(key, 0, 49, withscores=True)]
        ok = (body["me"]["rank"] == rank and body["me"]["score"] == score and body["size"] == r.zcard(key)
              and [i["id"] for i in body["items"]] == top)
        if not ok:
            raise RuntimeError(f"the leaderboard answered {body['me']}, Redis says rank {rank} score {score}")
    return check


# -- raw Redis -------------------------------------------------------------------------------------------------

def _redis_worker(key: str, members: list[int], seconds: float, start_at: float, out) -> None:
    lat: list[float] = []
    lock = threading.Lock()

    def run(seed: int) -> None:
        r = redis_lib.Redis.from_url(REDIS_URL)
        rng = random.Random(seed)
        mine = []
        while time.time() < start_at:
            time.sleep(0.001)
        end = start_at + seconds
        while True:
            t0 = time.perf_counter()
            if time.time() >= end:
                break
            pipe = r.pipeline(transaction=False)
            member = rng.choice(members)
            pipe.zscore(key, member)
            pipe.zrevrank(key, member)
            pipe.zcard(key)
            pipe.execute()
            mine.append(time.perf_counter() - t0)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=run, args=(os.getpid() * 100 + i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(lat)


def _measure_redis(key: str, members: list[int], seconds: float = 5.0) -> dict:
    queue: mp.Queue = mp.Queue()
    start_at = time.time() + 0.5
    procs = [mp.Process(target=_redis_worker, args=(key, members, seconds, start_at, queue))
             for _ in range(WORKERS)]
    for p in procs:
        p.start()
    lat = sorted(x for _ in procs for x in queue.get())
    for p in procs:
        p.join()
    return {"n": len(lat), "rps": len(lat) / seconds, "p50_ms": lat[len(lat) // 2] * 1000,
            "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000, "errors": 0}


# -- updates ---------------------------------------------------------------------------------------------------

def _update_events(first: int, next_id: int, now) -> list[list]:
    """UPDATE_EVENTS sales by random team members (member, team, store credits), written to board_credits."""
    import psycopg

    from app.boards.store import Credit

    rng = random.Random(5)
    events, lines = [], []
    at_s = now.isoformat()
    for e in range(UPDATE_EVENTS):
        k = rng.randrange(MEMBERS)
        while _team_of(k) is None:
            k = rng.randrange(MEMBERS)
        amount = rng.randint(100, 50000)
        credits = []
        for kind, subject, league in (("member", first + k, _league_of(k)), ("team", _team_of(k), ""),
                                      ("store", _store_of(k), "")):
            credits.append(Credit(next_id, kind, subject, "sales_fen", amount, league, now))
            lines.append(f"{next_id}\t{MEMBERS + e + 1}\torder:{MEMBERS + e + 1}\t{kind}\t{subject}\tsales_fen\t"
                         f"{amount}\t{league}\t{at_s}\t{at_s}\n")
            next_id += 1
        events.append(credits)
    with psycopg.connect(_pg_dsn(), autocommit=True) as c:
        with c.cursor().copy("COPY board_credits (id, event_id, ref, subject_kind, subject_id, metric, amount, "
                             "league, at, created_at) FROM STDIN") as copy:
            copy.write("".join(lines))
        c.execute("SELECT setval('board_credits_id_seq', %s)", (next_id - 1,))
    return events


def _update_worker(events: list[list], start_at: float, out) -> None:
    from app.boards.store import apply_credits
    from app.config import BoardSettings

    r = redis_lib.Redis.from_url(REDIS_URL)
    cfg = BoardSettings()
    apply_credits(r, [], cfg)
    while time.time() < start_at:
        time.sleep(0.001)
    applied = 0
    for credits in events:
        applied += apply_credits(r, credits, cfg).count(1)
    out.put((time.time(), applied))


def _measure_updates(events: list[list]) -> dict:
    queue: mp.Queue = mp.Queue()
    start_at = time.time() + 1.0
    procs = [mp.Process(target=_update_worker, args=(events[i::UPDATE_PROCESSES], start_at, queue))
             for i in range(UPDATE_PROCESSES)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    wall = max(t for t, _ in results) - start_at
    credits = sum(len(e) for e in events)
    return {"events": len(events), "credits": credits, "applied": sum(a for _, a in results), "seconds": wall,
            "eps": len(events) / wall}


# -- rebuild ---------------------------------------------------------------------------------------------------

def _board_keys(r) -> list[str]:
    from app.boards.store import PREFIX, REBUILDING

    return sorted(k.decode() for k in r.scan_iter(match=f"{PREFIX}:*", count=5000)
                  if not k.startswith(f"{PREFIX}:applied:".encode()) and k.decode() != REBUILDING)


def _snapshot(r, big: str) -> dict:
    keys = _board_keys(r)
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.zcard(key)
        pipe.expiretime(key)
        pipe.zrevrange(key, 0, 99, withscores=True)
    raw = pipe.execute()
    boards = {key: raw[3 * i: 3 * i + 3] for i, key in enumerate(keys)}
    sample = r.zrandmember(big, min(SAMPLE, r.zcard(big)), withscores=True)
    pairs = {m: float(s) for m, s in zip(sample[::2], sample[1::2], strict=True)}
    dedupe = sum(1 for _ in r.scan_iter(match="lb:applied:*", count=5000))
    return {"boards": boards, "sample": pairs, "dedupe": dedupe}


def _compare(r, before: dict, big: str, recent: int) -> list[str]:
    after = _snapshot(r, big)
    problems = []
    if sorted(after["boards"]) != sorted(before["boards"]):
        missing = set(before["boards"]) - set(after["boards"])
        extra = set(after["boards"]) - set(before["boards"])
        problems.append(f"boards differ: {len(missing)} missing, {len(extra)} extra")
    for key, (size, expire, top) in before["boards"].items():
        got = after["boards"].get(key)
        if got is None:
            continue
        if got[0] != size or got[1] != expire or got[2] != top:
            problems.append(f"{key}: size {size}->{got[0]}, expiry {expire}->{got[1]}, top 100 "
                            f"{'same' if got[2] == top else 'differs'}")
    members = list(before["sample"])
    scores = r.zmscore(big, members) if members else []
    wrong = sum(1 for m, s in zip(members, scores, strict=True) if s != before["sample"][m])
    if wrong:
        problems.append(f"{wrong} of {len(members)} sampled members of {big} differ")
    if after["dedupe"] != recent:
        problems.append(f"{after['dedupe']} dedupe keys for {recent} recent credits")
    return problems


def _rebuild(big: str) -> tuple[dict, float, list[str], dict]:
    from app.boards import service
    from app.config import BoardSettings
    from app.db import make_engine, make_session_factory

    r = redis_lib.Redis.from_url(REDIS_URL)
    before = _snapshot(r, big)
    r.flushdb()
    engine = make_engine(DB_URL)
    t0 = time.time()
    with make_session_factory(engine)() as s:
        report = service.rebuild(s, r, BoardSettings())
        s.commit()
    seconds = time.time() - t0
    engine.dispose()
    return report, seconds, _compare(r, before, big, report["credits_recent"]), before


# -- main ------------------------------------------------------------------------------------------------------

def _line(name: str, res: dict) -> str:
    return (f"  {name:<34}: {res['rps']:8.0f} req/s  p50 {res['p50_ms']:6.2f} ms  p99 {res['p99_ms']:6.2f} ms  "
            f"errors {res['errors']}")


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    from app.boards.store import board_key
    from app.config import BoardSettings
    from app.db import utcnow

    from bench.loadgen import have_wrk

    t_start = time.time()
    cfg = BoardSettings()
    now = utcnow()
    _say(f"boards bench: {MEMBERS} members, one sale each over the last {DAYS} days, leagues {LEAGUES or 'none'}")
    redis_lib.Redis.from_url(REDIS_URL).flushdb()
    t0 = time.time()
    first = _prepare_database()
    _say(f"  members: {MEMBERS} rows in a fresh migrated database in {time.time() - t0:.1f} s")
    loaded = _load(first, now, cfg)
    big = loaded["big"]
    key = board_key("member", "sales_fen", PERIOD) if PERIOD == "all" else None
    t0 = time.time()
    tokens = _sessions(first, now)
    _say(f"  {len(tokens)} members signed in (api_sessions rows, bearer tokens) in {time.time() - t0:.1f} s")

    rng = random.Random(11)
    count = max(REQUESTS, 200000) if have_wrk() else REQUESTS
    reqs = [(PATH, None, {"Authorization": f"Bearer {rng.choice(tokens)[1]}"}) for _ in range(count)]
    reads = _measure_reads(reqs, _check_answer(tokens, key) if key else None)
    floor = _measure("bench.member_noop_app:app", ENV, [("/bench/signed-noop", None, h) for _, _, h in reqs])
    signin = _measure("bench.member_noop_app:app", ENV, [("/bench/member-noop", None, h) for _, _, h in reqs])
    raw = _measure_redis(big, [m for m, _ in tokens])

    t0 = time.time()
    events = _update_events(first, loaded["credits"] + 1, utcnow())
    _say(f"  {len(events)} update events written to board_credits in {time.time() - t0:.1f} s")
    updates = _measure_updates(events)

    r = redis_lib.Redis.from_url(REDIS_URL)
    size = r.zcard(big)
    usage = r.memory_usage(big, samples=0) / size
    delta = loaded["mem"]["used_memory_delta"] / loaded["mem"]["members"]

    report, rebuild_s, problems, before = _rebuild(big)

    client = "wrk, 16 connections, 1 thread" if have_wrk() else "python loadgen, 4 processes x 4 threads"
    _say("")
    _say(f"load generator: {client}; gunicorn {WORKERS}x{THREADS} gthread; board {big}: {size} members")
    rounds = reads["rounds"]
    for i, rnd in enumerate(rounds, 1):
        _say(_line(f"round {i}: trivial Flask endpoint", rnd["trivial"]))
        _say(_line(f"round {i}: GET /api/mp/leaderboard ({PERIOD})", rnd["board"]) + f"  ratio {rnd['ratio']:.2f}")
    paced = reads["paced"]
    if paced:
        _say(_line(f"  paced for {paced['target']:.0f}/s (64 conn.)", paced))
    trivial_rps = statistics.median(r["trivial"]["rps"] for r in rounds)
    board_rps = statistics.median(r["board"]["rps"] for r in rounds)
    ratio_t = statistics.median(r["ratio"] for r in rounds)
    p99 = statistics.median(r["board"]["p99_ms"] for r in rounds)
    errors = sum(r["board"]["errors"] for r in rounds)
    _say(_line("member token only (real app)", floor))
    _say(_line("member sign-in through PostgreSQL (real app)", signin))
    _say(_line(f"raw Redis ZSCORE+ZREVRANK+ZCARD ({WORKERS}x{THREADS})", raw))
    _say(f"  medians of {len(rounds)} rounds: trivial {trivial_rps:.0f} req/s, leaderboard {board_rps:.0f} req/s, "
         f"p99 {p99:.1f} ms")
    each = ", ".join(f"{r['ratio']:.2f}" for r in rounds)
    _say(f"  ratios: leaderboard/trivial {ratio_t:.2f} (rounds {each}), "
         f"leaderboard/redis {board_rps / raw['rps']:.2f}, token only/trivial {floor['rps'] / trivial_rps:.2f}, "
         f"leaderboard/token only {board_rps / floor['rps']:.2f}, sign-in through PostgreSQL/trivial "
         f"{signin['rps'] / trivial_rps:.2f}")
    _say(f"  updates: {updates['events']} events ({updates['credits']} credits, {updates['applied']} applied) by "
         f"{UPDATE_PROCESSES} processes in {updates['seconds']:.1f} s: {updates['eps']:.0f} events/s "
         f"({updates['credits'] / updates['seconds']:.0f} credits/s)")
    _say(f"  Redis memory of {big}: {usage:.1f} bytes/member/board (MEMORY USAGE); "
         f"{delta:.1f} (used_memory growth while loading it)")
    _say(f"  rebuild from PostgreSQL ({loaded['credits'] + updates['credits']} credits, {report['boards']} boards, "
         f"{report['credits_recent']} recent credits' dedupe keys) after FLUSHDB: {rebuild_s:.1f} s; "
         f"{len(before['boards'])} boards compared (size, expiry, top 100), {len(before['sample'])} sampled "
         f"members of {big}: {'identical' if not problems else '; '.join(problems[:5])}")
    _say("targets:")
    _say(f"  {_verdict(ratio_t >= 0.5)} leaderboard reads >= 0.5 x trivial: {ratio_t:.2f} (median of "
         f"{len(rounds)} rounds; lowest {min(r['ratio'] for r in rounds):.2f})")
    at_half = f" (paced at half the trivial rate: {paced['p99_ms']:.1f} ms at {paced['rps']:.0f}/s)" if paced else ""
    _say(f"  {_verdict(p99 < 20 and errors == 0)} leaderboard p99 < 20 ms: {p99:.1f} ms (median of {len(rounds)} "
         f"rounds; highest {max(r['board']['p99_ms'] for r in rounds):.1f} ms), {errors} errors{at_half}")
    _say(f"  {_verdict(updates['eps'] >= 5000 and updates['applied'] == updates['credits'])} updates >= 5,000 "
         f"events/s: {updates['eps']:.0f}")
    _say(f"  {_verdict(usage <= 100)} <= 100 bytes/member/board: {usage:.1f} by MEMORY USAGE "
         f"({delta:.1f} by used_memory growth)")
    _say(f"  {_verdict(rebuild_s < 60 and not problems)} rebuild < 60 s and identical: {rebuild_s:.1f} s")
    _say(f"total bench time {time.time() - t_start:.0f} s")


if __name__ == "__main__":
    main()
