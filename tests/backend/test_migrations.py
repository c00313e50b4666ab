import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from crm_backend import migrate
from crm_backend.db import Base, get_engine


def test_migrations_create_exactly_what_the_models_describe(app):
    with app.app_context(), get_engine().connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)

    assert differences == []


def test_upgrading_twice_is_harmless(app):
    with app.app_context():
        migrate.upgrade_to_head(get_engine())
        with get_engine().connect() as connection:
            assert migrate.is_at_head(connection)


@pytest.mark.skipif(bool(os.environ.get("CRM_TEST_POSTGRES_URL")), reason="SQLite settings; this run is on PostgreSQL")
def test_sqlite_enforces_foreign_keys_and_uses_wal(app):
    with app.app_context(), get_engine().connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_the_database_directory_is_created(tmp_path):
    from crm_backend import create_app

    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'nested' / 'var' / 'crm.db'}"})
    with app.app_context():
        migrate.upgrade_to_head(get_engine())
        get_engine().dispose()

    assert (tmp_path / "nested" / "var" / "crm.db").is_file()
