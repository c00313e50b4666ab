"""SQLite writers of one process take turns on a lock (db.SQLiteWriterQueue)."""

import threading

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from crm_backend.db import SQLiteWriterQueue, make_engine


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'queue.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)"))
    yield engine
    engine.dispose()


def _count(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM t")).scalar_one()


def test_concurrent_writers_all_succeed(engine):
    errors = []

    def write(n):
        try:
            for _ in range(25):
                with Session(engine) as session:
                    session.execute(text("SELECT count(*) FROM t"))
                    session.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": n})
                    session.commit()
        except Exception as error:  # collected, asserted below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _count(engine) == 200


@pytest.mark.parametrize("finish", ["rollback", "close", "connection_close"])
def test_a_write_left_without_commit_gives_up_its_turn(engine, finish):
    if finish == "connection_close":
        connection = engine.connect()
        connection.execute(text("INSERT INTO t (v) VALUES (1)"))
        connection.close()
    else:
        session = Session(engine)
        session.execute(text("INSERT INTO t (v) VALUES (1)"))
        getattr(session, finish)()
    done = threading.Event()

    def write():
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t (v) VALUES (2)"))
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(timeout=3)
    assert done.is_set(), "the next writer never got its turn"
    assert _count(engine) == 1  # only the committed write


def test_reads_do_not_wait_for_a_writer(engine):
    writer = engine.connect()
    writer.execute(text("INSERT INTO t (v) VALUES (1)"))
    try:
        result = []
        thread = threading.Thread(target=lambda: result.append(_count(engine)))
        thread.start()
        thread.join(timeout=3)
        assert result == [0]
    finally:
        writer.rollback()
        writer.close()


def test_a_writer_that_waits_too_long_gets_an_operational_error(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'slow.db'}")
    SQLiteWriterQueue(timeout=0.2).attach(engine)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    holder = engine.connect()
    holder.execute(text("INSERT INTO t DEFAULT VALUES"))
    outcome = []

    def write():
        try:
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO t DEFAULT VALUES"))
            outcome.append("written")
        except OperationalError as error:
            outcome.append(str(error.orig))

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(timeout=10)
    holder.rollback()
    holder.close()
    engine.dispose()
    assert outcome == ["database is locked"]


def test_one_thread_writing_on_two_connections_does_not_wait_for_itself(engine):
    first = engine.connect()
    first.execute(text("INSERT INTO t (v) VALUES (1)"))
    first.commit()
    first.execute(text("INSERT INTO t (v) VALUES (2)"))
    second = engine.connect()
    try:
        # SQLite itself answers (busy) instead of the queue waiting forever.
        with pytest.raises(OperationalError):
            second.execute(text("PRAGMA busy_timeout=50"))
            second.execute(text("INSERT INTO t (v) VALUES (3)"))
    finally:
        second.close()
        first.rollback()
        first.close()
