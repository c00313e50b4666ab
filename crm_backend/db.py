"""Engine, session-per-request and the declarative base."""

import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from flask import Flask, current_app, g
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator


class Base(DeclarativeBase):
    # Named constraints: Alembic's SQLite batch mode can only alter what it
    # can name, and migrations stay identical across backends.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


# The largest id a row can have: PostgreSQL's integer. Ids from outside (paths,
# queries, bodies, cursors) above it are refused before they reach a query,
# where PostgreSQL (and SQLite above 2**63) would fail on them.
MAX_ID = 2**31 - 1


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """An aware UTC datetime on every backend.

    SQLite keeps no offset, so values are stored as naive UTC and marked UTC
    again when read; PostgreSQL gets a real ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


@dataclass
class Database:
    engine: Engine
    sessionmaker: sessionmaker[Session]


def make_engine(database_url: str) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if url.database and url.database != ":memory:":
        # sqlite creates the file but not its directory (var/ on a fresh checkout).
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    event.listen(engine, "connect", _sqlite_pragmas)
    SQLiteWriterQueue().attach(engine)
    return engine


def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    # SQLite ignores foreign keys unless asked, per connection; WAL lets the
    # web workers read while the CLI or a worker writes. Under WAL,
    # synchronous=NORMAL cannot corrupt the database; it skips the fsync on
    # each commit, so a power cut (not a crashed process) may lose the last
    # commits. That halves the cost of a ticket creation.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# Seconds a write waits for its turn; as long as SQLite's own busy timeout
# (pysqlite's default), after which the request gets a 503 and stores nothing.
WRITE_TURN_SECONDS = 5.0
_WRITE_VERBS = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "ALTER", "DROP"})


class SQLiteWriterQueue:
    """Lets one thread of this process write to SQLite at a time, in turn.

    SQLite allows one writer; a thread that finds the write lock taken
    sleeps in SQLite's busy handler with growing back-off and retries, so
    under gunicorn's threads a write could wait seconds while others went
    first. Queueing the process's writers on a lock before their first
    write statement (pysqlite begins the transaction there) hands the turn
    over as soon as the previous writer commits or rolls back. Other
    processes (the second worker, the CLI) still meet SQLite's own lock.
    """

    def __init__(self, timeout: float = WRITE_TURN_SECONDS) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None
        self.timeout = timeout

    def attach(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._before_execute)
        for name in ("commit", "rollback"):
            event.listen(engine, name, self._release_connection)
        # A connection returned to the pool or dropped without a commit or
        # rollback through SQLAlchemy must still give up its turn.
        event.listen(engine.pool, "reset", self._on_reset)
        event.listen(engine.pool, "checkin", self._on_checkin)
        event.listen(engine.pool, "invalidate", self._on_invalidate)

    def _before_execute(self, connection, cursor, statement, parameters, context, executemany) -> None:
        info = connection.info
        if info.get("crm_write_turn") or statement.lstrip()[:7].split(maxsplit=1)[0].upper() not in _WRITE_VERBS:
            return
        if self._owner == threading.get_ident():
            # This thread already writes on another connection; waiting for
            # itself would never end, so leave it to SQLite as before.
            return
        if not self._lock.acquire(timeout=self.timeout):
            raise OperationalError(statement, parameters, sqlite3.OperationalError("database is locked"))
        self._owner = threading.get_ident()
        info["crm_write_turn"] = True

    def _release(self, info: dict) -> None:
        if info.pop("crm_write_turn", False):
            self._owner = None
            self._lock.release()

    def _release_connection(self, connection) -> None:
        self._release(connection.info)

    def _on_reset(self, dbapi_connection, connection_record, reset_state) -> None:
        self._release(connection_record.info)

    def _on_checkin(self, dbapi_connection, connection_record) -> None:
        if connection_record is not None:
            self._release(connection_record.info)

    def _on_invalidate(self, dbapi_connection, connection_record, exception) -> None:
        self._release(connection_record.info)


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["crm_db"] = Database(engine, sessionmaker(engine, expire_on_commit=False))
    # teardown_appcontext also runs after CLI commands, not only requests.
    app.teardown_appcontext(_close_session)


def get_engine() -> Engine:
    return current_app.extensions["crm_db"].engine


def get_session() -> Session:
    """The session of the current request or command, opened on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["crm_db"].sessionmaker()
    return g.db_session


def _close_session(exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def keyset_page(session: Session, query, id_column, *, limit: int, cursor: int | None, newest_first: bool):
    """One page of ``query`` ordered by ``id_column``, and the cursor of the next page (or None).

    Keyset pagination: the cursor is the last id of the page, so pages stay
    stable while rows are added, and each page is one indexed range query.
    """
    if cursor is not None:
        query = query.where(id_column < cursor if newest_first else id_column > cursor)
    query = query.order_by(id_column.desc() if newest_first else id_column.asc()).limit(limit + 1)
    rows = list(session.scalars(query).unique())
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None
