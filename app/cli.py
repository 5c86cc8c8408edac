"""Flask CLI commands: migrations (Flask-Migrate), demo seeding, operators."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from flask_migrate import Migrate

from app.db import Base
from app.demo import DEMO_OPERATOR, seed
from app.identity.operators import create_operator as create
from app.ledger.cli import register_ledger_cli
from app.migrate import MIGRATIONS


class _MetadataOnly:
    """Flask-Migrate wants a `db`; our env.py reads plain SQLAlchemy metadata instead of Flask-SQLAlchemy."""

    metadata = Base.metadata


def register_cli(app) -> None:
    Migrate(app, _MetadataOnly(), directory=str(MIGRATIONS), render_as_batch=True)

    operators = AppGroup("operators", help="Console accounts.")

    @operators.command("create")
    @click.argument("username")
    @click.password_option()
    def create_operator(username: str, password: str):
        rt = current_app.extensions["liebian"]
        with rt.session() as s:
            op = create(s, username, password)
            click.echo(f"operator {op.username} created (id {op.id})")

    app.cli.add_command(operators)

    register_ledger_cli(app)

    @app.cli.command("seed-demo", help=f"Create demo members, an operator ({DEMO_OPERATOR[0]}/{DEMO_OPERATOR[1]}) "
                                       "and sample data; safe to run twice.")
    def seed_demo():
        rt = current_app.extensions["liebian"]
        with rt.session() as s:
            click.echo(seed(s, rt.settings))
