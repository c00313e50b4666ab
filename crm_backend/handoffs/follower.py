"""Follows handed-off conversations through Rasa's event broker.

While a person has a conversation the bot is paused, but every customer
message is still an event: Rasa publishes it to its event broker (the SQL
broker on the embedded default: an ``events`` table of ``id, sender_id,
data``). ``crm handoffs follow`` reads that table from where it left off and
copies the customer's messages of conversations with an open handoff into
``handoff_messages``, where the agent console shows them.

Safe to restart and to run next to another follower: a message is stored
once per handoff (the broker event id is ``source_event_id``, unique per
handoff), and on start the open handoffs' conversations are read again
from their beginning.
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
from sqlalchemy import Engine, bindparam, create_engine, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from ..db import get_session
from ..models import Handoff
from . import service

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
BATCH = 500
_NEW_EVENTS = text("SELECT id, sender_id, data FROM events WHERE id > :after ORDER BY id LIMIT :limit")
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


def customer_text(data: str) -> tuple[str, float] | None:
    """(text, timestamp) of a customer's message event, else None."""
    try:
        event = json.loads(data)
    except (TypeError, ValueError):
        return None
    if not isinstance(event, dict) or event.get("event") != "user":
        return None
    message = event.get("text")
    if not isinstance(message, str) or not message.strip() or message.startswith("EXTERNAL: "):
        return None
    timestamp = event.get("timestamp")
    return message, float(timestamp) if isinstance(timestamp, (int, float)) else time.time()


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
            found = customer_text(data)
            if found is None or found[1] < handoff.since:
                continue
            record = session.get(Handoff, handoff.id)
            try:
                sent_at = datetime.fromtimestamp(found[1], tz=timezone.utc)
                if service.add_customer_message(session, record, found[0][:20000], str(event_id), sent_at=sent_at) is not None:
                    session.commit()
                    stored += 1
            except IntegrityError:
                session.rollback()  # another follower stored it first
        return stored

    def catch_up(self) -> int:
        """Read the open handoffs' conversations again, then follow from the newest event."""
        with self.events.connect() as connection:
            newest = connection.execute(text("SELECT COALESCE(MAX(id), 0) FROM events")).scalar_one()
            handoffs = open_handoffs(get_session())
            rows = []
            if handoffs:
                rows = connection.execute(_EVENTS_OF, {"senders": list(handoffs), "upto": newest}).all()
        self.position = newest
        return self._copy(rows, handoffs)

    def poll(self) -> int:
        """Copy what arrived since the last poll; the number of messages stored."""
        if self.position is None:
            return self.catch_up()
        with self.events.connect() as connection:
            rows = connection.execute(_NEW_EVENTS, {"after": self.position, "limit": BATCH}).all()
        if not rows:
            return 0
        self.position = rows[-1][0]
        handoffs = open_handoffs(get_session())
        get_session().rollback()  # end the read transaction; see changes of other processes
        return self._copy(rows, handoffs) if handoffs else 0

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
@with_appcontext
def follow(events_url: str | None, poll_seconds: float) -> None:
    """Copy customers' messages of handed-off conversations from Rasa's event broker, until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
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
