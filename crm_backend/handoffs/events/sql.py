"""The SQL event source: follows handed-off conversations through Rasa's SQL event broker.

While a person has a conversation the bot is paused, but every customer
message is still an event: Rasa publishes it to its event broker (the SQL
broker on the embedded default: an ``events`` table of ``id, sender_id,
data``). ``crm handoffs follow`` reads that table from where it left off with
a ``Follower`` and does with each customer message what both event sources do
(crm_backend/handoffs/events/__init__.py). Unlike the AMQP source (amqp.py)
it reads in batches: it counts a batch's messages together, and looks up the
open handoffs once per batch.

Safe to restart and to run next to another follower: a message is stored
once per handoff (the broker event id is ``source_event_id``, unique per
handoff), and on start the open handoffs' conversations are read again
from their beginning. Conversations are counted again from the last event
older than the newest message already counted (found by binary search on
the event ids: the position is kept in memory only); a message read twice
is not counted twice.

A row is read as any event is (``read_user_event``, which cleans its text); one
it cannot read or store (not JSON, the wrong shape, a row the database refuses) is set
aside as a dead letter (crm_backend/dead_letters.py) while the follower moves
on. Only the database being away or busy makes it read the events again.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
from dataclasses import dataclass

import click
from sqlalchemy import Engine, bindparam, create_engine, func, select, text
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.exc import OperationalError

from ... import dead_letters
from ...db import get_session
from ...models import Conversation, Handoff
from .. import service
from . import (
    BadEvent,
    OpenHandoff,
    copy_customer_message,
    count_customer_message,
    event_timestamp,
    is_bot_message,
    is_customer_message,
    parse_event,
)

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
BATCH = 500
# Events of different conversations may reach the broker's table slightly out
# of time order; counting resumes this much earlier (nothing is counted twice).
RESUME_MARGIN_SECONDS = 60.0
_NEW_EVENTS = text("SELECT id, sender_id, data FROM events WHERE id > :after ORDER BY id LIMIT :limit")
_FIRST_FROM = text("SELECT id, data FROM events WHERE id >= :first ORDER BY id LIMIT 1")
_EVENTS_OF = text(
    "SELECT id, sender_id, data FROM events WHERE sender_id IN :senders AND id <= :upto ORDER BY id"
).bindparams(bindparam("senders", expanding=True))


def open_handoffs(session) -> dict[str, OpenHandoff]:
    rows = session.execute(
        select(Handoff.conversation_id, Handoff.id, Handoff.created_at).where(Handoff.status.in_(service.ACTIVE))
    ).all()
    return {conversation: OpenHandoff(handoff_id, created.timestamp()) for conversation, handoff_id, created in rows}


def _event(data: str) -> dict | None:
    try:
        return parse_event(data)
    except BadEvent:
        return None


def resume_position(connection, session, newest: int) -> int:
    """The id of the last event older than the newest counted message (less the margin); 0 if none is counted.

    Binary search on the event ids, as events arrive in time order.
    """
    # Rows a handoff made before any message was counted carry the handoff's time: not a count.
    latest = session.scalar(select(func.max(Conversation.last_message_at)).where(Conversation.user_messages > 0))
    if latest is None:
        return 0
    target = latest.timestamp() - RESUME_MARGIN_SECONDS
    low, high = 0, newest
    while low < high:
        middle = (low + high + 1) // 2
        found = connection.execute(_FIRST_FROM, {"first": middle}).first()
        timestamp = event_timestamp(_event(found[1])) if found is not None else None
        if timestamp is None or timestamp >= target:
            high = middle - 1
        else:
            low = found[0]
    return low


@dataclass
class Message:
    """A customer's (or the assistant's) message read from the broker's table."""

    event_id: int
    sender_id: str
    data: str
    event: dict


def _lenient_text(dbapi_connection, connection_record, connection_proxy) -> None:
    # SQLite hands back a TEXT value that is not UTF-8 as an error for the whole
    # query; decoded with replacement characters, the other rows still count.
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.text_factory = lambda raw: raw.decode("utf-8", "replace")


