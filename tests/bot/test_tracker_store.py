"""bot.tracker_store and bot.event_broker store exactly what Rasa's SQL classes store."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from rasa.core.brokers.sql import SQLEventBroker
from rasa.core.tracker_store import SQLTrackerStore, create_tracker_store
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.utils.endpoints import EndpointConfig

from bot import sqlite
from bot.event_broker import HelpdeskSQLEventBroker
from bot.tracker_store import HelpdeskSQLTrackerStore

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet, inform]
slots:
  email:
    type: text
    influence_conversation: false
    mappings: [{type: custom}]
responses:
  utter_greet: [{text: "Hi"}]
"""
)


def run(coroutine):
    return asyncio.new_event_loop().run_until_complete(coroutine)


def conversation(store, sender: str) -> None:
    """Messages as Rasa's processor saves them: retrieve, update, save; a second session after a while."""

    async def turns():
        for number, text in enumerate(["hi", "my email is ada@example.com", "thanks"]):
            tracker = await store.get_or_create_tracker(sender, append_action_listen=False)
            if number == 0:
                tracker.update(ActionExecuted("action_session_start", timestamp=100.0))
                tracker.update(SessionStarted(timestamp=100.0))
                tracker.update(ActionExecuted("action_listen", timestamp=100.0))
            start = 101.0 + number
            tracker.update(UserUttered(text, {"name": "greet", "confidence": 0.9}, timestamp=start))
            tracker.update(SlotSet("email", "ada@example.com", timestamp=start + 0.1))
            tracker.update(BotUttered("Hi", {"elements": None}, timestamp=start + 0.2))
            tracker.update(ActionExecuted("action_listen", timestamp=start + 0.3))
            await store.save(tracker)
        # A new session: only its events count from here on.
        tracker = await store.get_or_create_tracker(sender, append_action_listen=False)
        tracker.update(ActionExecuted("action_session_start", timestamp=200.0))
        tracker.update(SessionStarted(timestamp=200.0))
        tracker.update(SlotSet("email", "ada@example.com", timestamp=200.0))
        tracker.update(ActionExecuted("action_listen", timestamp=200.0))
        await store.save(tracker)
        tracker = await store.get_or_create_tracker(sender, append_action_listen=False)
        tracker.update(UserUttered("hello again", {"name": "greet", "confidence": 0.8}, timestamp=201.0))
        tracker.update(ActionExecuted("action_listen", timestamp=201.1))
        await store.save(tracker)

    run(turns())


