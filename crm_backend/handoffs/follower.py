"""Follows handed-off conversations through Rasa's event broker.

While a person has a conversation the bot is paused, but every customer
message is still an event: Rasa publishes it to its event broker (the SQL
broker on the embedded default: an ``events`` table of ``id, sender_id,
data``). ``crm handoffs follow`` reads that table from where it left off and
copies the customer's messages of conversations with an open handoff into
``handoff_messages``, where the agent console shows them. It also counts
every customer message of every conversation into ``conversations``
(crm_backend/conversations.py), for the dashboard's containment rate.

Safe to restart and to run next to another follower: a message is stored
once per handoff (the broker event id is ``source_event_id``, unique per
handoff), and on start the open handoffs' conversations are read again
from their beginning. Conversations are counted again from the last event
older than the newest message already counted (found by binary search on
the event ids: the position is kept in memory only); a message read twice
is not counted twice.

With ``--broker amqp://...`` it consumes Rasa's Pika (RabbitMQ) event broker
instead (the scaled profile; crm_backend/handoffs/consumer.py), handling each
event with the same ``handle_event``.

An event is whatever a chat visitor made Rasa store, so nothing in one may stop
the follower: its text is cleaned before it is stored (a lone surrogate
becomes U+FFFD, NUL is dropped, ``read_user_event``), and an event it cannot
read or store (not JSON, the wrong shape, a row the database refuses) is set
aside as a dead letter (crm_backend/dead_letters.py) while the follower moves
on. Only the database being away or busy makes it read the events again.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import Engine, bindparam, create_engine, func, select, text
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.exc import IntegrityError, OperationalError

from .. import conversations, dead_letters
from ..db import get_session
from ..models import Conversation, Handoff
from . import service

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


def default_events_url() -> str:
    var_dir = os.environ.get("VAR_DIR", "var")
    return f"sqlite:///{os.environ.get('RASA_EVENTS_DB', os.path.join(var_dir, 'rasa_events.db'))}"


@dataclass
class OpenHandoff:
    id: int
    since: float  # epoch seconds: messages from then on belong to the handoff


def open_handoffs(session) -> dict[str, OpenHandoff]:
    rows = session.execute(
        select(Handoff.conversation_id, Handoff.id, Handoff.created_at).where(Handoff.status.in_(service.ACTIVE))
    ).all()
    return {conversation: OpenHandoff(handoff_id, created.timestamp()) for conversation, handoff_id, created in rows}


class BadEvent(ValueError):
    """A broker event this code cannot read: not JSON, not an object, or a customer message of the wrong shape."""


# Epoch seconds a datetime can hold (years 1970 to 9999).
_LATEST_TIMESTAMP = 253402300799.0


def _valid_timestamp(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= _LATEST_TIMESTAMP


def parse_event(data: str | bytes) -> dict:
    """The broker event's JSON object, a customer message's fields checked and cleaned; BadEvent if it cannot be read."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data).decode("utf-8", "replace")
    if not isinstance(data, str):
        raise BadEvent(f"the event is {type(data).__name__}, not JSON text")
    try:
        event = json.loads(data)
    except RecursionError:
        raise BadEvent("the event's JSON is nested too deeply") from None
    except ValueError as error:
        raise BadEvent(f"the event is not JSON ({getattr(error, 'msg', error)})") from None
    if not isinstance(event, dict):
        raise BadEvent(f"the event is a JSON {type(event).__name__}, not an object")
    if event.get("event") == "user":
        _check_user_event(event)
    return event


def _check_user_event(event: dict) -> None:
    """The fields of a customer message the CRM uses: their types checked, their text cleaned (in place)."""
    message = event.get("text")
    if message is not None and not isinstance(message, str):
        raise BadEvent("the customer message's text is not a string")
    if "timestamp" in event and not _valid_timestamp(event["timestamp"]):
        raise BadEvent("the customer message's timestamp is not a time")
    metadata = event.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise BadEvent("the customer message's metadata is not an object")
    for name in ("input_channel", "sender_id", "message_id"):
        value = event.get(name)
        if value is not None and not isinstance(value, str):
            raise BadEvent(f"the customer message's {name} is not a string")
        if value is not None:
            event[name] = dead_letters.clean_text(value)
    if message is not None:
        event["text"] = dead_letters.clean_text(message)
    if metadata is not None and isinstance(metadata.get("email"), str):
        metadata["email"] = dead_letters.clean_text(metadata["email"])


def is_customer_message(event: dict) -> bool:
    message = event.get("text")
    return (
        event.get("event") == "user"
        and isinstance(message, str)
        and bool(message.strip())
        and not message.startswith("EXTERNAL: ")
    )


def read_user_event(data: str | bytes) -> dict | None:
    """A customer's message event (not an EXTERNAL: trigger of the system), cleaned; None for other events; BadEvent."""
    event = parse_event(data)
    return event if is_customer_message(event) else None


def _event(data: str) -> dict | None:
    try:
        return parse_event(data)
    except BadEvent:
        return None


def _timestamp(event: dict | None) -> float | None:
    timestamp = (event or {}).get("timestamp")
    return float(timestamp) if _valid_timestamp(timestamp) else None


def user_event(data: str) -> dict | None:
    """A customer's message event (not an EXTERNAL: trigger of the system), else None."""
    try:
        return read_user_event(data)
    except BadEvent:
        return None