class Follower:
    source = "follower"

    def __init__(self, events: Engine, poll_seconds: float = POLL_SECONDS):
        self.events = events
        self.poll_seconds = poll_seconds
        self.position: int | None = None
        self.stopping = threading.Event()
        if events.dialect.name == "sqlite" and not sqlalchemy_event.contains(events, "checkout", _lenient_text):
            sqlalchemy_event.listen(events, "checkout", _lenient_text)

    def _set_aside(self, event_id, error: BaseException | str, data) -> None:
        dead_letters.set_aside(get_session(), source=self.source, position=f"event {event_id}", error=error, raw=data)

    def _messages(self, rows) -> list[Message]:
        """The customers' and the assistant's messages among ``rows``; an event that cannot be read is set aside."""
        messages = []
        for event_id, sender_id, data in rows:
            try:
                event = parse_event(data)
            except BadEvent as error:
                self._set_aside(event_id, str(error), data)
                continue
            if not (is_customer_message(event) or is_bot_message(event)):
                continue
            if isinstance(sender_id, str) and sender_id:
                messages.append(Message(event_id, dead_letters.clean_text(sender_id), data, event))
        return messages

    def _copy(self, messages: list[Message], handoffs: dict[str, OpenHandoff]) -> int:
        session = get_session()
        stored = 0
        for message in messages:
            handoff = handoffs.get(message.sender_id)
            if handoff is None:
                continue
            try:
                stored += copy_customer_message(session, handoff, str(message.event_id), message.event)
            except Exception as error:  # noqa: BLE001  (one event must not stop the follower)
                if dead_letters.is_transient(error):
                    raise
                self._set_aside(message.event_id, error, message.data)
        return stored

    def _count_each(self, session, messages: list[Message], handed_off: set[str]) -> int:
        counted = sum(count_customer_message(session, m.sender_id, m.event, m.sender_id in handed_off) for m in messages)
        session.commit()
        return counted

    def _count(self, messages: list[Message]) -> tuple[int, set[int]]:
        """Count every conversation's customer messages (for the containment rate): how many
        were new, and the ids of events set aside because they could not be counted."""
        messages = [
            m for m in messages if is_customer_message(m.event) and event_timestamp(m.event) is not None and len(m.sender_id) <= 128
        ]
        if not messages:
            return 0, set()
        session = get_session()
        senders = {m.sender_id for m in messages}
        handed_off = set(session.scalars(select(Handoff.conversation_id).where(Handoff.conversation_id.in_(senders))))
        try:
            return self._count_each(session, messages, handed_off), set()
        except Exception as error:  # noqa: BLE001
            session.rollback()
            if dead_letters.is_transient(error):
                raise
        # One of them cannot be stored: count them one at a time and set that one aside.
        counted, failed = 0, set()
        for message in messages:
            try:
                counted += self._count_each(session, [message], handed_off)
            except Exception as error:  # noqa: BLE001
                session.rollback()
                if dead_letters.is_transient(error):
                    raise
                self._set_aside(message.event_id, error, message.data)
                failed.add(message.event_id)
        return counted, failed

    def catch_up(self) -> int:
        """Read the open handoffs' conversations again; count conversations from where counting stopped."""
        with self.events.connect() as connection:
            newest = connection.execute(text("SELECT COALESCE(MAX(id), 0) FROM events")).scalar_one()
            handoffs = open_handoffs(get_session())
            rows = []
            if handoffs:
                rows = connection.execute(_EVENTS_OF, {"senders": list(handoffs), "upto": newest}).all()
            resume = resume_position(connection, get_session(), newest)
        stored = self._copy(self._messages(rows), handoffs)
        self.position = resume
        return stored

    def poll(self) -> int:
        """Copy what arrived since the last poll; the number of messages stored."""
        if self.position is None:
            return self.catch_up()
        with self.events.connect() as connection:
            rows = connection.execute(_NEW_EVENTS, {"after": self.position, "limit": BATCH}).all()
        if not rows:
            return 0
        messages = self._messages(rows)
        counted, failed = self._count(messages)
        if counted:
            logger.debug("counted %d customer message(s) of conversations", counted)
        handoffs = open_handoffs(get_session())
        get_session().rollback()  # end the read transaction; see changes of other processes
        stored = self._copy([m for m in messages if m.event_id not in failed], handoffs) if handoffs else 0
        # Only now: rows that failed (say, a busy database) are read again next
        # time; rows that cannot be handled were set aside and are passed.
        self.position = rows[-1][0]
        return stored

    def run(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            stored, pause = 0, self.poll_seconds
            try:
                stored = self.poll()
                failures = 0
            except Exception as error:  # noqa: BLE001  (the follower must not exit: honcho would stop everything)
                get_session().rollback()
                if isinstance(error, OperationalError):
                    # The broker's table does not exist until Rasa has started,
                    # or SQLite is busy: try again shortly.
                    logger.debug("event broker not readable yet: %s", error)
                else:
                    # A bug, or a database that refuses: say so, try again a little later each time.
                    failures += 1
                    pause = min(30.0, self.poll_seconds * 2**failures)
                    logger.error("following the event broker failed: %s; trying again in %.1f s", dead_letters.describe(error), pause)
            if stored:
                logger.info("stored %d customer message(s) of handed-off conversations", stored)
            self.stopping.wait(pause)


def follow(url: str, poll_seconds: float = POLL_SECONDS) -> None:
    """Run a follower of the broker's table at ``url`` until SIGTERM or Ctrl-C."""
    follower = Follower(create_engine(url), poll_seconds=poll_seconds)

    def stop(signum, frame):
        follower.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"Following Rasa's event broker at {url} for handed-off conversations.")
    follower.run()
    click.echo("Handoff follower stopped.")
