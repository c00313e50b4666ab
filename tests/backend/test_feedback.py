"""Feedback over HTTP: scores 1-5, classified comments, linked to the handoff's agent."""

import pytest
from sqlalchemy import func, select

from crm_backend.agents.service import create_agent
from crm_backend.db import get_session
from crm_backend.models import Feedback, Handoff

FEEDBACK = "/api/v1/feedback"


@pytest.fixture
def bot(bearer):
    return bearer("feedback:write")


@pytest.fixture
def reader(bearer):
    return bearer("feedback:read")


def test_a_score_with_a_comment_is_stored_and_the_comment_classified(client, bot, reader, fake_classifier):
    response = client.post(
        FEEDBACK,
        json={"score": 2, "comment": "  still waiting for my refund  ", "conversation_id": "conv-1", "customer_email": "ada@example.com"},
        headers=bot,
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert (body["score"], body["comment"], body["category"], body["customer_email"]) == (2, "still waiting for my refund", "refund", "ada@example.com")
    assert body["handoff_id"] is None and body["agent"] is None
    assert client.get(response.headers["Location"], headers=reader).json == body


def test_a_score_alone_is_fine_and_not_classified(client, bot, fake_classifier):
    response = client.post(FEEDBACK, json={"score": 5}, headers=bot)
    assert response.status_code == 201
    assert response.json["comment"] is None and response.json["category"] is None and response.json["customer_id"] is None
    assert fake_classifier == []


@pytest.mark.parametrize("score", [0, 6, "five", None, 3.5])
def test_scores_outside_1_to_5_are_refused_and_nothing_is_stored(app, client, bot, score):
    response = client.post(FEEDBACK, json={"score": score, "comment": "x"}, headers=bot)
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "score"
    with app.app_context():
        assert get_session().scalar(select(func.count()).select_from(Feedback)) == 0


def test_feedback_after_a_handoff_rates_the_agent_who_handled_it(app, client, bot, reader, add_customers, fake_classifier):
    (customer_id,) = add_customers(("Ada Lovelace", "ada@example.com"))
    with app.app_context():
        session = get_session()
        agent = create_agent(session, email="alex@example.com", password="correct horse 1", name="Alex")
        from crm_backend.db import utcnow

        session.add(
            Handoff(conversation_id="conv-7", customer_id=customer_id, reason="r", status="resolved", agent_id=agent.id, resolved_at=utcnow())
        )
        session.commit()
    response = client.post(FEEDBACK, json={"score": 4, "conversation_id": "conv-7"}, headers=bot)
    assert response.status_code == 201
    assert response.json["agent"] == "alex@example.com"
    assert response.json["customer_email"] == "ada@example.com"
    low = client.get(f"{FEEDBACK}?max_score=3", headers=reader).json["items"]
    assert low == []
    assert [item["score"] for item in client.get(f"{FEEDBACK}?conversation_id=conv-7", headers=reader).json["items"]] == [4]


def test_feedback_lists_newest_first_with_pages(client, bot, reader):
    for score in (1, 2, 3):
        client.post(FEEDBACK, json={"score": score}, headers=bot)
    page = client.get(f"{FEEDBACK}?limit=2", headers=reader).json
    assert [item["score"] for item in page["items"]] == [3, 2]
    rest = client.get(f"{FEEDBACK}?limit=2&cursor={page['next_cursor']}", headers=reader).json
    assert [item["score"] for item in rest["items"]] == [1]


def test_scopes_are_enforced(client, bearer):
    assert client.post(FEEDBACK, json={"score": 5}, headers=bearer("tickets:write")).status_code == 403
    assert client.get(FEEDBACK, headers=bearer("feedback:write")).status_code == 403
    assert client.get(f"{FEEDBACK}/1", headers=bearer("feedback:read")).status_code == 404