def rows(path: Path, query: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(query).fetchall()


@pytest.fixture
def both(tmp_path):
    """Rasa's classes and ours, each on their own files, after the same conversations."""
    stores = {}
    for name, store_class, broker_class in (
        ("rasa", SQLTrackerStore, SQLEventBroker),
        ("ours", HelpdeskSQLTrackerStore, HelpdeskSQLEventBroker),
    ):
        broker = broker_class(db=str(tmp_path / f"{name}-events.db"))
        store = store_class(DOMAIN, db=str(tmp_path / f"{name}-tracker.db"), event_broker=broker)
        conversation(store, "ada")
        conversation(store, "bob")
        stores[name] = store
    return tmp_path, stores


def test_the_tracker_rows_are_rasas(both):
    tmp_path, _ = both
    query = "SELECT id, sender_id, type_name, timestamp, intent_name, action_name, data FROM events ORDER BY id"
    ours = rows(tmp_path / "ours-tracker.db", query)
    assert ours == rows(tmp_path / "rasa-tracker.db", query)
    assert len(ours) == 2 * (3 + 3 * 4 + 4 + 2)


def test_the_broker_rows_are_rasas(both):
    tmp_path, _ = both
    query = "SELECT id, sender_id, data FROM events ORDER BY id"
    ours = rows(tmp_path / "ours-events.db", query)
    assert ours == rows(tmp_path / "rasa-events.db", query)
    assert len(ours) == 2 * (3 + 3 * 4 + 4 + 2)
    assert json.loads(ours[3][2])["sender_id"] == "ada"
    assert json.loads(ours[3][2])["text"] == "hi"


def test_retrieved_trackers_are_rasas(both):
    _, stores = both
    for sender in ("ada", "bob"):
        ours = run(stores["ours"].retrieve(sender))
        theirs = run(stores["rasa"].retrieve(sender))
        assert ours.current_state() == theirs.current_state()
        assert [e.as_dict() for e in ours.events] == [e.as_dict() for e in theirs.events]
        full = run(stores["ours"].retrieve_full_tracker(sender))
        assert len(full.events) == 3 + 3 * 4 + 4 + 2


def test_one_broker_commit_per_save(tmp_path):
    broker = HelpdeskSQLEventBroker(db=str(tmp_path / "events.db"))
    calls = []
    publish_many = broker.publish_many
    broker.publish_many = lambda events: (calls.append(len(events)), publish_many(events))
    store = HelpdeskSQLTrackerStore(DOMAIN, db=str(tmp_path / "tracker.db"), event_broker=broker)
    conversation(store, "ada")
    assert calls == [7, 4, 4, 4, 2]


def test_a_broker_without_publish_many_gets_every_event(tmp_path):
    class Collecting(SQLEventBroker):
        def __init__(self):
            self.published = []

        def publish(self, event):
            self.published.append(event)

    broker = Collecting()
    store = HelpdeskSQLTrackerStore(DOMAIN, db=str(tmp_path / "tracker.db"), event_broker=broker)
    conversation(store, "ada")
    assert len(broker.published) == 3 + 3 * 4 + 4 + 2
    assert all(event["sender_id"] == "ada" for event in broker.published)


def test_sqlite_runs_in_wal_mode_with_full_sync_by_default(tmp_path):
    broker = HelpdeskSQLEventBroker(db=str(tmp_path / "events.db"))
    store = HelpdeskSQLTrackerStore(DOMAIN, db=str(tmp_path / "tracker.db"), event_broker=broker)
    for engine in (store.engine, broker.engine):
        # synchronous: 2 is FULL, 1 NORMAL
        assert sqlite.pragmas(engine) == {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 5000}
    # Stored in the file: every other reader (the handoff follower) sees WAL too.
    assert rows(tmp_path / "events.db", "PRAGMA journal_mode") == [("wal",)]


def test_synchronous_can_be_relaxed_from_endpoints(tmp_path):
    config = EndpointConfig(type="bot.tracker_store.HelpdeskSQLTrackerStore", dialect="sqlite",
                            db=str(tmp_path / "tracker.db"), sqlite_synchronous="normal")
    store = create_tracker_store(config, DOMAIN)
    assert isinstance(store, HelpdeskSQLTrackerStore)
    assert sqlite.pragmas(store.engine)["synchronous"] == 1
    with pytest.raises(ValueError):
        HelpdeskSQLTrackerStore(DOMAIN, db=str(tmp_path / "other.db"), sqlite_synchronous="sometimes")


def test_endpoints_yml_names_our_classes(monkeypatch, tmp_path):
    from rasa.core.brokers.broker import EventBroker
    from rasa.core.utils import read_endpoints_from_path

    monkeypatch.setenv("ACTIONS_PORT", "5055")
    monkeypatch.setenv("ACTIONS_TOKEN", "test-token")
    monkeypatch.setenv("RASA_TRACKER_DB", str(tmp_path / "tracker.db"))
    monkeypatch.setenv("RASA_EVENTS_DB", str(tmp_path / "events.db"))
    endpoints = read_endpoints_from_path(str(Path(__file__).resolve().parents[2] / "endpoints.yml"))
    broker = run(EventBroker.create(endpoints.event_broker))
    store = create_tracker_store(endpoints.tracker_store, DOMAIN, broker)
    assert isinstance(broker, HelpdeskSQLEventBroker)
    assert isinstance(store, HelpdeskSQLTrackerStore)
    conversation(store, "ada")
    assert rows(tmp_path / "events.db", "SELECT count(*) FROM events") == [(3 + 3 * 4 + 4 + 2,)]


def test_a_database_written_by_rasas_class_is_read_by_ours(tmp_path):
    SQLTrackerStore(DOMAIN, db=str(tmp_path / "tracker.db")).engine.dispose()
    conversation(SQLTrackerStore(DOMAIN, db=str(tmp_path / "tracker.db")), "ada")
    ours = HelpdeskSQLTrackerStore(DOMAIN, db=str(tmp_path / "tracker.db"))
    tracker = run(ours.retrieve("ada"))
    assert tracker.get_slot("email") == "ada@example.com"
    assert len(tracker.events) == 4 + 2


def test_the_database_work_runs_off_the_event_loop(tmp_path):
    import threading

    store = HelpdeskSQLTrackerStore(DOMAIN, db=str(tmp_path / "tracker.db"))
    threads = []
    for name in ("_retrieve_now", "_save_now"):
        method = getattr(store, name)

        def recording(*args, _method=method):
            threads.append(threading.current_thread())
            return _method(*args)

        setattr(store, name, recording)
    conversation(store, "ada")
    assert threads and threading.main_thread() not in threads
    assert len(set(threads)) == 1  # one worker: saves and retrievals in the order asked


# --- a lost database connection ----------------------------------------------


def _connection_error() -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))


