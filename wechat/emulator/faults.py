"""Fault injection, set per test over HTTP (/_sim/faults) or in-process (`emulator.faults.add(...)`).

A rule matches operation names with fnmatch (`pay.create`, `pay.*`, `sns.jscode2session`, `*`):
- kind="latency": sleep `seconds` before answering;
- kind="timeout": sleep `seconds` (past the client's timeout); phase="before" drops the request unprocessed,
  phase="after" processes it first (the client never learns the outcome);
- kind="error": answer with `error` ("SYSTEM_ERROR", or an HTTP status such as 500/502/503), before or after
  processing.
`count` limits a rule to the next N matching calls; `rate` (0..1) fires it randomly."""
from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import asdict, dataclass


@dataclass
class Fault:
    target: str
    kind: str  # latency | timeout | error
    seconds: float = 0.0
    error: str = "SYSTEM_ERROR"
    phase: str = "before"
    count: int | None = None
    rate: float | None = None
    fired: int = 0


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self.rules: list[Fault] = []
        # notification faults: list of {"mode": drop|duplicate|reorder, "count": n}
        self.notify: list[dict] = []
        self.push_repeat = 1  # deliver every push this many times (WeChat retries: 3)

    def add(self, target: str = "*", kind: str = "error", **kw) -> Fault:
        if kind not in ("latency", "timeout", "error"):
            raise ValueError(f"unknown fault kind {kind!r}")
        rule = Fault(target=target, kind=kind, **kw)
        with self._lock:
            self.rules.append(rule)
        return rule

    def add_notify(self, mode: str, count: int = 1) -> None:
        if mode not in ("drop", "duplicate", "reorder"):
            raise ValueError(f"unknown notification fault {mode!r}")
        with self._lock:
            self.notify.append({"mode": mode, "count": count})

    def take_notify(self) -> str | None:
        with self._lock:
            for rule in self.notify:
                if rule["count"] > 0:
                    rule["count"] -= 1
                    return rule["mode"]
        return None

    def take(self, op: str) -> list[Fault]:
        fired = []
        with self._lock:
            for rule in self.rules:
                if not fnmatch.fnmatchcase(op, rule.target):
                    continue
                if rule.count is not None and rule.count <= 0:
                    continue
                if rule.rate is not None and random.random() >= rule.rate:
                    continue
                if rule.count is not None:
                    rule.count -= 1
                rule.fired += 1
                fired.append(rule)
        return fired

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.notify.clear()
            self.push_repeat = 1

    def describe(self) -> dict:
        with self._lock:
            return {"rules": [asdict(r) for r in self.rules], "notify": [dict(n) for n in self.notify],
                    "push_repeat": self.push_repeat}
