"""Flask CLI commands: migrations (Flask-Migrate), demo seeding, operators, periodic jobs, the ledger check.

A command prints what was asked for on stdout and nothing else: logging is quiet for CLI runs (warnings and
errors only; `flask db upgrade` still reports the revisions it applied), and a refusal the user can act on (a
`DomainError`: a short password, an unknown operator) or an unreachable or unmigrated database is one line on
stderr with exit status 1, never a traceback."""
from __future__ import annotations

import functools
import inspect
import logging
import sys

import click
from flask import current_app
from flask.cli import AppGroup
from flask_migrate import Migrate
from sqlalchemy.exc import OperationalError, ProgrammingError

from app.boards import service as boards
from app.db import Base
from app.demo import DEMO_OPERATOR, seed, serving_while_seeding
from app.errors import DomainError
from app.identity import operators as operator_accounts
from app.ledger.cli import register_ledger_cli
from app.migrate import MIGRATIONS
from app.outbox import Job, RetryLater
from app.outbox.jobs import registered_jobs, resolve_job
from app.runtime import Runtime

CLI_ACTOR = "cli"


class _MetadataOnly:
    """Flask-Migrate wants a `db`; our env.py reads plain SQLAlchemy metadata instead of Flask-SQLAlchemy."""

    metadata = Base.metadata


_CLI_HANDLER = "liebian-cli"


def configure_logging() -> None:
    """The process's logging, chosen by how the app is being run.

    Serving (gunicorn, `flask run`) and tests log at INFO. Any other `flask` command is a tool run: only
    warnings and errors reach stderr, so a command's output is its own (`flask db upgrade` still reports what it
    applied: Alembic's own logging configuration turns that on for `flask db`)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None or ctx.command.name == "run":
        logging.basicConfig(level=logging.INFO)
        return
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    # Our own stderr handler, replaced on every run so it writes to this run's stderr (a test runner swaps it);
    # handlers others installed (a test framework's capture) are left alone.
    for old in [h for h in root.handlers if h.get_name() == _CLI_HANDLER]:
        root.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_CLI_HANDLER)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)


def _one_line_errors(fn):
    """A command's refusals as one line on stderr and exit status 1 (click.ClickException), not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DomainError as exc:
            raise click.ClickException(f"{exc.message} ({exc.code})") from None
        except (OperationalError, ProgrammingError) as exc:
            reason = str(exc.orig or exc).strip().splitlines()[0]
            raise click.ClickException(f"the database refused: {reason} (is it reachable, and migrated with "
                                       "`flask db upgrade`?)") from None

    return wrapper


def _guard_commands(group: click.Group) -> None:
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _guard_commands(command)
        elif command.callback is not None and not getattr(command.callback, "_one_line_errors", False):
            command.callback = _one_line_errors(command.callback)
            command.callback._one_line_errors = True


def _runtime() -> Runtime:
    return current_app.extensions["liebian"]


def periodic_jobs() -> dict[str, Job]:
    """Named jobs that take only the runtime: the ones a schedule runs (CONTRIBUTING: "Adding a periodic job"),
    by name. Jobs that take ids (a payout, a poster) run from the outbox and are not listed."""
    found = {}
    for name, job in sorted(registered_jobs().items()):
        params = list(inspect.signature(job.fn).parameters.values())[1:]
        if all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
            found[name] = job
    return found


def _summary(fn) -> str:
    return (inspect.getdoc(fn) or "").split("\n\n")[0].replace("\n", " ")


