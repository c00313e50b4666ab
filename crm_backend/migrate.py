"""Alembic, driven from the app: upgrade to head and compare revisions."""

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config(str(Path(__file__).parent / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # env.py uses this connection instead of opening its own.
    config.attributes["connection"] = connection
    return config


@cache
def head_revisions() -> frozenset[str]:
    # Migration files do not change while the process runs; parse them once.
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revisions(connection: Connection) -> frozenset[str]:
    return frozenset(MigrationContext.configure(connection).get_current_heads())


def is_at_head(connection: Connection) -> bool:
    return current_revisions(connection) == head_revisions()


# Key of the PostgreSQL advisory lock that serialises migrations ("crm-migr").
MIGRATION_LOCK_KEY = 0x63726D2D6D696772


def upgrade_to_head(engine: Engine) -> None:
    """Bring the schema to the latest revision; safe to run from several processes at once.

    On PostgreSQL the upgrade holds a session-level advisory lock, so backends
    that start together (``crm init-db`` in each) migrate one after another:
    the first does the work, the others find the schema at head. SQLite has
    one writer at a time anyway.
    """
    if engine.dialect.name != "postgresql":
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "head")
        return
    with engine.connect() as connection:
        # Taken outside the migration's transaction, so it also holds across
        # any commit a migration might make; released below, or by the server
        # when the connection goes away.
        connection.exec_driver_sql("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        connection.commit()
        try:
            with connection.begin():
                command.upgrade(alembic_config(connection), "head")
        finally:
            if not connection.invalidated:  # a lost connection has lost its lock too
                connection.exec_driver_sql("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
                connection.commit()
