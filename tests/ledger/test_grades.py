"""Grades rise automatically when the measured figures meet a rule; operator grants stick; all changes recorded."""
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from app.grades.service import create_grade, evaluate_member_grade, figures, grade_history, grade_of, grant_grade
from app.orders.service import ingest_order_event
from tests.factories import paid, refunded

pytestmark = pytest.mark.sqlite  # also runs on SQLite (embedded mode): LIEBIAN_TEST_DB=sqlite


def test_figures_measure_personal_sales_referrals_downline_size_and_downline_sales_net_of_refunds(session, world):
    world.plan()
    upline = world.member("upline", partner=True)
    a = world.member("a", referrer=upline, partner=True)
    b = world.member("b", referrer=a)
    world.member("c", referrer=b)
    ingest_order_event(session, paid("SO1", world.unionid(upline), 1000))
    ingest_order_event(session, paid("SO2", world.unionid(b), 5000))
    ingest_order_event(session, refunded("SO2", "R1", 2000))
    f = figures(session, upline.id)
    assert (f.personal_sales_fen, f.direct_referrals, f.downline_size, f.downline_sales_fen) == (1000, 1, 3, 3000)


def test_a_member_is_upgraded_when_a_rule_is_met_and_the_reason_is_recorded(session, world):
    world.plan()
    create_grade(session, code="member", rank=0)
    create_grade(session, code="gold", rank=1, min_direct_referrals=2, min_downline_sales_fen=10000)
    create_grade(session, code="diamond", rank=2, min_downline_size=100)
    upline = world.member("upline", partner=True)
    x = world.member("x", referrer=upline)
    assert evaluate_member_grade(session, upline.id) is None
    y = world.member("y", referrer=upline)
    ingest_order_event(session, paid("SO1", world.unionid(x), 6000))
    assert evaluate_member_grade(session, upline.id) is None  # downline sales 6000 < 10000
    ingest_order_event(session, paid("SO2", world.unionid(y), 4000))
    change = evaluate_member_grade(session, upline.id)
    assert change["to"] == "gold" and "downline_sales_fen=10000" in change["reason"]
    assert grade_of(session, upline.id) == "gold"
    assert evaluate_member_grade(session, upline.id) is None  # no repeat change


def test_automatic_rules_never_demote_and_never_lower_a_granted_grade(session, world):
    create_grade(session, code="member", rank=0)
    create_grade(session, code="gold", rank=1, min_direct_referrals=1)
    create_grade(session, code="diamond", rank=2, min_direct_referrals=1000)
    m = world.member("m", partner=True)
    grant_grade(session, m.id, "diamond", reason="founding partner", actor="operator:1")
    world.member("r", referrer=m)
    assert evaluate_member_grade(session, m.id) is None
    assert grade_of(session, m.id) == "diamond"
    assert [h["reason"] for h in grade_history(session, m.id)] == ["granted: founding partner"]


def test_grades_are_evaluated_by_a_subscriber_of_the_paid_order_after_commit(rt, session, world, work):
    from app.grades.jobs import evaluate_grades

    create_grade(session, code="member", rank=0)
    create_grade(session, code="gold", rank=1, min_personal_sales_fen=100)
    world.plan()
    m = world.member("m")
    ingest_order_event(session, paid("SO1", world.unionid(m), 500))
    assert grade_of(session, m.id) == "member"  # nothing in the request's transaction
    session.commit()
    work()
    session.expire_all()
    assert grade_of(session, m.id) == "gold"
    assert evaluate_grades(rt, [m.id]) == []  # idempotent


def test_flask_ledger_check_exits_non_zero_on_a_tampered_balance(app, session, world):
    from app.ledger.cli import register_ledger_cli

    if "ledger" not in app.cli.commands:
        register_ledger_cli(app)
    world.plan()
    _, _, buyer = world.chain()
    ingest_order_event(session, paid("SO1", world.unionid(buyer), 10000))
    session.commit()
    runner = CliRunner()
    ok = runner.invoke(app.cli, ["ledger", "check"])
    assert ok.exit_code == 0 and "OK" in ok.output
    session.execute(text("UPDATE ledger_accounts SET balance_fen = balance_fen + 7 WHERE kind = 'commission_expense'"))
    session.commit()
    bad = runner.invoke(app.cli, ["ledger", "check"])
    assert bad.exit_code == 1
    assert "MISMATCH account platform:commission_expense" in bad.output
