"""A small closed-loop HTTP load generator: P processes × T threads, keep-alive connections, prebuilt requests.

A request is (path, body) for a POST with a text/xml body, (path, None) for a GET, either optionally followed by a
dict of extra headers: (path, None, {"Authorization": ...}). Returns wall time and per-request latencies; used by
the benchmarks to measure a server and its baseline with exactly the same client."""
from __future__ import annotations

import http.client
import multiprocessing as mp
import threading
import time
from urllib.parse import urlsplit


def _worker(host: str, port: int, requests: list[tuple], out, start_at: float) -> None:
    lat: list[float] = []
    errors = 0
    lock = threading.Lock()
    chunks = [requests[i::THREADS] for i in range(THREADS)]

    def run(chunk):
        nonlocal errors
        conn = http.client.HTTPConnection(host, port, timeout=30)
        mine = []
        for path, body, *extra in chunk:
            headers = dict(extra[0]) if extra else {}
            if body is not None:
                headers["Content-Type"] = "text/xml"
            t0 = time.perf_counter()
            try:
                conn.request("GET" if body is None else "POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=30)
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
            mine.append(time.perf_counter() - t0)
            if not ok:
                with lock:
                    errors += 1
        with lock:
            lat.extend(mine)

    while time.time() < start_at:
        time.sleep(0.001)
    threads = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((lat, errors))


THREADS = 4


def run_load(base_url: str, requests: list[tuple], processes: int = 4) -> dict:
    parts = urlsplit(base_url)
    queue: mp.Queue = mp.Queue()
    start_at = time.time() + 0.5
    procs = [mp.Process(target=_worker, args=(parts.hostname, parts.port, requests[i::processes], queue, start_at))
             for i in range(processes)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    end = time.time()
    for p in procs:
        p.join()
    lat = sorted(x for r in results for x in r[0])
    errors = sum(r[1] for r in results)
    wall = end - start_at
    return {"n": len(lat), "errors": errors, "seconds": wall, "rps": len(lat) / wall,
            "p50_ms": lat[len(lat) // 2] * 1000, "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000}


def have_wrk() -> bool:
    import shutil

    return shutil.which("wrk") is not None


def run_wrk(base_url: str, requests: list[tuple], connections: int = 16, threads: int = 1,
            seconds: int = 10, rate: float | None = None) -> dict:
    """A closed loop with wrk (C, epoll), so the client takes little CPU from the server under test. wrk runs for
    a fixed time: pass more requests than can be sent in it; each is sent at most once. With `rate` (requests/s),
    each connection pauses connections/rate seconds before each request: a steady offered load just under `rate`
    (the pause does not count in the measured latency)."""
    import json
    import os
    import subprocess
    import tempfile
    from pathlib import Path

    if rate:  # many slow connections: the response time then adds little to each connection's pause
        connections = max(connections, 64)
    method = "GET" if requests[0][1] is None else "POST"
    with tempfile.NamedTemporaryFile("w", suffix=".reqs", delete=False) as f:
        for path, body, *extra in requests:  # path[\x01Name: value...]\tbody (wrk_requests.lua)
            head = "".join(f"\x01{k}: {v}" for k, v in (extra[0].items() if extra else ()))
            f.write(path + head + "\t" + (body or b"").decode().replace("\n", "").replace("\r", "") + "\n")
        name = f.name
    script = Path(__file__).with_name("wrk_requests.lua")
    try:
        env = {**os.environ, "WRK_REQUESTS": name, "WRK_METHOD": method, "WRK_THREADS": str(threads),
               "WRK_DELAY_MS": str(round(connections * 1000 / rate) if rate else 0)}
        out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
                              "--timeout", "10s", "-s", str(script), base_url], env=env,
                             capture_output=True, text=True, timeout=400, check=True).stdout
    finally:
        os.unlink(name)
    stats = json.loads(out.strip().splitlines()[-1])
    return {"n": stats["requests"], "errors": stats["non2xx"] + stats["socket_errors"], "seconds": stats["seconds"],
            "rps": stats["requests"] / stats["seconds"], "p50_ms": stats["p50_us"] / 1000,
            "p99_ms": stats["p99_us"] / 1000,
            **{k: stats[k[:-3] + "_us"] / 1000 for k in ("p90_ms", "p999_ms", "max_ms") if k[:-3] + "_us" in stats}}


def run(base_url: str, requests: list[tuple], seconds: int = 10, rate: float | None = None) -> dict:
    """wrk when installed (for `seconds`; paced at `rate` if given), else the Python client (all requests, as
    fast as it can: it cannot pace)."""
    if have_wrk():
        return run_wrk(base_url, requests, seconds=seconds, rate=rate)
    return run_load(base_url, requests)