def customer_text(data: str) -> tuple[str, float] | None:
    """(text, timestamp) of a customer's message event, else None."""
    event = user_event(data)
    if event is None:
        return None
    timestamp = _timestamp(event)
    return event["text"], timestamp if timestamp is not None else time.time()


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
        timestamp = _timestamp(_event(found[1])) if found is not None else None
        if timestamp is None or timestamp >= target:
            high = middle - 1
        else:
            low = found[0]
    return low


# What the CRM does with one customer message event, wherever it came from:
# the SQL broker's table (Follower below) or RabbitMQ (consumer.py).


def count_customer_message(session, sender_id: str, event: dict, handed_off: bool) -> bool:
    """Count one customer message of a conversation (not committed); False if counted before or not countable."""
    timestamp = _timestamp(event)
    if timestamp is None or len(sender_id or "") > 128:
        return False
    metadata = event.get("metadata") if isinstance(event.get("metadata"), dict) else {}
    return conversations.record_user_message(
        session,
        sender_id,
        datetime.fromtimestamp(timestamp, tz=timezone.utc),
        channel=conversations.channel_name(event.get("input_channel")),
        customer_id=conversations.customer_id_for(session, metadata.get("email")),
        handed_off=handed_off,
    )


def copy_customer_message(session, handoff: OpenHandoff, event_key: str, event: dict) -> bool:
    """Store one customer message in its open handoff, committed; False if older than the handoff or stored before.

    ``event_key`` identifies the event at its source (unique per handoff), so
    reading an event twice stores it once.
    """
    timestamp = _timestamp(event)
    sent = timestamp if timestamp is not None else time.time()
    if sent < handoff.since:
        return False
    record = session.get(Handoff, handoff.id)
    try:
        sent_at = datetime.fromtimestamp(sent, tz=timezone.utc)
        message = dead_letters.clean_text(event["text"][:20000])
        if service.add_customer_message(session, record, message, event_key, sent_at=sent_at) is None:
            return False
        session.commit()
        return True
    except IntegrityError:
        session.rollback()  # another follower stored it first
        return False


def handle_event(session, sender_id: str, event_key: str, data: str | dict) -> tuple[bool, bool]:
    """Everything the CRM does with one broker event, committed: (counted, stored in a handoff).

    ``data`` is the event's JSON, or the object ``parse_event`` made of it. A
    customer's message is counted for its conversation and, while the
    conversation has an open handoff, copied into it. Other events are
    ignored; one that cannot be read raises BadEvent.
    """
    event = data if isinstance(data, dict) else read_user_event(data)
    if event is None or not is_customer_message(event) or not sender_id:
        return False, False
    sender_id = dead_letters.clean_text(sender_id)
    handoffs = session.execute(
        select(Handoff.id, Handoff.created_at, Handoff.status)
        .where(Handoff.conversation_id == sender_id)
        .order_by(Handoff.id.desc())
    ).all()
    counted = count_customer_message(session, sender_id, event, handed_off=bool(handoffs))
    session.commit()
    open_one = next((row for row in handoffs if row.status in service.ACTIVE), None)
    if open_one is None:
        return counted, False
    return counted, copy_customer_message(session, OpenHandoff(open_one.id, open_one.created_at.timestamp()), event_key, event)


@dataclass
class Message:
    """A customer's message read from the broker's table."""

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
        """The customers' messages among ``rows``; an event that cannot be read is set aside."""
        messages = []
        for event_id, sender_id, data in rows:
            try:
                event = read_user_event(data)
            except BadEvent as error:
                self._set_aside(event_id, str(error), data)
                continue
            if event is not None and isinstance(sender_id, str) and sender_id:
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
        messages = [m for m in messages if _timestamp(m.event) is not None and len(m.sender_id) <= 128]
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


@click.group("handoffs")
def handoffs_cli() -> None:
    """Human handoff: follow handed-off conversations."""


@handoffs_cli.command("follow")
@click.option("--events-url", default=None, help="SQLAlchemy URL of Rasa's SQL event broker database.")
@click.option("--poll-seconds", default=POLL_SECONDS, show_default=True, type=float)
@click.option(
    "--broker",
    "broker_url",
    default=None,
    envvar="RASA_EVENTS_BROKER_URL",
    help="amqp://user:password@host:port/vhost of Rasa's Pika (RabbitMQ) event broker: consume its queue instead of the SQL table.",
)
@click.option("--queue", default="rasa_events", envvar="RASA_EVENTS_QUEUE", show_default=True, help="With --broker: the queue Rasa publishes to.")
@click.option(
    "--exchange", default="rasa-exchange", envvar="RASA_EVENTS_EXCHANGE", show_default=True, help="With --broker: Rasa's fanout exchange."
)
@with_appcontext
def follow(events_url: str | None, poll_seconds: float, broker_url: str | None, queue: str, exchange: str) -> None:
    """Copy customers' messages of handed-off conversations from Rasa's event broker, until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if broker_url:
        from .consumer import consume

        consume(broker_url, queue=queue, exchange=exchange)
        return
    url = events_url or current_app.config.get("RASA_EVENTS_URL") or default_events_url()
    follower = Follower(create_engine(url), poll_seconds=poll_seconds)

    def stop(signum, frame):
        follower.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"Following Rasa's event broker at {url} for handed-off conversations.")
    follower.run()
    click.echo("Handoff follower stopped.")


def init_app(app) -> None:
    app.config.setdefault("RASA_EVENTS_URL", os.environ.get("RASA_EVENTS_URL", ""))
    app.cli.add_command(handoffs_cli)