def _operators_group() -> AppGroup:
    operators = AppGroup("operators", help="Console operators. List, create, disable, enable, reset a password.")

    @operators.command("list", help="List the operators. Id, username, enabled or disabled, when created.")
    def list_operators():
        with _runtime().session() as s:
            rows = operator_accounts.list_operators(s)
            if not rows:
                click.echo("no operators yet: `flask operators create <username>` makes one")
            for op in rows:
                click.echo(f"{op.id:>5}  {op.username:<24} {'disabled' if op.disabled else 'enabled ':<8}  "
                           f"created {op.created_at:%Y-%m-%d %H:%M} UTC")

    @operators.command("create", help="Create a console operator. The password (8+ characters) is asked "
                                      "for twice unless given with --password.")
    @click.argument("username")
    @click.password_option(help="At least 8 characters (prompted when left out).")
    def create_operator(username: str, password: str):
        with _runtime().session() as s:
            op = operator_accounts.create_operator(s, username, password, actor=CLI_ACTOR)
            click.echo(f"operator {op.username} created (id {op.id})")

    @operators.command("disable", help="Disable an operator. Their sign-in and every token already issued to "
                                       "them are refused from now on.")
    @click.argument("username")
    def disable_operator(username: str):
        with _runtime().session() as s:
            op = operator_accounts.set_disabled(s, username, True, actor=CLI_ACTOR)
            click.echo(f"operator {op.username} disabled")

    @operators.command("enable", help="Enable a disabled operator. They can sign in again.")
    @click.argument("username")
    def enable_operator(username: str):
        with _runtime().session() as s:
            op = operator_accounts.set_disabled(s, username, False, actor=CLI_ACTOR)
            click.echo(f"operator {op.username} enabled")

    @operators.command("reset-password", help="Set an operator's new password. 8+ characters, asked for "
                                              "twice unless given with --password; it also lifts a sign-in lockout.")
    @click.argument("username")
    @click.password_option(help="At least 8 characters (prompted when left out).")
    def reset_password(username: str, password: str):
        rt = _runtime()
        with rt.session() as s:
            op = operator_accounts.reset_password(s, username, password, actor=CLI_ACTOR, redis=rt.redis)
            click.echo(f"password of operator {op.username} reset")

    return operators


def _jobs_group() -> AppGroup:
    jobs = AppGroup("jobs", help="Periodic jobs. List them, or run one now instead of waiting for the "
                                  "scheduler.")

    @jobs.command("list", help="List the periodic jobs. Each with its queue and what it does.")
    def list_jobs():
        for name, job in periodic_jobs().items():
            click.echo(f"{name:<38} {job.queue:<8} {_summary(job.fn)}")

    @jobs.command("run", help="Run periodic jobs now, in this process. In the order given (e.g. "
                              "`flask jobs run commissions.mature_due`), printing each one's result; safe while the "
                              "scheduler runs, as every job may run twice at once.")
    @click.argument("names", nargs=-1, required=True, metavar="NAME...")
    def run_jobs(names: tuple[str, ...]):
        known = periodic_jobs()
        for name in names:
            if name not in known:
                try:
                    resolve_job(name)
                except LookupError:
                    raise click.ClickException(f"no job named {name}; `flask jobs list` shows them") from None
                raise click.ClickException(f"{name} takes ids and runs from the outbox, not by hand; "
                                           "`flask jobs list` shows the periodic jobs")
        rt = _runtime()
        for name in names:
            try:
                result = known[name].fn(rt)
            except RetryLater as later:
                raise click.ClickException(f"{name} asked to be retried in {later.delay:g}s: {later}") from None
            except (DomainError, OperationalError, ProgrammingError):
                raise
            except Exception as exc:  # a tool reports the failure in one line
                raise click.ClickException(f"{name} failed: {type(exc).__name__}: {exc}") from None
            click.echo(f"{name}: {result}")

    return jobs


def _boards_group() -> AppGroup:
    group = AppGroup("boards", help="Leaderboards in Redis.")

    @group.command("rebuild", help="Restore every leaderboard in Redis from the database (after Redis lost them, "
                                   "or to check them). Live updates wait while it runs.")
    def rebuild():
        rt = _runtime()
        with rt.session() as s:
            total = boards.credit_count(s)
            with click.progressbar(length=total, label="board credits", file=sys.stderr,
                                   show_pos=True) as bar:
                report = boards.rebuild(s, rt.redis, rt.settings.boards, progress=bar.update)
        click.echo(f"{report['boards']} boards rebuilt from {total} credits")

    return group


def register_cli(app) -> None:
    Migrate(app, _MetadataOnly(), directory=str(MIGRATIONS), render_as_batch=True)

    app.cli.add_command(_operators_group())
    app.cli.add_command(_jobs_group())
    app.cli.add_command(_boards_group())
    register_ledger_cli(app)

    @app.cli.command("seed-demo", help=f"Create demo members, an operator ({DEMO_OPERATOR[0]}/{DEMO_OPERATOR[1]}) "
                                       "and sample data, and print who to be and what to call; safe to run twice.")
    def seed_demo():
        rt = _runtime()
        emulator_app = current_app.extensions.get("wechat_emulator")
        if emulator_app is None:  # real WeChat: members nobody can sign in as, nothing sent to WeChat
            click.echo(seed(rt))
            return
        emulator = emulator_app.extensions["wechat_emulator"]
        with serving_while_seeding(current_app._get_current_object(), rt.settings.public_base_url) as online:
            click.echo(seed(rt, emulator, online=online))

    _guard_commands(app.cli)
