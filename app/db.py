"""SQLAlchemy base, engine and session factory. Plain SQLAlchemy: domain code never imports Flask."""
from __future__ import annotations

from datetime import datetime, timezone

import orjson
from sqlalchemy import BigInteger, DateTime, Integer, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from app.modules import import_domain_modules

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL, INTEGER on SQLite (so autoincrement primary keys keep working there).
BigInt = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite drops tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTC column")
            value = value.astimezone(timezone.utc)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def make_engine(url: str, **kwargs) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        @event.listens_for(engine, "before_execute")
        def _sqlite_for_update(conn, clauseelement, _multiparams, _params, _options):
            """SQLite has no row locks and drops FOR UPDATE; the Python driver also starts a transaction only at
            the first write, so a balance read before it is not even in the transaction that spends it (parallel
            withdrawals overdrew). A locking read therefore takes the database's write lock first (BEGIN
            IMMEDIATE, waiting like any writer): the rows it reads stay as read until the commit."""
            if getattr(clauseelement, "_for_update_arg", None) is None:
                return
            _begin_immediate(conn)

        @event.listens_for(engine, "savepoint")
        def _sqlite_savepoint(conn, _name):
            """A SAVEPOINT outside a transaction starts a deferred one, which reads from a snapshot; in WAL mode a
            write after another connection's commit then fails at once ("database is locked", no busy wait). A
            savepoint (work that reads, then writes) therefore takes the write lock first too."""
            _begin_immediate(conn)

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def _begin_immediate(conn) -> None:
    dbapi_conn = conn.connection.dbapi_connection
    if not dbapi_conn.in_transaction:  # in one already: it has written, so it holds the lock
        dbapi_conn.execute("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def import_all_models() -> None:
    """Import every domain's models.py, so Base.metadata is complete (migrations, tests)."""
    import_domain_modules("models")


def json_param(value) -> str:
    """`value` as one JSON text parameter, for the set-based statements that take a batch's rows as a document
    (jsonb_to_recordset). orjson encodes a batch's rows several times faster than the standard library; datetimes
    come out as isoformat() writes them."""
    return orjson.dumps(value).decode()
