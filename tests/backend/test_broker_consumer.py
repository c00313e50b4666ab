"""The scaled profile's follower: Rasa's events from RabbitMQ (Pika broker) are
handled like the SQL broker's, once each, acknowledged after they are stored.

The queue round trip needs RabbitMQ (RABBITMQ_TEST_URL, default the local
guest account) and is skipped, with the reason, when none answers.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid

import pytest
from sqlalchemy import select

from crm_backend.db import get_session
from crm_backend.handoffs.events.amqp import Consumer, event_key, handle_body
from crm_backend.models import Conversation
from handoff_support import add_claimed_handoff, handoff_messages

RABBITMQ = os.environ.get("RABBITMQ_TEST_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def rasa_event(sender: str, text: str, at: float | None = None, event: str = "user") -> bytes:
    """A message body as Rasa's PikaEventBroker publishes it (the event plus its sender_id)."""
    body = {"sender_id": sender, "event": event, "text": text, "timestamp": at or time.time(), "parse_data": {}}
    if event == "user":
        body.update(input_channel="socketio", message_id=uuid.uuid4().hex, metadata={"email": "ada@example.com"})
    return json.dumps(body).encode()


@pytest.fixture
def handoff(app):
    add_claimed_handoff(app)


def user_messages(app, conversation_id: str) -> int | None:
    with app.app_context():
        return get_session().scalar(select(Conversation.user_messages).where(Conversation.conversation_id == conversation_id))


def test_a_customer_message_of_a_handed_off_conversation_is_stored_and_counted_once(app, handoff):
    body = rasa_event("conv-1", "are you still there?")
    with app.app_context():
        handle_body(body)
        handle_body(body)  # delivered again after a crash before the ack

    assert handoff_messages(app) == ["are you still there?"]
    assert user_messages(app, "conv-1") == 1


def test_other_events_and_other_conversations_are_not_copied(app, handoff):
    with app.app_context():
        results = [
            handle_body(rasa_event("conv-1", "written before the handoff", at=time.time() - 3600)),
            handle_body(rasa_event("conv-1", "EXTERNAL: give_feedback")),
            handle_body(rasa_event("conv-2", "someone else's conversation")),
            handle_body(rasa_event("conv-2", "the bot, elsewhere", event="bot")),
            handle_body(b"not json"),
        ]

    assert [stored for _, stored in results] == [False] * 5
    assert handoff_messages(app) == []
    assert user_messages(app, "conv-2") == 1


def test_the_assistants_messages_after_the_handoff_are_copied_but_not_counted(app, handoff):
    with app.app_context():
        counted, stored = handle_body(rasa_event("conv-1", "I'm the bot", event="bot"))
    assert (counted, stored) == (False, True)
    assert handoff_messages(app) == ["I'm the bot"]
    assert not user_messages(app, "conv-1")


def test_the_key_of_an_event_is_rasas_message_id_or_a_hash_of_the_body():
    assert event_key({"message_id": "abc123"}, b"{}") == "amqp:abc123"
    assert event_key({}, b'{"text": "x"}').startswith("sha1:")
    assert len(event_key({}, b"{}")) <= 64


@pytest.fixture
def rabbitmq():
    pika = pytest.importorskip("pika")
    try:
        connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ + "?connection_attempts=1&socket_timeout=3"))
    except pika.exceptions.AMQPError as error:
        pytest.skip(f"no RabbitMQ answers at {RABBITMQ} ({type(error).__name__}); set RABBITMQ_TEST_URL to run this test")
    names = f"helpdesk-test-{uuid.uuid4().hex[:8]}"
    channel = connection.channel()
    yield channel, names, names
    channel.queue_delete(names)
    channel.exchange_delete(names)
    connection.close()


def test_events_published_to_rabbitmq_reach_the_handoff_and_are_acknowledged(app, handoff, rabbitmq):
    channel, queue, exchange = rabbitmq
    consumer = Consumer(RABBITMQ, queue, exchange)
    # Declared by the consumer as Rasa declares them; the consumer may start first.
    consumer._declare(channel)
    for text in ("first while handed off", "second while handed off"):
        channel.basic_publish(exchange, "", rasa_event("conv-1", text))

    def run():
        with app.app_context():
            consumer.run()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while len(handoff_messages(app)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        consumer.stopping.set()
        thread.join(timeout=10)

    assert handoff_messages(app) == ["first while handed off", "second while handed off"]
    assert channel.queue_declare(queue, durable=True, passive=True).method.message_count == 0
