"""Flask CLI commands: migrations (Flask-Migrate), demo seeding, operators."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from flask_migrate import Migrate

from app.db import Base
from app.demo import DEMO_OPERATOR, seed, serving_while_seeding
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
                                       "and sample data, and print who to be and what to call; safe to run twice.")
    def seed_demo():
        rt = current_app.extensions["liebian"]
        emulator_app = current_app.extensions.get("wechat_emulator")
        if emulator_app is None:  # real WeChat: members nobody can sign in as, nothing sent to WeChat
            click.echo(seed(rt))
            return
        emulator = emulator_app.extensions["wechat_emulator"]
        with serving_while_seeding(current_app._get_current_object(), rt.settings.public_base_url) as online:
            click.echo(seed(rt, emulator, online=online))
