"""The racing helper really runs its calls at once, and hands back what each returned or raised, in order."""
import threading

import pytest

from tests.racing import Background, errors, race


def test_all_calls_are_inside_fn_at_the_same_time():
    inside = threading.Barrier(8)  # passes only if all 8 calls are running together
    assert race(8, lambda i: inside.wait(timeout=5) is not None and i) == list(range(8))


def test_each_outcome_is_the_result_or_the_exception_in_call_order():
    def fn(i):
        if i % 2:
            raise ValueError(i)
        return i * 10

    outcomes = race(4, fn)
    assert outcomes[0] == 0 and outcomes[2] == 20
    assert [e.args for e in errors(outcomes)] == [(1,), (3,)]


def test_a_call_that_hangs_fails_the_race():
    release = threading.Event()
    with pytest.raises(AssertionError, match="still running"):
        race(2, lambda i: release.wait(5) if i else None, timeout=0.3)
    release.set()


def test_background_raises_what_its_call_raised():
    with pytest.raises(KeyError):
        Background(lambda: {}["missing"]).result(timeout=5)
    assert Background(lambda: 42).result(timeout=5) == 42
