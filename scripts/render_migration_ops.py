"""Print the Alembic ops that create the given models' tables (for filling a reserved migration file).

usage: python scripts/render_migration_ops.py app.referrals.models [more.modules]
Compares against a scratch database upgraded to the revision before, and prints only those modules' tables."""
from __future__ import annotations

import importlib
import sys

from alembic.autogenerate import produce_migrations, render_python_code
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from app.db import Base, import_all_models

URL = "postgresql+psycopg://postgres@127.0.0.1/liebian_render"


def main(modules: list[str]) -> None:
    wanted = set()
    for name in modules:
        mod = importlib.import_module(name)
        wanted |= {t.__table__.name for t in vars(mod).values() if isinstance(t, type) and hasattr(t, "__table__")}
    import_all_models()
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text("DROP DATABASE IF EXISTS liebian_render WITH (FORCE)"))
        c.execute(text("CREATE DATABASE liebian_render"))
    engine = create_engine(URL)
    with engine.begin() as conn:
        others = [t for t in Base.metadata.sorted_tables if t.name not in wanted]
        Base.metadata.create_all(conn, tables=others)
        ctx = MigrationContext.configure(conn, opts={"target_metadata": Base.metadata})
        script = produce_migrations(ctx, Base.metadata)
    print(render_python_code(script.upgrade_ops))
    print("# ---- downgrade")
    print(render_python_code(script.downgrade_ops))


if __name__ == "__main__":
    main(sys.argv[1:])
