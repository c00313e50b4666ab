"""Rasa's SQL tracker store with less work on the event loop per message.

Configured in endpoints.yml (``type: bot.tracker_store.HelpdeskSQLTrackerStore``)
with the same settings as Rasa's ``type: SQL``; it stores the same rows in
the same ``events`` table, so a database written by either class is read by
the other. What differs (measured in docs/benchmarks.md, "Conversations",
2026-12-02):

- **Off the event loop.** Rasa runs every query and commit synchronously on
  its one event loop, so while SQLite waits for the disk nothing else
  happens. Here retrievals and saves run on one worker thread of their own
  (one at a time, in the order asked), and the loop meanwhile goes on with
  other conversations' NLU and predictions. Rasa still awaits each call:
  a reply is sent only after its tracker is committed, as before, and the
  lock store still lets one message of a conversation in at a time.
- **One retrieval less per save.** Rasa 3.6's ``SQLTrackerStore.save`` first
  calls ``stream_events``, which retrieves the whole tracker again (the
  event query, JSON decoding of every event, replaying them into a tracker)
  only to count how many events are already stored; then ``save`` counts
  them once more with a ``COUNT`` query. Both give the same number (the
  events of the latest session), so this class counts once and uses that
  slice for the event broker and for the rows it inserts.
- **Lighter statements.** The queries are the SQL Rasa's ORM query
  compiles to, written out once (Rasa builds the query again for every
  call), and a retrieval selects the ``data`` column only (Rasa loads full
  ORM objects and uses only that column); new rows are inserted with one
  ``executemany`` rather than one ORM object each. Same filters and order,
  same column values. Events are turned back into classes by Rasa's
  ``Event.resolve_by_type`` (with the ``event_types`` patch, a dict look-up:
  bot/patches/event_types.py).
- **The broker gets a save's events at once.** If the event broker has a
  ``publish_many`` (``bot.event_broker.HelpdeskSQLEventBroker``), the new
  events of a save are published in one call — one commit instead of one
  per event; otherwise each is published as before. Each event is
  serialised once for both.
- **SQLite settings** (bot/sqlite.py): WAL, ``busy_timeout``, one kept
  connection; ``sqlite_synchronous`` (default ``FULL``) in endpoints.yml.
  Other dialects keep Rasa's engine (the scaled profile,
  endpoints.scaled.yml, uses this class on PostgreSQL).
- **A lost database connection is retried** (``retry_seconds``, default
  ``DEFAULT_RETRY_SECONDS``). When PostgreSQL restarts, every pooled
  connection breaks; Rasa's class fails the save, and Rasa then keeps that
  conversation in the memory of one process (its ``FailSafeTrackerStore``):
  the turn is gone for the other instances and after a restart. Here a
  retrieval or save that fails for a broken or refused connection is tried
  again, with a growing pause, until it works or ``retry_seconds`` have
  passed; the customer's reply waits instead of being lost. A retried save
  counts the stored events again (a save whose commit did reach the
  database before the connection broke inserts nothing the second time)
  and publishes to the event broker only the events it has not published
  yet. Errors of the query itself are not retried.

Nothing is cached between messages: every retrieval reads the database, so
several Rasa processes on one database see each other's events exactly as
with Rasa's class.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Text, Tuple, TypeVar

import sqlalchemy as sa
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from bot import sqlite

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_RETRY_SECONDS = 20.0
FIRST_RETRY_PAUSE = 0.1
LONGEST_RETRY_PAUSE = 2.0


def is_connection_error(error: BaseException) -> bool:
    """A broken, refused or timed-out database connection (worth trying again), not a bad query."""
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError))

# The SQL Rasa's ``_event_query`` compiles to (the events of the latest
# session: from the newest ``session_started`` on, or all if there is none),
# written once instead of being rebuilt through the ORM for every call.
_LATEST_SESSION = """
FROM events, (SELECT max(events.timestamp) AS session_start
FROM events
WHERE events.sender_id = :sender_id AND events.type_name = :session_started) AS anon_1
WHERE events.sender_id = :sender_id AND (events.timestamp >= anon_1.session_start OR anon_1.session_start IS NULL)"""
_DATA_OF_LATEST_SESSION = sa.text(f"SELECT events.data {_LATEST_SESSION} ORDER BY events.id")
_COUNT_OF_LATEST_SESSION = sa.text(f"SELECT count(*) {_LATEST_SESSION}")
_DATA_OF_ALL_SESSIONS = sa.text("SELECT events.data FROM events WHERE events.sender_id = :sender_id ORDER BY events.id")


class HelpdeskSQLTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` that works on a thread of its own, counts stored events once per save and tunes SQLite."""

    def __init__(
        self,
        domain: Optional[Domain] = None,
        dialect: Text = "sqlite",
        host: Optional[Text] = None,
        port: Optional[int] = None,
        db: Text = "rasa.db",
        username: Text = None,
        password: Text = None,
        event_broker: Optional[EventBroker] = None,
        login_db: Optional[Text] = None,
        query: Optional[Dict] = None,
        sqlite_synchronous: Optional[Text] = None,
        retry_seconds: Optional[float] = None,
        **kwargs: Dict[Text, Any],
    ) -> None:
        synchronous = sqlite.synchronous_mode(sqlite_synchronous)
        self.retry_seconds = DEFAULT_RETRY_SECONDS if retry_seconds is None else float(retry_seconds)
        if self.retry_seconds < 0:
            raise ValueError(f"retry_seconds must be 0 or more, not {retry_seconds!r}")
        super().__init__(
            domain, dialect, host, port, db, username, password, event_broker, login_db, query, **kwargs
        )
        if sqlite.is_sqlite(self.engine) and sqlite.is_file_database(self.engine.url):
            url = self.engine.url
            self.engine.dispose()
            self.engine = sqlite.sqlite_engine(url, synchronous)
            self.sessionmaker.configure(bind=self.engine)
        # One thread: the database work of every conversation in the order it was asked for.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracker-store")

    async def _off_loop(self, function: Callable[..., T], *args: Any) -> T:
        """Runs ``function`` on the worker thread; again after a lost connection, for ``retry_seconds``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_seconds
        pause = FIRST_RETRY_PAUSE
        attempt = 1
        while True:
            try:
                return await loop.run_in_executor(self._worker, function, *args)
            except sa.exc.SQLAlchemyError as error:
                if not is_connection_error(error) or loop.time() + pause > deadline:
                    raise
                logger.warning(
                    "The tracker store lost its database connection (attempt %d, %s); trying again in %.1f s.",
                    attempt, type(error).__name__, pause,
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, LONGEST_RETRY_PAUSE)
            attempt += 1

    # --- retrieval ---------------------------------------------------------

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        """Retrieves tracker for the latest conversation session."""
        return await self._off_loop(self._retrieve_now, sender_id, False)

    async def retrieve_full_tracker(self, conversation_id: Text) -> Optional[DialogueStateTracker]:
        """Fetching all tracker events across conversation sessions."""
        return await self._off_loop(self._retrieve_now, conversation_id, True)

    def _retrieve_now(self, sender_id: Text, fetch_events_from_all_sessions: bool) -> Optional[DialogueStateTracker]:
        """Rasa's ``_retrieve``, reading only the ``data`` column."""
        query = _DATA_OF_ALL_SESSIONS if fetch_events_from_all_sessions else _DATA_OF_LATEST_SESSION
        with self.session_scope() as session:
            rows = session.execute(
                query, {"sender_id": sender_id, "session_started": SessionStarted.type_name}
            ).fetchall()
        events = [json.loads(data) for (data,) in rows]
        if self.domain and len(events) > 0:
            logger.debug(f"Recreating tracker from sender id '{sender_id}'")
            return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        logger.debug(
            f"Can't retrieve tracker matching sender id '{sender_id}' from SQL storage. Returning `None` instead."
        )
        return None

    # --- saving ------------------------------------------------------------

    async def stream_events(self, tracker: DialogueStateTracker) -> None:
        """Publishes the tracker's events that are not stored yet (as Rasa's, without a retrieval)."""
        if self.event_broker is None:
            return None
        await self._off_loop(self._stream_now, tracker, asyncio.get_running_loop())

    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Tuple[int, List[Event]]:
        """How many events of the tracker's latest session are stored, and the tracker's events after those (as Rasa's)."""
        stored = session.execute(
            _COUNT_OF_LATEST_SESSION,
            {"sender_id": tracker.sender_id, "session_started": SessionStarted.type_name},
        ).scalar()
        return stored, list(itertools.islice(tracker.events, stored, len(tracker.events)))

    def _stream_now(self, tracker: DialogueStateTracker, loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        with self.session_scope() as session:
            _, new_events = self._additional_events(session, tracker)
        self._publish(self.event_broker, tracker.sender_id, [event.as_dict() for event in new_events], loop)

    async def _stream_new_events(
        self, event_broker: EventBroker, new_events: List[Event], sender_id: Text
    ) -> None:
        self._publish(event_broker, sender_id, [event.as_dict() for event in new_events])

    @staticmethod
    def _publish(
        event_broker: EventBroker,
        sender_id: Text,
        events: List[Dict[Text, Any]],
        loop: Optional[asyncio.AbstractEventLoop] = None,
    ) -> None:
        """Publishes ``events``: at once to a broker with ``publish_many``, else one by one on ``loop``.

        Rasa's brokers expect ``publish`` on Rasa's event loop (the Pika
        broker starts an asyncio task there), and this may run on the
        worker thread: then each ``publish`` is handed to ``loop`` in order.
        """
        bodies = []
        for data in events:
            body = {"sender_id": sender_id}
            body.update(data)
            bodies.append(body)
        publish_many = getattr(event_broker, "publish_many", None)
        if publish_many is not None:
            if bodies:
                publish_many(bodies)
        elif loop is not None:
            for body in bodies:
                loop.call_soon_threadsafe(event_broker.publish, body)
        else:
            for body in bodies:
                event_broker.publish(body)

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Stores the tracker's new events, after publishing them to the event broker."""
        progress = _SaveProgress(asyncio.get_running_loop())
        await self._off_loop(self._save_now, tracker, progress)
        logger.debug(f"Tracker with sender_id '{tracker.sender_id}' stored to database")

    def _save_now(self, tracker: DialogueStateTracker, progress: Optional["_SaveProgress"] = None) -> None:
        progress = progress or _SaveProgress()
        with self.session_scope() as session:
            stored, events = self._additional_events(session, tracker)
            if not events:
                return
            serialised = [(event, event.as_dict()) for event in events]
            if self.event_broker is not None:
                # Before the rows are written, as Rasa's save does; after a
                # retry, only what the failed attempt had not published.
                already_published = max(progress.published_through - stored, 0)
                self._publish(
                    self.event_broker, tracker.sender_id, [data for _, data in serialised[already_published:]], progress.loop
                )
                progress.published_through = len(tracker.events)
            rows = [
                {
                    "sender_id": tracker.sender_id,
                    "type_name": event.type_name,
                    "timestamp": data.get("timestamp"),
                    "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
                    "action_name": data.get("name"),
                    "data": json.dumps(data),
                }
                for event, data in serialised
            ]
            session.execute(self.SQLEvent.__table__.insert(), rows)
            session.commit()


class _SaveProgress:
    """How far one ``save`` got with publishing, kept across its retries, and the loop it was called on."""

    def __init__(self, loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        self.loop = loop
        self.published_through = 0  # events of the tracker before this index are published
