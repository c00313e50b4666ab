"""Several backends starting together each run `crm init-db`: on PostgreSQL
they migrate one after another (an advisory lock), and all of them succeed.

Needs a PostgreSQL server (CRM_TEST_POSTGRES_URL, default the local one);
skipped, and said so, when none answers. The database is its own, dropped
afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, text

from crm_backend import migrate
from postgres_support import temporary_database

POSTGRES = os.environ.get("CRM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432")
UPGRADERS = 4

# Each process waits for the same moment, then upgrades; exit code 0 on success.
UPGRADE = """
import sys, time
from crm_backend import migrate
from crm_backend.db import make_engine
engine = make_engine(sys.argv[1])
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
migrate.upgrade_to_head(engine)
"""


def _reachable(url: str) -> str | None:
    """None when the server answers, else why not."""
    try:
        engine = create_engine(f"{url}/postgres", connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as error:  # noqa: BLE001 - any failure means "cannot use it"
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return None


@pytest.fixture
def fresh_postgres_database():
    problem = _reachable(POSTGRES)
    if problem is not None:
        pytest.skip(f"no PostgreSQL answers at {POSTGRES} ({problem}); set CRM_TEST_POSTGRES_URL to run this test")
    with temporary_database(POSTGRES, "helpdesk_scaled_test") as url:
        yield url


def test_concurrent_upgrades_of_a_fresh_database_all_succeed_and_migrate_once(fresh_postgres_database):
    start_at = time.time() + 4.0  # after every interpreter has imported the app
    upgraders = [
        subprocess.Popen(
            [sys.executable, "-c", UPGRADE, fresh_postgres_database, str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(UPGRADERS)
    ]
    results = [(upgrader.wait(timeout=120), upgrader.stdout.read()) for upgrader in upgraders]

    assert [code for code, _ in results] == [0] * UPGRADERS, "\n".join(output for _, output in results)
    engine = create_engine(fresh_postgres_database)
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        assert migrate.is_at_head(connection)
    engine.dispose()
    assert sorted(versions) == sorted(migrate.head_revisions())
