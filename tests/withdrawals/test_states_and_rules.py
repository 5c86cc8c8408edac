"""Pure rules: the withdrawal state table and the fee/tax/limit arithmetic, without a database."""
import pytest

from app.errors import IllegalTransition
from app.withdrawals import states as S
from app.withdrawals.rules import Rule, RuleViolation, quote, validate_rule


@pytest.mark.parametrize("current,action,after", [
    (S.REVIEWING, "approve", S.APPROVED), (S.REVIEWING, "reject", S.REJECTED), (S.REVIEWING, "cancel", S.CANCELLED),
    (S.APPROVED, "cancel", S.CANCELLED), (S.APPROVED, "submit", S.SUBMITTING), (S.SUBMITTING, "submit", S.SUBMITTING),
    (S.SUBMITTING, "refused", S.FAIL)])
def test_local_moves(current, action, after):
    assert S.local(current, action) == after


@pytest.mark.parametrize("current,action", [
    (S.APPROVED, "approve"), (S.REJECTED, "approve"), (S.SUCCESS, "reject"), (S.APPROVED, "reject"),
    (S.WAIT_USER_CONFIRM, "cancel"), (S.SUBMITTING, "cancel"), (S.SUCCESS, "submit"), (S.REVIEWING, "submit")])
def test_illegal_local_moves_are_refused(current, action):
    with pytest.raises(IllegalTransition):
        S.local(current, action)


@pytest.mark.parametrize("current,report,move", [
    (S.SUBMITTING, S.WAIT_USER_CONFIRM, S.Move.APPLY), (S.SUBMITTING, S.SUCCESS, S.Move.APPLY),
    (S.APPROVED, S.ACCEPTED, S.Move.APPLY), (S.WAIT_USER_CONFIRM, S.SUCCESS, S.Move.APPLY),
    (S.WAIT_USER_CONFIRM, S.CANCELLED, S.Move.APPLY), (S.WAIT_USER_CONFIRM, S.CANCELING, S.Move.APPLY),
    (S.CANCELING, S.CANCELLED, S.Move.APPLY), (S.TRANSFERING, S.FAIL, S.Move.APPLY),
    (S.SUCCESS, S.SUCCESS, S.Move.SAME), (S.WAIT_USER_CONFIRM, S.WAIT_USER_CONFIRM, S.Move.SAME),
    (S.WAIT_USER_CONFIRM, S.ACCEPTED, S.Move.STALE), (S.TRANSFERING, S.WAIT_USER_CONFIRM, S.Move.STALE)])
def test_reports_from_wechat(current, report, move):
    assert S.reported(current, report) is move


@pytest.mark.parametrize("current,report", [
    (S.SUCCESS, S.FAIL), (S.FAIL, S.SUCCESS), (S.CANCELLED, S.SUCCESS), (S.SUCCESS, S.WAIT_USER_CONFIRM),
    (S.REJECTED, S.SUCCESS), (S.REVIEWING, S.SUCCESS)])
def test_final_states_never_change(current, report):
    with pytest.raises(IllegalTransition):
        S.reported(current, report)


def test_fee_and_tax_round_down_in_the_members_favour():
    rule = Rule(min_fen=10, fee_bps=60, fee_fixed_fen=1, tax_threshold_fen=80_000, tax_bps=2000)
    q = quote(rule, 80_199)  # fee 481.194 -> 481 + 1; tax on 199 fen at 20% = 39.8 -> 39
    assert (q.fee_fen, q.tax_fen) == (482, 39)
    assert q.net_fen == 80_199 - 482 - 39
    assert quote(rule, 80_000).tax_fen == 0


def test_limits_are_checked_with_todays_requests():
    rule = Rule(min_fen=100, max_fen=5_000, daily_max_fen=8_000, daily_count=2)
    with pytest.raises(RuleViolation) as e:
        quote(rule, 99)
    assert e.value.code == "amount_below_minimum"
    assert pytest.raises(RuleViolation, quote, rule, 5_001).value.code == "amount_above_maximum"
    assert pytest.raises(RuleViolation, quote, rule, 4_000, today_fen=4_001, today_count=1).value.code == \
        "daily_amount_exceeded"
    assert pytest.raises(RuleViolation, quote, rule, 100, today_count=2).value.code == "daily_count_exceeded"
    assert quote(rule, 4_000, today_fen=4_000, today_count=1).net_fen == 4_000


def test_net_below_wechat_minimum_is_refused():
    rule = Rule(min_fen=10, fee_fixed_fen=5)
    assert pytest.raises(RuleViolation, quote, rule, 14).value.code == "net_below_minimum"
    assert quote(rule, 15).net_fen == 10


def test_real_name_needed_from_wechats_threshold_or_a_lower_one():
    assert not quote(Rule(), 199_999).needs_real_name
    assert quote(Rule(), 200_000).needs_real_name
    assert quote(Rule(real_name_from_fen=50_000), 50_000).needs_real_name
    with pytest.raises(RuleViolation):
        validate_rule(Rule(real_name_from_fen=300_000))
    with pytest.raises(RuleViolation):
        validate_rule(Rule(min_fen=5))
