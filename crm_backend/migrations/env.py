"""Alembic environment: the app's DATABASE_URL and models, batch mode for SQLite."""

from alembic import context

from crm_backend.db import Base
from crm_backend import models  # noqa: F401  (registers the tables on Base.metadata)

config = context.config


def run_with(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite can only ALTER a little; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # called from the app (crm init-db, tests)
        run_with(connection)
        return
    # Called from the alembic command line: build the app to get its settings.
    from crm_backend import create_app
    from crm_backend.db import make_engine

    engine = make_engine(create_app().config["DATABASE_URL"])
    with engine.begin() as connection:
        run_with(connection)


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `crm init-db`")
run_online()
