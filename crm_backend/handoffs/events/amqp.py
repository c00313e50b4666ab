"""The AMQP event source: Rasa's Pika (RabbitMQ) event broker, the scaled profile's.

With several Rasa instances the SQL broker's SQLite table is no option;
they publish every conversation event to a fanout exchange (``rasa-exchange``)
bound to a durable queue (``rasa_events``). ``crm handoffs follow --broker
amqp://...`` consumes that queue with a ``Consumer`` and handles each event
with ``handle_event``, what both event sources share
(crm_backend/handoffs/events/__init__.py): a customer's message is counted
for its conversation and, while a person has the conversation, copied into
the handoff for the agent console.

A message is acknowledged only after its changes are committed, so none is
lost when the consumer or the database stops; one delivered again (after a
crash between commit and ack) changes nothing: the handoff message's key is
the event's ``message_id`` (unique per handoff) and a conversation counts a
message only if it is newer than the last one counted. Several consumers may
share the queue.

The exchange and the queue are declared exactly as Rasa declares them, so
whichever starts first creates them and no event published before the
consumer starts is lost.

A message it cannot handle (not JSON, the wrong shape, one the database
refuses, a bug) is acknowledged and set aside as a dead letter (source
``consumer``) with an excerpt: requeued, it would come back forever;
rejected, it would be gone without a trace. Only the database being away
keeps a message in hand, to try it again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import signal
import threading
import time

import click
import pika
from pika.exceptions import AMQPError

from ... import dead_letters
from ...db import get_session
from . import BadEvent, handle_event, is_customer_message, parse_event

logger = logging.getLogger(__name__)

PREFETCH = 100
RECONNECT_SECONDS = (1, 2, 5, 10)
DATABASE_RETRY_SECONDS = 2.0


def event_key(event: dict, body: bytes) -> str:
    """The event's identity at the broker: Rasa's ``message_id`` of a user event, else a hash of the body."""
    message_id = event.get("message_id")
    if isinstance(message_id, str) and 0 < len(message_id) <= 59:
        return f"amqp:{message_id}"
    return "sha1:" + hashlib.sha1(body).hexdigest()


def handle_body(body: bytes) -> tuple[bool, bool]:
    """Handle one message of the queue (committed): (counted, stored in a handoff).

    A message that cannot be read is set aside (a dead letter) and handled as nothing.
    """
    try:
        event = parse_event(body)
    except BadEvent as error:
        set_aside(body, str(error))
        return False, False
    if event.get("event") not in ("user", "bot"):
        return False, False
    sender_id = event.get("sender_id")
    if not isinstance(sender_id, str):
        if is_customer_message(event):
            set_aside(body, "a customer message without a sender_id")
        return False, False
    return handle_event(get_session(), sender_id, event_key(event, body), event)


def set_aside(body: bytes, error: BaseException | str) -> int | None:
    """Record a message that cannot be handled (its key: Rasa's message_id, or a hash of the body)."""
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):
        event = None
    key = event_key(event if isinstance(event, dict) else {}, body)
    return dead_letters.set_aside(get_session(), source="consumer", position=key, error=error, raw=body)


class Consumer:
    def __init__(self, url: str, queue: str, exchange: str, prefetch: int = PREFETCH):
        self.parameters = pika.URLParameters(url)
        self.queue = queue
        self.exchange = exchange
        self.prefetch = prefetch
        self.stopping = threading.Event()
        self.connected = False

    def _declare(self, channel) -> None:
        # As Rasa's PikaEventBroker declares them (aio-pika defaults): another
        # flag would make RabbitMQ refuse the second declaration.
        channel.exchange_declare(self.exchange, exchange_type="fanout")
        channel.queue_declare(self.queue, durable=True)
        channel.queue_bind(self.queue, self.exchange, routing_key="")
        channel.basic_qos(prefetch_count=self.prefetch)

    def _deliver(self, connection, channel, method, body: bytes) -> None:
        while not self.stopping.is_set():
            try:
                counted, stored = handle_body(body)
            except Exception as error:  # noqa: BLE001  (one message must not stop the consumer)
                get_session().rollback()
                if dead_letters.is_transient(error):
                    # The database is away: keep the message and try again.
                    logger.warning("database unavailable, retrying in %.0f s: %s", DATABASE_RETRY_SECONDS, type(error).__name__)
                    connection.sleep(DATABASE_RETRY_SECONDS)  # keeps answering RabbitMQ's heartbeats
                    continue
                # A message this code cannot handle: set it aside and acknowledge
                # it, rather than block the queue or see it again after a restart.
                set_aside(body, error)
                channel.basic_ack(method.delivery_tag)
                return
            if stored:
                logger.info("stored a customer message of a handed-off conversation")
            channel.basic_ack(method.delivery_tag)
            return
        # Stopping with the message unhandled: RabbitMQ delivers it again.
        channel.basic_nack(method.delivery_tag, requeue=True)

    def _consume_once(self) -> None:
        connection = pika.BlockingConnection(self.parameters)
        try:
            channel = connection.channel()
            self._declare(channel)
            logger.info("consuming queue %s of exchange %s", self.queue, self.exchange)
            self.connected = True
            for method, _properties, body in channel.consume(self.queue, inactivity_timeout=1.0):
                if self.stopping.is_set():
                    break
                if method is None:  # nothing for a second: look at the stop flag
                    continue
                self._deliver(connection, channel, method, body)
            channel.cancel()
        finally:
            if connection.is_open:
                connection.close()

    def run(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            self.connected = False
            try:
                self._consume_once()
            except AMQPError as error:
                failures = 0 if self.connected else failures + 1
                delay = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                logger.warning("RabbitMQ unavailable (%s); reconnecting in %d s", type(error).__name__, delay)
                self.stopping.wait(delay)


def consume(url: str, queue: str, exchange: str) -> None:
    """Run the consumer until SIGTERM or Ctrl-C."""
    logging.getLogger("pika").setLevel(logging.WARNING)  # its INFO is every connection step
    consumer = Consumer(url, queue, exchange)

    def stop(signum, frame):
        consumer.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    shown = pika.URLParameters(url)
    click.echo(f"Consuming Rasa's event broker at amqp://{shown.host}:{shown.port} (queue {queue}) for handed-off conversations.")
    started = time.monotonic()
    consumer.run()
    click.echo(f"Event broker consumer stopped after {time.monotonic() - started:.0f} s.")
