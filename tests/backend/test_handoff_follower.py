"""The follower copies customers' messages of handed-off conversations from Rasa's SQL event broker."""

import json
import time

import pytest
from sqlalchemy import create_engine, func, select, text

from crm_backend.db import get_session, utcnow
from crm_backend.handoffs.events import BadEvent, read_user_event
from crm_backend.handoffs.events.sql import Follower
from crm_backend.models import Customer, Handoff, HandoffMessage
from handoff_support import events_database


@pytest.fixture
def events(tmp_path):
    return events_database(tmp_path)


def publish(engine, sender: str, event: dict) -> None:
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO events (sender_id, data) VALUES (:s, :d)"), {"s": sender, "d": json.dumps(event)})


def user(message: str, at: float | None = None) -> dict:
    return {"event": "user", "text": message, "timestamp": at or time.time(), "parse_data": {}}


@pytest.fixture
def handoff(app):
    with app.app_context():
        session = get_session()
        customer = Customer(name="Ada", email="ada@example.com")
        session.add(customer)
        session.flush()
        record = Handoff(conversation_id="conv-1", customer_id=customer.id, reason="refund", status="queued", created_at=utcnow())
        session.add(record)
        session.commit()
        return record.id


def messages(app) -> list[tuple[str, str]]:
    with app.app_context():
        return [(m.sender, m.text) for m in get_session().scalars(select(HandoffMessage).order_by(HandoffMessage.id))]


def test_only_messages_of_open_handoffs_after_the_handoff_are_copied(app, events, handoff):
    publish(events, "conv-1", user("before the handoff", at=time.time() - 3600))
    publish(events, "conv-1", {"event": "bot", "text": "I'll stay quiet", "timestamp": time.time()})
    publish(events, "conv-1", user("hello? anyone there?"))
    publish(events, "conv-2", user("someone else's conversation"))
    publish(events, "conv-1", user("EXTERNAL: give_feedback"))
    with app.app_context():
        follower = Follower(events)
        assert follower.poll() == 2
        publish(events, "conv-1", user("my order is NW-482913"))
        assert follower.poll() == 1
        assert follower.poll() == 0
    assert messages(app) == [
        ("bot", "I'll stay quiet"),
        ("customer", "hello? anyone there?"),
        ("customer", "my order is NW-482913"),
    ]


def test_a_restarted_follower_catches_up_and_stores_nothing_twice(app, events, handoff):
    publish(events, "conv-1", user("first"))
    with app.app_context():
        Follower(events).poll()
        publish(events, "conv-1", user("sent while the follower was down"))
        # A new follower (a restart) reads the open conversations again.
        assert Follower(events).poll() == 1
    assert [text for _, text in messages(app)] == ["first", "sent while the follower was down"]


def test_resolved_handoffs_are_no_longer_followed(app, events, handoff):
    with app.app_context():
        follower = Follower(events)
        follower.poll()
        session = get_session()
        session.get(Handoff, handoff).status = "resolved"
        session.commit()
        publish(events, "conv-1", user("thanks, bye"))
        assert follower.poll() == 0
        assert get_session().scalar(select(func.count()).select_from(HandoffMessage)) == 0


def test_a_missing_broker_table_is_waited_for(app, tmp_path):
    from sqlalchemy.exc import OperationalError

    with app.app_context():
        follower = Follower(create_engine(f"sqlite:///{tmp_path / 'nothing-yet.db'}"))
        with pytest.raises(OperationalError):
            follower.poll()


@pytest.mark.parametrize(
    "data, expected",
    [
        (json.dumps({"event": "user", "text": "hi", "timestamp": 5.0}), "hi"),
        (json.dumps({"event": "bot", "text": "hi"}), None),
        (json.dumps({"event": "user", "text": "  "}), None),
        (json.dumps({"event": "user", "text": "EXTERNAL: give_feedback"}), None),
    ],
)
def test_only_real_customer_messages_are_read_as_customer_messages(data, expected):
    event = read_user_event(data)
    assert (event and event["text"]) == expected


@pytest.mark.parametrize("data", ["not json", json.dumps(["user"])])
def test_an_event_that_is_not_a_json_object_cannot_be_read(data):
    with pytest.raises(BadEvent):
        read_user_event(data)


def test_the_assistants_words_reach_the_agent_but_replies_and_presence_signals_are_not_copied_twice(app, events, handoff):
    now = time.time()
    # The assistant keeps helping while the request waits (nobody online): the agent sees what it said, buttons by title.
    publish(events, "conv-1", {
        "event": "bot", "text": "I can open a ticket now.", "timestamp": now,
        "data": {"buttons": [{"title": "Open a ticket", "payload": "/affirm"}, {"title": "No thanks", "payload": "/deny"}]},
    })
    # The customer chose a button: the widget sent its title with the payload.
    publish(events, "conv-1", {**user("/affirm", at=now + 1), "metadata": {"button_title": "Open a ticket"}})
    # An agent's reply is stored when sent; joined/typing/left are no messages.
    publish(events, "conv-1", {
        "event": "bot", "text": None, "timestamp": now + 2, "metadata": {"handoff_agent": "Sam"},
        "data": {"custom": {"data": {"text": "Hi, Sam here", "agent_name": "Sam"}}},
    })
    for presence in ("joined", "typing", "left"):
        publish(events, "conv-1", {
            "event": "bot", "text": None, "timestamp": now + 3, "data": {"custom": {"data": {"presence": presence, "agent_name": "Sam"}}},
        })
    with app.app_context():
        assert Follower(events).poll() == 2
    assert messages(app) == [
        ("bot", "I can open a ticket now.\nButtons: Open a ticket · No thanks"),
        ("customer", "Open a ticket"),
    ]


def test_an_assistants_message_of_the_wrong_shape_is_set_aside(app, events, handoff):
    publish(events, "conv-1", {"event": "bot", "text": ["not", "text"], "timestamp": time.time()})
    publish(events, "conv-1", user("still here"))
    with app.app_context():
        assert Follower(events).poll() == 1
    assert messages(app) == [("customer", "still here")]