@pytest.fixture
def retrying(tmp_path, monkeypatch):
    """A store on SQLite with a short first pause between tries, and a log of the tries."""
    attempts = []

    def make(retry_seconds, first_pause):
        monkeypatch.setattr("bot.tracker_store.FIRST_RETRY_PAUSE", first_pause)
        return HelpdeskSQLTrackerStore(DOMAIN, db=str(tmp_path / "tracker.db"), retry_seconds=retry_seconds)

    def failing(error, times=None, then=None):
        """A unit of work that raises ``error()`` ``times`` times (always if None), then returns ``then``."""

        def work():
            attempts.append(1)
            if times is None or len(attempts) <= times:
                raise error()
            return then

        return work

    return SimpleNamespace(store=make, failing=failing, attempts=attempts)


def test_a_lost_connection_is_tried_again_and_a_bad_query_is_not(retrying):
    store = retrying.store(retry_seconds=5, first_pause=0.01)

    assert run(store._off_loop(retrying.failing(_connection_error, times=2, then="stored"))) == "stored"
    assert len(retrying.attempts) == 3
    retrying.attempts.clear()

    def bad_query():
        return sa.exc.ProgrammingError("SELECT nonsense", {}, Exception("syntax error"))

    with pytest.raises(sa.exc.ProgrammingError):
        run(store._off_loop(retrying.failing(bad_query)))
    assert len(retrying.attempts) == 1


def test_retrying_stops_after_retry_seconds(retrying):
    store = retrying.store(retry_seconds=0.3, first_pause=0.05)

    with pytest.raises(sa.exc.OperationalError):
        run(store._off_loop(retrying.failing(_connection_error)))
    assert 2 <= len(retrying.attempts) <= 5


def test_a_negative_retry_time_is_refused(tmp_path):
    with pytest.raises(ValueError, match="retry_seconds"):
        HelpdeskSQLTrackerStore(DOMAIN, db=str(tmp_path / "tracker.db"), retry_seconds=-1)


def test_a_save_retried_after_its_publish_publishes_nothing_twice(tmp_path, monkeypatch):
    broker = HelpdeskSQLEventBroker(db=str(tmp_path / "events.db"))
    store = HelpdeskSQLTrackerStore(DOMAIN, db=str(tmp_path / "tracker.db"), event_broker=broker)
    monkeypatch.setattr("bot.tracker_store.FIRST_RETRY_PAUSE", 0.01)
    published = []
    publish_many = broker.publish_many
    broker.publish_many = lambda events: (publish_many(events), published.extend(events))
    real_execute = sa.orm.Session.execute
    failures = []

    def insert_fails_once(session, statement, *args, **kwargs):
        # The tracker's rows, after the broker has published them.
        if session.bind is store.engine and getattr(statement, "is_insert", False) and not failures:
            failures.append(1)
            raise _connection_error()
        return real_execute(session, statement, *args, **kwargs)

    monkeypatch.setattr(sa.orm.Session, "execute", insert_fails_once)
    conversation(store, "ada")

    assert failures == [1]
    stored = rows(tmp_path / "tracker.db", "SELECT data FROM events ORDER BY id")
    assert len(stored) == 3 + 3 * 4 + 4 + 2
    assert [event["timestamp"] for event in published] == [json.loads(data)["timestamp"] for (data,) in stored]


