"""SQLite settings for the databases Rasa writes on its event loop.

Rasa's SQL tracker store and SQL event broker open SQLite with the driver's
defaults: a rollback journal with ``synchronous=FULL`` (several fsyncs per
commit, 3.2 ms a commit on the dev VM) and SQLAlchemy 1.4's ``NullPool``
(a new connection, and a new read of the schema, for every session). All of
that runs synchronously on Rasa's single event loop.

``sqlite_engine`` builds the engine these modules use instead:

- ``journal_mode=WAL``: a commit appends to the write-ahead log (one fsync
  with ``synchronous=FULL``, 0.4 ms on the dev VM), and readers in other
  processes (the handoff follower, tests reading ``tracker.db``) no longer
  wait for the writer nor make it wait. The mode is stored in the database
  file, so every later reader sees it.
- ``synchronous``: ``FULL`` by default, so a commit is on disk when it
  returns, as before (nothing Rasa has saved is lost on a power cut).
  ``NORMAL`` (``sqlite_synchronous: NORMAL`` in endpoints.yml) skips that
  fsync: still safe against a crash of the process, but the last commits may
  be rolled back by a power cut or a kernel crash.
- ``busy_timeout``: a writer of another process (a second Rasa on the same
  file, an operator's ``sqlite3``) makes Rasa wait up to 5 s instead of
  failing at once with "database is locked".
- One kept connection (``QueuePool``): Rasa uses the engine only from its
  event loop's thread, one session at a time, so sessions take turns on one
  connection rather than opening the file again each time.
"""

from __future__ import annotations

from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
DEFAULT_SYNCHRONOUS = "FULL"
BUSY_TIMEOUT_MS = 5000


def synchronous_mode(value: Optional[str]) -> str:
    mode = (value or DEFAULT_SYNCHRONOUS).strip().upper()
    if mode not in SYNCHRONOUS_MODES:
        raise ValueError(f"sqlite_synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, not {value!r}")
    return mode


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def is_file_database(url: Any) -> bool:
    database = sa.engine.make_url(url).database
    return bool(database) and database != ":memory:" and not database.startswith("file::memory:")


def sqlite_engine(url: Any, synchronous: Optional[str] = None) -> Engine:
    """An engine on the SQLite database at ``url`` with the settings above."""
    mode = synchronous_mode(synchronous)
    engine = sa.create_engine(
        url,
        poolclass=QueuePool,
        pool_size=1,
        max_overflow=4,
        # The pool may hand the connection to another thread than the one
        # that opened it (never two at once); sqlite3 allows that with this.
        connect_args={"check_same_thread": False},
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {mode}")
        finally:
            cursor.close()

    return engine


def pragmas(engine: Engine) -> dict[str, Any]:
    """The settings a connection of ``engine`` runs with (for tests and operators)."""
    with engine.connect() as connection:
        return {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "busy_timeout")
        }
