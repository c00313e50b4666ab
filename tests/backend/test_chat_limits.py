"""What chat may create per day, and one score per conversation (the
contract of issue 19): tickets, handoffs and scores from channel "chat" are
capped per customer e-mail and per conversation a UTC day (429
.../daily-limit), and a conversation or handoff is rated once (409
.../already-rated)."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from crm_backend.db import get_session, utcnow
from crm_backend.models import Feedback, Handoff, Ticket


@pytest.fixture
def bot(bearer):
    """The bot's headers (the scopes scripts/run_stack.sh gives its key)."""
    return bearer("customers:read", "customers:write", "tickets:read", "tickets:write", "handoffs:write", "feedback:write")


def ticket(client, headers, email="ada@example.com", conversation="conv-1", channel="chat", idempotency_key=None):
    body = {"customer_email": email, "subject": "Kettle leaks", "description": "The lid is cracked.", "channel": channel, "conversation_id": conversation}
    if idempotency_key:
        headers = {**headers, "Idempotency-Key": idempotency_key}
    return client.post("/api/v1/tickets", json=body, headers=headers)


def handoff(client, headers, email="ada@example.com", conversation="conv-1", channel="chat"):
    body = {"conversation_id": conversation, "reason": "wants a person", "customer_email": email, "channel": channel}
    return client.post("/api/v1/handoffs", json=body, headers=headers)


def score(client, headers, conversation="conv-1", email="ada@example.com", channel="chat", **extra):
    body = {"score": 4, "conversation_id": conversation, "customer_email": email, "channel": channel, **extra}
    return client.post("/api/v1/feedback", json=body, headers=headers)


def assert_daily_limit(response, cap: int):
    assert response.status_code == 429 and response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"].endswith("/daily-limit") and body["limit"] == cap
    assert 0 < int(response.headers["Retry-After"]) <= 24 * 3600


# --- tickets ---------------------------------------------------------------------------


def test_a_sixth_chat_ticket_for_one_customer_in_a_day_is_429(client, bot, fake_classifier):
    statuses = [ticket(client, bot, conversation=f"conv-{n}").status_code for n in range(5)]

    sixth = ticket(client, bot, conversation="conv-6")
    someone_else = ticket(client, bot, email="grace@example.com", conversation="conv-7")

    assert statuses == [201] * 5
    assert_daily_limit(sixth, 5)
    assert "customer" in sixth.get_json()["detail"]
    assert someone_else.status_code == 201


def test_one_conversation_is_capped_whatever_addresses_it_claims(client, bot, fake_classifier):
    statuses = [ticket(client, bot, email=f"person{n}@example.com", conversation="conv-x").status_code for n in range(5)]

    sixth = ticket(client, bot, email="person6@example.com", conversation="conv-x")

    assert statuses == [201] * 5
    assert_daily_limit(sixth, 5)
    assert "conversation" in sixth.get_json()["detail"]


def test_tickets_from_other_channels_and_from_yesterday_do_not_count(app, client, bot, fake_classifier):
    for n in range(5):
        assert ticket(client, bot, conversation=f"conv-{n}").status_code == 201
    with app.app_context():
        session = get_session()
        session.execute(update(Ticket).values(created_at=utcnow() - timedelta(days=1)))
        session.commit()

    today = ticket(client, bot, conversation="conv-today")
    by_email = [ticket(client, bot, channel="email", conversation=None).status_code for _ in range(6)]

    assert today.status_code == 201 and by_email == [201] * 6


def test_a_retry_with_the_same_idempotency_key_is_not_counted_again(client, bot, fake_classifier):
    for n in range(4):
        ticket(client, bot, conversation=f"conv-{n}")
    fifth = ticket(client, bot, conversation="conv-5", idempotency_key="form-run-5")

    retry = ticket(client, bot, conversation="conv-5", idempotency_key="form-run-5")

    assert fifth.status_code == retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"


def test_a_cap_of_zero_turns_the_cap_off(app, client, bot, fake_classifier):
    app.config["CHAT_DAILY_TICKETS"] = 0

    statuses = [ticket(client, bot, conversation=f"conv-{n}").status_code for n in range(7)]

    assert statuses == [201] * 7


# --- handoffs --------------------------------------------------------------------------


def test_a_sixth_chat_handoff_for_one_customer_in_a_day_is_429(client, bot, fake_classifier):
    statuses = [handoff(client, bot, conversation=f"conv-{n}").status_code for n in range(5)]

    sixth = handoff(client, bot, conversation="conv-6")

    assert statuses == [201] * 5
    assert_daily_limit(sixth, 5)


# --- scores ----------------------------------------------------------------------------


def test_a_second_score_for_a_conversation_is_409_already_rated(app, client, bot, fake_classifier):
    first = score(client, bot, conversation="conv-1")

    second = score(client, bot, conversation="conv-1", score=1)

    assert first.status_code == 201
    assert second.status_code == 409 and second.mimetype == "application/problem+json"
    assert second.get_json()["type"].endswith("/already-rated")
    assert second.get_json()["existing_id"] == first.get_json()["id"]
    with app.app_context():
        assert get_session().scalars(select(Feedback.score)).all() == [4]


def test_the_same_score_sent_again_with_its_idempotency_key_is_replayed(client, bot, fake_classifier):
    headers = {**bot, "Idempotency-Key": "feedback-form-1"}

    first = score(client, headers)
    again = score(client, headers)

    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json()["id"] == first.get_json()["id"]


def test_a_handoff_is_rated_once_even_from_another_conversation_id(app, client, bot, fake_classifier):
    created = handoff(client, bot, conversation="conv-h")
    handoff_id = created.get_json()["id"]

    first = score(client, bot, conversation=None, handoff_id=handoff_id)
    second = score(client, bot, conversation="conv-other", handoff_id=handoff_id)

    assert first.status_code == 201
    assert second.status_code == 409 and second.get_json()["type"].endswith("/already-rated")


def test_an_eleventh_chat_score_for_one_customer_in_a_day_is_429(client, bot, fake_classifier):
    statuses = [score(client, bot, conversation=f"conv-{n}").status_code for n in range(10)]

    eleventh = score(client, bot, conversation="conv-11")
    someone_else = score(client, bot, conversation="conv-12", email="grace@example.com")

    assert statuses == [201] * 10
    assert_daily_limit(eleventh, 10)
    assert someone_else.status_code == 201


def test_caps_count_handoffs_of_the_customer_across_statuses(app, client, bot, fake_classifier):
    for n in range(5):
        assert handoff(client, bot, conversation=f"conv-{n}").status_code == 201
    with app.app_context():
        session = get_session()
        session.execute(update(Handoff).values(status="resolved", resolved_at=utcnow()))
        session.commit()

    assert_daily_limit(handoff(client, bot, conversation="conv-9"), 5)
