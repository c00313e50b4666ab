"""The follower counts every conversation's customer messages from Rasa's SQL
event broker into ``conversations`` (for the containment rate), once each,
however often it restarts; a handoff marks its conversation handed off."""

import json
import time

import pytest
from sqlalchemy import create_engine, select, text

from crm_backend import conversations
from crm_backend.db import get_session
from crm_backend.handoffs.events import sql
from crm_backend.handoffs.events.sql import Follower, resume_position
from crm_backend.handoffs.service import request_handoff
from crm_backend.models import Conversation, Customer, Handoff

BASE = float(int(time.time()) - 3600)  # an hour ago, in whole seconds


@pytest.fixture
def events(tmp_path):
    """A database shaped like Rasa's SQL event broker's."""
    engine = create_engine(f"sqlite:///{tmp_path / 'events.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255), data TEXT)"))
    return engine


def publish(engine, sender: str, event: dict) -> None:
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO events (sender_id, data) VALUES (:s, :d)"), {"s": sender, "d": json.dumps(event)})


def user(message: str, at: float, channel: str = "socketio", **metadata) -> dict:
    return {"event": "user", "text": message, "timestamp": at, "input_channel": channel, "metadata": metadata, "parse_data": {}}


def bot(message: str, at: float) -> dict:
    return {"event": "bot", "text": message, "timestamp": at}


def counted(app) -> dict[str, tuple]:
    with app.app_context():
        rows = get_session().scalars(select(Conversation).order_by(Conversation.conversation_id))
        return {
            row.conversation_id: (row.user_messages, row.handed_off, row.channel, row.started_at.timestamp(), row.last_message_at.timestamp())
            for row in rows
        }


def follow(app, events, polls: int = 3) -> Follower:
    """A follower started now (catching up), then polled until it is level."""
    with app.app_context():
        running = Follower(events)
        for _ in range(polls):
            running.poll()
    return running


def test_every_customer_message_of_every_conversation_is_counted(app, events):
    publish(events, "conv-a", user("hi", BASE))
    publish(events, "conv-a", bot("Hello! How can I help?", BASE + 1))
    publish(events, "conv-a", user("where is my order?", BASE + 5))
    publish(events, "conv-a", user("EXTERNAL: give_feedback", BASE + 6))  # the system's, not the customer's
    publish(events, "conv-b", user("refund please", BASE + 10, channel="rest"))
    follow(app, events)
    assert counted(app) == {
        "conv-a": (2, False, "chat", pytest.approx(BASE), pytest.approx(BASE + 5)),
        "conv-b": (1, False, "api", pytest.approx(BASE + 10), pytest.approx(BASE + 10)),
    }


def test_a_restarted_follower_counts_new_messages_and_nothing_twice(app, events):
    publish(events, "conv-a", user("hi", BASE))
    publish(events, "conv-a", user("still there?", BASE + 60))
    follow(app, events)
    publish(events, "conv-a", user("sent while the follower was down", BASE + 120))
    publish(events, "conv-c", user("a new conversation meanwhile", BASE + 130))
    follow(app, events)  # the restart reads the last minute again
    follow(app, events)
    assert {conversation: row[0] for conversation, row in counted(app).items()} == {"conv-a": 3, "conv-c": 1}


def test_two_followers_side_by_side_count_each_message_once(app, events):
    with app.app_context():
        first, second = Follower(events), Follower(events)
        first.poll(), second.poll()
        for n in range(5):
            publish(events, "conv-a", user(f"message {n}", BASE + n))
            first.poll()
            second.poll()
    assert counted(app)["conv-a"][0] == 5


def test_a_handoff_marks_its_conversation_in_the_same_transaction(app, events):
    with app.app_context():
        session = get_session()
        ada = Customer(name="Ada", email="ada@example.com")
        session.add(ada)
        session.flush()
        request_handoff(session, conversation_id="conv-h", reason="I want a person", customer=ada)
        session.rollback()  # the handoff was never stored: neither is the mark
        assert session.scalar(select(Conversation).where(Conversation.conversation_id == "conv-h")) is None
        ada = Customer(name="Ada", email="ada@example.com")
        session.add(ada)
        session.flush()
        request_handoff(session, conversation_id="conv-h", reason="I want a person", customer=ada)
        session.commit()
        ada_id = ada.id
    # The customer's messages before the handoff reach the follower afterwards.
    publish(events, "conv-h", user("my parcel is lost", BASE))
    publish(events, "conv-h", user("human please", BASE + 30))
    follow(app, events)
    user_messages, handed_off, channel, started, _ = counted(app)["conv-h"]
    assert (user_messages, handed_off, channel) == (2, True, "chat")
    assert started == pytest.approx(BASE)
    with app.app_context():
        assert get_session().scalar(select(Conversation.customer_id)) == ada_id


def test_the_follower_marks_conversations_whose_handoff_it_missed(app, events):
    with app.app_context():
        session = get_session()
        ada = Customer(name="Ada", email="ada@example.com")
        session.add(ada)
        session.flush()
        # Written by another path (an import, an older CRM): no conversation row.
        session.add(Handoff(conversation_id="conv-x", customer_id=ada.id, reason="help", status="resolved"))
        session.commit()
    publish(events, "conv-x", user("thanks", BASE))
    follow(app, events)
    assert counted(app)["conv-x"][:2] == (1, True)


def test_the_customer_is_known_from_the_email_the_page_passed(app, events):
    with app.app_context():
        session = get_session()
        session.add(Customer(name="Ada", email="ada@example.com"))
        session.commit()
    publish(events, "conv-m", user("hi", BASE, email="Ada@Example.com"))
    publish(events, "conv-n", user("hi", BASE, email="nobody@example.com"))
    follow(app, events)
    with app.app_context():
        customer_ids = dict(get_session().execute(select(Conversation.conversation_id, Conversation.customer_id)).all())
    assert customer_ids["conv-n"] is None and customer_ids["conv-m"] is not None


def test_counting_resumes_just_before_the_newest_counted_message(app, events, monkeypatch):
    monkeypatch.setattr(sql, "RESUME_MARGIN_SECONDS", 10.0)
    for n in range(100):
        publish(events, f"conv-{n % 7}", user("hi", BASE + n * 5))  # event n + 1 at BASE + 5n
    with app.app_context():
        session = get_session()
        with events.connect() as connection:
            assert resume_position(connection, session, 100) == 0  # nothing counted yet: from the start
        conversations.record_user_message(session, "conv-0", _moment(BASE + 300))  # event 61's time
        session.commit()
        with events.connect() as connection:
            # The last event older than 300 − 10 s is event 58 (event 59, at BASE + 290, is not older).
            assert resume_position(connection, session, 100) == 58


def _moment(epoch: float):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def test_record_user_message_says_whether_it_counted(app):
    with app.app_context():
        session = get_session()
        first = conversations.record_user_message(session, "conv-said", _moment(BASE))
        again = conversations.record_user_message(session, "conv-said", _moment(BASE))
        later = conversations.record_user_message(session, "conv-said", _moment(BASE + 60))
        session.commit()
        assert (first, again, later) == (True, False, True)