# --- PostgreSQL (the scaled profile) -----------------------------------------


def _postgres_server():
    import os

    psycopg2 = pytest.importorskip("psycopg2")
    host, port = os.environ.get("POSTGRES_HOST", "127.0.0.1"), int(os.environ.get("POSTGRES_PORT", "5432"))
    user = os.environ.get("POSTGRES_USER", "postgres")
    try:
        connection = psycopg2.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=2)
    except psycopg2.Error as error:
        pytest.skip(f"no PostgreSQL answers at {host}:{port} as {user} ({type(error).__name__}); "
                    "set POSTGRES_HOST/PORT/USER to run this test")
    connection.autocommit = True
    return psycopg2, connection, dict(host=host, port=port, username=user)


@pytest.fixture
def postgres_databases():
    """Makes databases of this test's own on the local PostgreSQL; drops them afterwards."""
    import uuid

    _, admin, settings = _postgres_server()
    made = []

    def make() -> str:
        name = f"helpdesk_test_tracker_{uuid.uuid4().hex[:12]}"
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return name

    yield make, settings, admin
    with admin.cursor() as cursor:
        for name in made:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def _pg_rows(store) -> list[tuple]:
    with store.engine.connect() as connection:
        return connection.exec_driver_sql(
            "SELECT sender_id, type_name, timestamp, intent_name, action_name, data FROM events ORDER BY id"
        ).fetchall()


def test_on_postgresql_the_rows_and_trackers_are_rasas(postgres_databases):
    make, settings, _ = postgres_databases
    rasa = SQLTrackerStore(DOMAIN, dialect="postgresql", db=make(), **settings)
    ours = HelpdeskSQLTrackerStore(DOMAIN, dialect="postgresql", db=make(), **settings)
    for store in (rasa, ours):
        conversation(store, "ada")
        conversation(store, "bob")

    assert _pg_rows(ours) == _pg_rows(rasa)
    for sender in ("ada", "bob"):
        assert run(ours.retrieve(sender)).current_state() == run(rasa.retrieve(sender)).current_state()
        assert len(run(ours.retrieve_full_tracker(sender)).events) == len(run(rasa.retrieve_full_tracker(sender)).events)
    rasa.engine.dispose()
    ours.engine.dispose()


def test_on_postgresql_a_killed_connection_costs_no_turn(postgres_databases):
    """What a PostgreSQL restart does to the pool: every kept connection is cut."""
    make, settings, admin = postgres_databases
    database = make()
    store = HelpdeskSQLTrackerStore(DOMAIN, dialect="postgresql", db=database, **settings)

    async def turn(text: str, at: float) -> None:
        tracker = await store.get_or_create_tracker("ada", append_action_listen=False)
        tracker.update(UserUttered(text, {"name": "greet", "confidence": 0.9}, timestamp=at))
        tracker.update(ActionExecuted("action_listen", timestamp=at + 0.1))
        await store.save(tracker)

    def cut_every_connection() -> int:
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))
            return cursor.fetchone()[0]

    run(turn("hi", 1.0))
    assert cut_every_connection() >= 1  # the pool kept its connection
    run(turn("still there?", 2.0))  # Rasa's class fails this save

    texts = [json.loads(data)["text"] for (_, type_name, *_rest, data) in _pg_rows(store) if type_name == "user"]
    assert texts == ["hi", "still there?"]
    store.engine.dispose()


def test_a_broker_without_publish_many_is_published_to_on_the_event_loop(tmp_path):
    """Rasa's Pika broker starts an asyncio task in ``publish``: that must happen on Rasa's loop."""
    import threading

    class LoopOnly(SQLEventBroker):
        def __init__(self):
            self.threads = set()
            self.published = []

        def publish(self, event):
            self.threads.add(threading.current_thread())
            self.published.append(event["event"])

    broker = LoopOnly()
    store = HelpdeskSQLTrackerStore(DOMAIN, db=str(tmp_path / "tracker.db"), event_broker=broker)
    conversation(store, "ada")
    assert broker.threads == {threading.main_thread()}
    assert len(broker.published) == 3 + 3 * 4 + 4 + 2
