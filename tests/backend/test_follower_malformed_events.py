"""`crm handoffs follow` and what any chat visitor can put in Rasa's event log:
nothing in one event stops the follower, now or after a restart (issue 19).

Each test writes the events the way Rasa's SQL event broker does (one row of
``id, sender_id, data``) and runs a follower, then a new one on the same
table, as honcho or respawn.sh would after a restart.
"""

import json
import threading
import time

import pytest
from sqlalchemy import select, text

from crm_backend.db import get_session
from crm_backend.handoffs.events import sql
from crm_backend.handoffs.events.sql import Follower
from crm_backend.models import Conversation
from handoff_support import add_claimed_handoff, dead_letters, events_database, handoff_messages


@pytest.fixture
def events(tmp_path):
    return events_database(tmp_path)


def publish(engine, sender: str, data: str) -> None:
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO events (sender_id, data) VALUES (:s, :d)"), {"s": sender, "d": data})


def user(message: str, **fields) -> str:
    """A customer's message as Rasa's broker stores it: json.dumps, so a lone surrogate is written as \\ud800."""
    return json.dumps({"event": "user", "text": message, "timestamp": time.time(), "input_channel": "rest", "parse_data": {}, **fields})


@pytest.fixture
def handoff(app):
    add_claimed_handoff(app)


def counted_messages(app, conversation_id: str) -> int | None:
    with app.app_context():
        return get_session().scalar(select(Conversation.user_messages).where(Conversation.conversation_id == conversation_id))


def test_a_lone_surrogate_and_a_nul_neither_stop_the_follower_nor_a_restarted_one(app, events, handoff):
    with app.app_context():
        running = Follower(events)
        running.poll()
        publish(events, "conv-1", user("where \ud800 is it\u0000?", metadata={"email": "ada\ud800@example.com", "page": "\udfff"}))
        publish(events, "conv-2", user("hello \ud800", metadata={"email": "x\ud800@example.com"}))
        running.poll()

        restarted = Follower(events)
        restarted.poll()
        publish(events, "conv-1", user("still there?"))
        restarted.poll()

    # Cleaned, not lost: the agent sees the message; both conversations are counted.
    assert handoff_messages(app) == ["where \ufffd is it?", "still there?"]
    assert counted_messages(app, "conv-1") == 2 and counted_messages(app, "conv-2") == 1
    assert dead_letters(app) == []


def test_events_that_cannot_be_read_are_set_aside_once_and_the_follower_moves_on(app, events, handoff):
    publish(events, "conv-1", "this is not JSON")
    publish(events, "conv-1", user("hi", input_channel=["rest"]))  # the wrong shape
    publish(events, "conv-1", json.dumps({"event": "user", "text": "hi", "timestamp": float("nan")}))
    with app.app_context():
        running = Follower(events)
        running.poll()
        running.poll()
        publish(events, "conv-1", user("anyone there?"))
        running.poll()
        restarted = Follower(events)  # reads the conversation again from its beginning
        restarted.poll()
        restarted.poll()

    assert handoff_messages(app) == ["anyone there?"]
    assert [(source, position) for source, position, _ in dead_letters(app)] == [
        ("follower", "event 1"),
        ("follower", "event 2"),
        ("follower", "event 3"),
    ]
    assert [error for _, _, error in dead_letters(app)] == [
        "the event is not JSON (Expecting value)",
        "the customer message's input_channel is not a string",
        "the customer message's timestamp is not a time",
    ]


def test_a_row_that_is_not_utf8_costs_only_its_bad_bytes(app, events, handoff):
    raw = b'{"event": "user", "text": "caf\xe9 latte", "timestamp": %d}' % int(time.time() + 1)
    with events.begin() as connection:
        connection.execute(text("INSERT INTO events (sender_id, data) VALUES ('conv-1', CAST(:raw AS TEXT))"), {"raw": raw})
    with app.app_context():
        running = Follower(events)
        running.poll()
        publish(events, "conv-1", user("and a cake"))
        running.poll()

    assert handoff_messages(app) == ["caf\ufffd latte", "and a cake"]


def test_an_unexpected_error_costs_the_follower_a_pause_not_its_life(app, events, handoff, monkeypatch):
    real = sql.open_handoffs
    calls = []

    def fails_once(session):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return real(session)

    monkeypatch.setattr(sql, "open_handoffs", fails_once)
    publish(events, "conv-1", user("hello?"))
    running = Follower(events, poll_seconds=0.05)

    def run():
        with app.app_context():
            running.run()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not handoff_messages(app) and time.monotonic() < deadline:
            time.sleep(0.05)
        alive = thread.is_alive()
    finally:
        running.stopping.set()
        thread.join(timeout=10)

    assert alive
    assert handoff_messages(app) == ["hello?"]
