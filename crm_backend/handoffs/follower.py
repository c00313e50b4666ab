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
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import Engine, bindparam, create_engine, func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from .. import conversations
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


def _event(data: str) -> dict | None:
    try:
        event = json.loads(data)
    except (TypeError, ValueError):
        return None
    return event if isinstance(event, dict) else None


def _timestamp(event: dict | None) -> float | None:
    timestamp = (event or {}).get("timestamp")
    return float(timestamp) if isinstance(timestamp, (int, float)) else None


def user_event(data: str) -> dict | None:
    """A customer's message event (not an EXTERNAL: trigger of the system), else None."""
    event = _event(data)
    if event is None or event.get("event") != "user":
        return None
    message = event.get("text")
    if not isinstance(message, str) or not message.strip() or message.startswith("EXTERNAL: "):
        return None
    return event


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
        if service.add_customer_message(session, record, event["text"][:20000], event_key, sent_at=sent_at) is None:
            return False
        session.commit()
        return True
    except IntegrityError:
        session.rollback()  # another follower stored it first
        return False


def handle_event(session, sender_id: str, event_key: str, data: str) -> tuple[bool, bool]:
    """Everything the CRM does with one broker event, committed: (counted, stored in a handoff).

    A customer's message is counted for its conversation and, while the
    conversation has an open handoff, copied into it. Other events are ignored.
    """
    event = user_event(data)
    if event is None or not sender_id:
        return False, False
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


class Follower:
    def __init__(self, events: Engine, poll_seconds: float = POLL_SECONDS):
        self.events = events
        self.poll_seconds = poll_seconds
        self.position: int | None = None
        self.stopping = threading.Event()

    def _copy(self, rows, handoffs: dict[str, OpenHandoff]) -> int:
        session = get_session()
        stored = 0
        for event_id, sender_id, data in rows:
            handoff = handoffs.get(sender_id)
            if handoff is None:
                continue
            event = user_event(data)
            if event is not None:
                stored += copy_customer_message(session, handoff, str(event_id), event)
        return stored

    def _count(self, rows) -> int:
        """Count every conversation's customer messages (for the containment rate); how many were new."""
        messages = [
            (sender_id, event)
            for _, sender_id, data in rows
            if (event := user_event(data)) is not None and _timestamp(event) is not None and len(sender_id or "") <= 128
        ]
        if not messages:
            return 0
        session = get_session()
        senders = {sender_id for sender_id, _ in messages}
        handed_off = set(session.scalars(select(Handoff.conversation_id).where(Handoff.conversation_id.in_(senders))))
        counted = sum(count_customer_message(session, sender_id, event, sender_id in handed_off) for sender_id, event in messages)
        session.commit()
        return counted

    def catch_up(self) -> int:
        """Read the open handoffs' conversations again; count conversations from where counting stopped."""
        with self.events.connect() as connection:
            newest = connection.execute(text("SELECT COALESCE(MAX(id), 0) FROM events")).scalar_one()
            handoffs = open_handoffs(get_session())
            rows = []
            if handoffs:
                rows = connection.execute(_EVENTS_OF, {"senders": list(handoffs), "upto": newest}).all()
            resume = resume_position(connection, get_session(), newest)
        stored = self._copy(rows, handoffs)
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
        counted = self._count(rows)
        if counted:
            logger.debug("counted %d customer message(s) of conversations", counted)
        handoffs = open_handoffs(get_session())
        get_session().rollback()  # end the read transaction; see changes of other processes
        stored = self._copy(rows, handoffs) if handoffs else 0
        # Only now: rows that failed (say, a busy database) are read again next time.
        self.position = rows[-1][0]
        return stored

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                stored = self.poll()
            except OperationalError as error:
                # The broker's table does not exist until Rasa has started,
                # or SQLite is busy: try again shortly.
                get_session().rollback()
                logger.debug("event broker not readable yet: %s", error)
                stored = 0
            if stored:
                logger.info("stored %d customer message(s) of handed-off conversations", stored)
            self.stopping.wait(self.poll_seconds)


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
