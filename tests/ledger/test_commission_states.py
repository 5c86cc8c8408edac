"""The commission state table, without a database."""
import pytest

from app.commissions.rules import transition
from app.errors import IllegalTransition


@pytest.mark.parametrize("state,action,after", [
    ("pending", "mature", "available"), ("pending", "hold", "held"), ("held", "release", "pending"),
    ("available", "reverse_all", "reversed"), ("held", "cancel", "canceled")])
def test_commission_moves(state, action, after):
    assert transition(state, action) == after


@pytest.mark.parametrize("state,action", [
    ("available", "mature"), ("held", "mature"), ("reversed", "reverse_all"), ("canceled", "cancel"),
    ("available", "hold")])
def test_illegal_commission_moves_raise_the_one_illegal_transition(state, action):
    with pytest.raises(IllegalTransition) as refused:
        transition(state, action)
    assert (refused.value.state, refused.value.move) == (state, action)
    assert str(refused.value) == f"a {state} commission cannot be {action}"
