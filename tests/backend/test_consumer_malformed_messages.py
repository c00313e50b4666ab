"""The scaled profile's consumer of Rasa's RabbitMQ events and what any chat
visitor can put in them: a message it cannot handle is acknowledged and set
aside, never requeued forever or dropped without a trace (issue 19)."""

import json
import threading
import time
import uuid
from types import SimpleNamespace

import pytest

from crm_backend.handoffs.events import amqp
from crm_backend.handoffs.events.amqp import Consumer, handle_body
from handoff_support import add_claimed_handoff, dead_letters, handoff_messages
from test_broker_consumer import RABBITMQ, rabbitmq  # noqa: F401  (fixture)


def rasa_event(sender: str, text, **fields) -> bytes:
    """A message body as Rasa's PikaEventBroker publishes it: json.dumps, so a lone surrogate is sent as \\ud800."""
    body = {"sender_id": sender, "event": "user", "text": text, "timestamp": time.time(), "input_channel": "rest",
            "message_id": uuid.uuid4().hex, "parse_data": {}, **fields}
    return json.dumps(body).encode()


@pytest.fixture
def handoff(app):
    add_claimed_handoff(app)


class FakeChannel:
    """What the consumer says to RabbitMQ about each delivery."""

    def __init__(self):
        self.answers: list[tuple[str, int]] = []

    def basic_ack(self, tag):
        self.answers.append(("ack", tag))

    def basic_reject(self, tag, requeue=True):
        self.answers.append(("reject, requeue" if requeue else "reject", tag))

    def basic_nack(self, tag, requeue=True):
        self.answers.append(("nack, requeue" if requeue else "nack", tag))


def deliver(app, consumer: Consumer, channel: FakeChannel, bodies: list[bytes]) -> None:
    connection = SimpleNamespace(sleep=time.sleep)
    with app.app_context():
        for tag, body in enumerate(bodies, start=1):
            consumer._deliver(connection, channel, SimpleNamespace(delivery_tag=tag), body)


def test_a_lone_surrogate_and_a_nul_are_cleaned_and_the_message_reaches_the_agent(app, handoff):
    with app.app_context():
        counted, stored = handle_body(rasa_event("conv-1", "where \ud800 is it\u0000?", metadata={"email": "ada\ud800@example.com"}))

    assert (counted, stored) == (True, True)
    assert handoff_messages(app) == ["where \ufffd is it?"]


def test_messages_it_cannot_handle_are_acknowledged_and_set_aside(app, handoff, monkeypatch):
    real = amqp.handle_event

    def a_bug_on_one_message(session, sender_id, key, event):
        if event.get("text") == "trips a bug":
            raise RuntimeError("a bug")
        return real(session, sender_id, key, event)

    monkeypatch.setattr(amqp, "handle_event", a_bug_on_one_message)
    bugged = rasa_event("conv-1", "trips a bug")
    channel = FakeChannel()

    deliver(app, Consumer(RABBITMQ, "q", "x"), channel, [
        b"\xff not JSON",
        rasa_event("conv-1", ["a", "list"]),
        bugged,
        rasa_event("conv-1", "still there?"),
    ])

    assert channel.answers == [("ack", 1), ("ack", 2), ("ack", 3), ("ack", 4)]
    assert handoff_messages(app) == ["still there?"]
    letters = dead_letters(app)
    assert [source for source, _, _ in letters] == ["consumer"] * 3
    assert letters[0][1].startswith("sha1:") and letters[0][2].startswith("the event is not JSON")
    assert letters[1][2] == "the customer message's text is not a string"
    assert letters[2][1] == f"amqp:{json.loads(bugged)['message_id']}" and letters[2][2].startswith("RuntimeError: a bug")


def test_through_rabbitmq_a_bad_message_neither_blocks_the_queue_nor_comes_back(app, handoff, rabbitmq):
    channel, queue, exchange = rabbitmq
    consumer = Consumer(RABBITMQ, queue, exchange)
    consumer._declare(channel)
    for body in (b"[1, 2, 3]", rasa_event("conv-1", "hi \ud800"), rasa_event("conv-1", "anyone?")):
        channel.basic_publish(exchange, "", body)

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

    assert handoff_messages(app) == ["hi \ufffd", "anyone?"]
    assert [error for _, _, error in dead_letters(app)] == ["the event is a JSON list, not an object"]
    assert channel.queue_declare(queue, durable=True, passive=True).method.message_count == 0
