"""The CLI feels like a tool: quiet, one-line refusals with a non-zero exit, help everywhere, periodic jobs on
demand, operator management. Driven the way `flask --app wsgi ...` runs it: click's runner over a FlaskGroup that
creates the app while resolving the command."""
from __future__ import annotations

import logging

import click
import pytest
from click.testing import CliRunner
from flask.cli import FlaskGroup
from sqlalchemy import select

from app import create_app
from app.audit.models import AuditEntry
from app.db import make_engine, make_session_factory
from app.identity.operators import create_operator
from app.members.models import Operator
from app.runtime import Runtime

PERIODIC = ["boards.freeze_contests", "commissions.mature_due", "events.prune", "grades.evaluate_all",
            "referrals.renew_temporary_qr_codes", "withdrawals.reconcile"]


@pytest.fixture
def cli_logging(monkeypatch):
    """Logging as a fresh `flask` process has it (no handlers yet), restored afterwards for the other tests."""
    root = logging.getLogger()
    saved = root.level, root.handlers[:]
    root.handlers = []
    monkeypatch.setenv("FLASK_RUN_FROM_CLI", "false")  # FlaskGroup sets it; restored (removed) afterwards
    yield
    root.setLevel(saved[0])
    root.handlers = saved[1]


@pytest.fixture
def flask_cli(rt, cli_logging):
    def invoke(*args: str, runtime: Runtime | None = None, input: str | None = None):
        group = FlaskGroup(create_app=lambda: create_app(runtime=runtime or rt), load_dotenv=False)
        return CliRunner().invoke(group, list(args), input=input)

    return invoke


def _one_line_error(result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr == f"Error: {message}\n"


def test_a_command_prints_only_its_output(flask_cli):
    # The job logs what it did at INFO; a tool run shows the command's answer and nothing else.
    result = flask_cli("jobs", "run", "commissions.mature_due")
    assert result.exit_code == 0, result.output
    assert (result.stdout, result.stderr) == ("commissions.mature_due: 0\n", "")


def test_warnings_still_reach_stderr(flask_cli, rt):
    @click.command("warn", help="Log a warning.")
    def warn():
        logging.getLogger("app.test").warning("something to look at")
        click.echo("done")

    def make():
        application = create_app(runtime=rt)
        application.cli.add_command(warn)
        return application

    result = CliRunner().invoke(FlaskGroup(create_app=make, load_dotenv=False), ["warn"])
    assert (result.stdout, result.stderr) == ("done\n", "WARNING app.test: something to look at\n")


def test_a_refusal_is_one_line_on_stderr_and_exit_1(flask_cli):
    result = flask_cli("operators", "create", "ops", "--password", "short")
    _one_line_error(result, "A username and a password of at least 8 characters are required. (operator_invalid)")
    _one_line_error(flask_cli("operators", "disable", "nobody"), "No operator is named 'nobody'. (operator_not_found)")


def test_a_database_that_is_not_migrated_is_one_line(flask_cli, rt, tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    blank = Runtime(rt.settings, engine, make_session_factory(engine), rt.redis)
    result = flask_cli("ledger", "check", runtime=blank)
    assert result.exit_code == 1 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: the database refused: no such table") and "flask db upgrade" in line
    engine.dispose()


def test_every_command_and_group_has_help(rt, cli_logging):
    group = FlaskGroup(create_app=lambda: create_app(runtime=rt), load_dotenv=False)
    missing = []

    def walk(ctx: click.Context, command: click.Command, path: str) -> None:
        if not (command.help or command.short_help):
            missing.append(path)
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                walk(ctx, command.get_command(ctx, name), f"{path} {name}")

    with group.make_context("flask", ["--help"], resilient_parsing=True) as ctx:
        for name in ("db", "jobs", "ledger", "operators", "seed-demo"):
            walk(ctx, group.get_command(ctx, name), name)
    assert missing == []
    assert "reset-password" in CliRunner().invoke(group, ["operators", "--help"]).stdout


def test_jobs_list_names_the_periodic_jobs_only(flask_cli):
    result = flask_cli("jobs", "list")
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert [n for n in names if not n.startswith("tests.")] == PERIODIC  # other tests register jobs of their own
    assert "withdrawals.drive_payout" not in result.stdout  # it takes a withdrawal id: outbox only


def test_jobs_run_runs_each_named_job_now(flask_cli):
    result = flask_cli("jobs", "run", "grades.evaluate_all", "withdrawals.reconcile")
    assert result.exit_code == 0, result.output
    assert result.stdout == "grades.evaluate_all: 0\nwithdrawals.reconcile: 0\n"


def test_jobs_run_refuses_unknown_jobs_and_jobs_that_take_ids(flask_cli):
    _one_line_error(flask_cli("jobs", "run", "commissions.mature_everything"),
                    "no job named commissions.mature_everything; `flask jobs list` shows them")
    _one_line_error(flask_cli("jobs", "run", "withdrawals.drive_payout"),
                    "withdrawals.drive_payout takes ids and runs from the outbox, not by hand; "
                    "`flask jobs list` shows the periodic jobs")


def test_operators_are_managed_from_the_cli(flask_cli, client, session, rt):
    def login(password: str, ip: str = "127.0.0.1") -> int:
        return client.post("/api/admin/login", json={"username": "mei", "password": password},
                           environ_base={"REMOTE_ADDR": ip}).status_code

    assert flask_cli("operators", "list").stdout.startswith("no operators yet")
    created = flask_cli("operators", "create", "mei", input="first password\nfirst password\n")
    assert created.exit_code == 0 and created.stdout.endswith("operator mei created (id 1)\n")
    create_operator(session, "lan", "another password")
    session.commit()
    listed = flask_cli("operators", "list").stdout.splitlines()
    assert [line.split()[:3] for line in listed] == [["1", "mei", "enabled"], ["2", "lan", "enabled"]]
    assert login("first password") == 200

    assert flask_cli("operators", "disable", "mei").stdout == "operator mei disabled\n"
    assert login("first password") == 401
    assert flask_cli("operators", "list").stdout.splitlines()[0].split()[:3] == ["1", "mei", "disabled"]
    assert flask_cli("operators", "enable", "mei").stdout == "operator mei enabled\n"

    for _ in range(5):  # five wrong passwords lock the username (and that address)
        login("wrong password", ip="10.0.0.9")
    assert login("first password") == 429
    _one_line_error(flask_cli("operators", "reset-password", "mei", "--password", "short"),
                    "The password needs at least 8 characters. (password_too_short)")
    reset = flask_cli("operators", "reset-password", "mei", "--password", "second password")
    assert reset.stdout == "password of operator mei reset\n"
    assert (login("first password"), login("second password")) == (401, 200)

    session.expire_all()
    mei = session.scalar(select(Operator).where(Operator.username == "mei"))
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.actor == "cli",
                                                              AuditEntry.target_id == str(mei.id))
                              .order_by(AuditEntry.id)).all()
    assert actions == ["operator.create", "operator.disable", "operator.enable", "operator.reset_password"]
