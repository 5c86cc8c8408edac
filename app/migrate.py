"""Run Alembic migrations without Flask (tests, seeding, workers' first start)."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["quiet"] = True
    return cfg


def upgrade_database(url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(url), revision)
