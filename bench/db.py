"""The benchmarks' own PostgreSQL databases: dropped and created fresh for each run."""
from __future__ import annotations

from sqlalchemy import create_engine, text


def recreate_database(url: str, template: str | None = None) -> None:
    """Drop the database `url` names (closing its connections) and create it again, empty or as a copy of
    `template`."""
    admin_url, name = url.rsplit("/", 1)
    admin = create_engine(admin_url + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    admin.dispose()
