"""Racing threads: start several calls at the same instant and collect what each returned or raised.

    outcomes = race(2, lambda i: ingest(events[i]))          # [result or exception, ...] in call order
    race(20, in_transaction(rt, lambda s, i: request_withdrawal(s, ...)))  # each call in its own transaction

A thread that has not finished within `timeout` fails the test (a hang is a finding, never a silent pass)."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable


def race(n: int, fn: Callable[[int], Any], *, timeout: float = 60.0) -> list[Any]:
    """Call fn(0) .. fn(n-1) on n threads released together by a barrier. Returns, in order, what each call
    returned, or the exception it raised."""
    barrier = threading.Barrier(n)
    outcomes: list[Any] = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait(timeout)
            outcomes[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,), name=f"race-{i}", daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    hung = [t.name for t in threads if t.is_alive()]
    assert not hung, f"{hung} still running after {timeout} s"
    return outcomes


def errors(outcomes: list[Any]) -> list[BaseException]:
    return [o for o in outcomes if isinstance(o, BaseException)]


def in_transaction(rt, fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn(session, *args) as a call that runs in its own session: committed when it returns, rolled back when
    it raises (the exception goes on to `race`), always closed."""
    def call(*args):
        s = rt.sessions()
        try:
            result = fn(s, *args)
            s.commit()
            return result
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()
    return call


class Background:
    """fn() running on a thread while the test holds a lock it needs; `result()` waits and returns or raises."""

    def __init__(self, fn: Callable[[], Any]):
        self._outcome: list[Any] = []
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True, name="background")
        self._thread.start()

    def _run(self, fn):
        try:
            self._outcome.append((True, fn()))
        except BaseException as exc:  # noqa: BLE001 - re-raised in result()
            self._outcome.append((False, exc))

    def result(self, timeout: float = 60.0) -> Any:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"still running after {timeout} s"
        ok, value = self._outcome[0]
        if not ok:
            raise value
        return value
