"""The ledger API the rest of the product builds on: balanced, idempotent, cached balances that prove out."""
import pytest
from sqlalchemy import text

from app.errors import Conflict, ValidationFailed
from app.ledger.service import (check_ledger, member_account, member_balances, platform_account, post_entry)


@pytest.mark.sqlite
def test_a_balanced_entry_moves_money_and_the_books_prove_out(session, world):
    m = world.member()
    available, fees = member_account(session, m.id, "available"), platform_account(session, "fees")
    posted = post_entry(session, "test:1", [(available, 1234), (fees, -1234)], "adjustment")
    assert posted.created
    assert member_balances(session, m.id) == {"pending": 0, "available": 1234, "withdrawing": 0}
    assert check_ledger(session).ok


@pytest.mark.sqlite
def test_check_says_when_pending_money_has_no_commission_behind_it(session, world):
    m = world.member()
    pending, expense = member_account(session, m.id, "pending"), platform_account(session, "commission_expense")
    post_entry(session, "test:1", [(pending, 1234), (expense, -1234)], "commission_accrued")
    report = check_ledger(session)
    assert report.pending_mismatches == [{"member_id": m.id, "pending_fen": 1234, "open_commissions_fen": 0}]


@pytest.mark.sqlite
def test_replaying_a_key_changes_nothing_and_returns_the_same_entry(session, world):
    m = world.member()
    a, b = member_account(session, m.id, "available"), member_account(session, m.id, "withdrawing")
    first = post_entry(session, "withdrawal:9:request", [(a, -500), (b, 500)], "withdrawal_requested")
    again = post_entry(session, "withdrawal:9:request", [(b, 500), (a, -500)], "withdrawal_requested")
    assert again.entry_id == first.entry_id and not again.created
    assert member_balances(session, m.id) == {"pending": 0, "available": -500, "withdrawing": 500}


@pytest.mark.sqlite
def test_replaying_a_key_with_other_amounts_is_refused(session, world):
    m = world.member()
    a, b = member_account(session, m.id, "available"), member_account(session, m.id, "withdrawing")
    post_entry(session, "withdrawal:9:request", [(a, -500), (b, 500)], "withdrawal_requested")
    with pytest.raises(Conflict) as err:
        post_entry(session, "withdrawal:9:request", [(a, -600), (b, 600)], "withdrawal_requested")
    assert err.value.code == "ledger_key_reused"


@pytest.mark.parametrize("lines, code", [
    ([(1, 100), (2, -99)], "ledger_unbalanced"),
    ([(1, 100)], "ledger_unbalanced"),
    ([(1, 100.0), (2, -100.0)], "ledger_not_integer"),
    ([(1, True), (2, -1)], "ledger_not_integer"),
    ([(1, 0), (2, 0)], "ledger_zero_line"),
])
@pytest.mark.sqlite
def test_unbalanced_or_non_integer_lines_are_refused(session, world, lines, code):
    m = world.member()
    ids = [member_account(session, m.id, "pending"), platform_account(session, "fees")]
    lines = [(ids[i - 1], v) for i, v in lines]
    with pytest.raises(ValidationFailed) as err:
        post_entry(session, "bad:1", lines, "test")
    assert err.value.code == code
    assert session.execute(text("SELECT COUNT(*) FROM journal_entries")).scalar() == 0


@pytest.mark.sqlite
def test_check_detects_a_tampered_cached_balance(session, world):
    m = world.member()
    pending, expense = member_account(session, m.id, "pending"), platform_account(session, "commission_expense")
    post_entry(session, "test:1", [(pending, 300), (expense, -300)], "commission_accrued")
    session.execute(text("UPDATE ledger_accounts SET balance_fen = balance_fen + 1 WHERE id = :i"), {"i": pending})
    report = check_ledger(session)
    assert not report.ok
    assert [r["code"] for r in report.mismatched_accounts] == [f"member:{m.id}:pending"]
    assert report.total_balance_fen == 1


@pytest.mark.sqlite
def test_check_detects_an_unbalanced_entry_written_behind_its_back(session, world):
    m = world.member()
    pending, expense = member_account(session, m.id, "pending"), platform_account(session, "commission_expense")
    posted = post_entry(session, "test:1", [(pending, 300), (expense, -300)], "commission_accrued")
    session.execute(text("UPDATE journal_lines SET amount_fen = 301 WHERE entry_id = :e AND amount_fen = 300"),
                    {"e": posted.entry_id})
    report = check_ledger(session)
    assert [r["key"] for r in report.unbalanced_entries] == ["test:1"]


@pytest.mark.sqlite
def test_accounts_are_created_once_per_member_and_kind(session, world):
    m = world.member()
    assert member_account(session, m.id, "pending") == member_account(session, m.id, "pending")
    assert member_account(session, m.id, "pending") != member_account(session, m.id, "available")
    with pytest.raises(ValueError):
        member_account(session, m.id, "commission_expense")


def test_a_fresh_posting_moves_money_in_one_go_and_refuses_an_existing_key(session, world):
    from sqlalchemy.exc import IntegrityError

    from app.ledger.service import EntrySpec, post_entries

    m = world.member()
    pending, expense = member_account(session, m.id, "pending"), platform_account(session, "commission_expense")
    posted = post_entries(session, [
        EntrySpec("order:1:paid:L1", [(pending, 70), (expense, -70)], "commission_accrued"),
        EntrySpec("order:1:paid:L2", [(pending, 30), (expense, -30)], "commission_accrued")], fresh=True)
    assert [p.created for p in posted] == [True, True]
    assert member_balances(session, m.id)["pending"] == 100
    with pytest.raises(IntegrityError):
        with session.begin_nested():
            post_entries(session, [EntrySpec("order:1:paid:L1", [(pending, 70), (expense, -70)], "x")], fresh=True)
    assert member_balances(session, m.id)["pending"] == 100
