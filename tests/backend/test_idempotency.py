"""Idempotency-Key: a retried creation never creates twice."""

import pytest
from sqlalchemy import func, select

from crm_backend.db import get_session
from crm_backend.models import Comment, Customer, Ticket

TICKET = {"customer_email": "ada@example.com", "subject": "Late parcel", "description": "Still waiting."}


def count(app, model) -> int:
    with app.app_context():
        return get_session().scalar(select(func.count()).select_from(model))


@pytest.fixture
def writer(bearer):
    return bearer("tickets:read", "tickets:write", "customers:read", "customers:write")


def test_a_retried_ticket_creation_replays_the_first_response(app, client, writer, fake_classifier):
    headers = {**writer, "Idempotency-Key": "7f9c2a1e-retry"}

    first = client.post("/api/v1/tickets", json=TICKET, headers=headers)
    # Same JSON, other key order: still the same request.
    retry = client.post("/api/v1/tickets", json=dict(reversed(TICKET.items())), headers=headers)

    assert first.status_code == retry.status_code == 201
    assert retry.json == first.json
    assert retry.headers["Location"] == first.headers["Location"]
    assert retry.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert count(app, Ticket) == 1 and count(app, Customer) == 1


def test_the_same_key_with_another_body_is_422_and_creates_nothing(app, client, writer, fake_classifier):
    headers = {**writer, "Idempotency-Key": "key-1"}
    client.post("/api/v1/tickets", json=TICKET, headers=headers)

    response = client.post("/api/v1/tickets", json={**TICKET, "subject": "Other"}, headers=headers)

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["errors"][0]["field"] == "Idempotency-Key"
    assert count(app, Ticket) == 1


def test_keys_belong_to_one_api_key(app, client, bearer, fake_classifier):
    first = client.post("/api/v1/tickets", json=TICKET, headers={**bearer("tickets:write"), "Idempotency-Key": "shared"})
    other = client.post("/api/v1/tickets", json=TICKET, headers={**bearer("tickets:write"), "Idempotency-Key": "shared"})

    assert first.status_code == other.status_code == 201
    assert first.json["id"] != other.json["id"]


def test_the_same_key_on_another_endpoint_is_refused(client, writer, fake_classifier):
    headers = {**writer, "Idempotency-Key": "k"}
    client.post("/api/v1/customers", json={"name": "Ada", "email": "ada@example.com"}, headers=headers)

    response = client.post("/api/v1/tickets", json=TICKET, headers=headers)

    assert response.status_code == 422


def test_a_failed_request_is_not_remembered(app, client, writer):
    headers = {**writer, "Idempotency-Key": "fix-and-retry"}

    bad = client.post("/api/v1/customers", json={"name": "Ada", "email": "nope"}, headers=headers)
    fixed = client.post("/api/v1/customers", json={"name": "Ada", "email": "ada@example.com"}, headers=headers)

    assert bad.status_code == 422 and fixed.status_code == 201


def test_comments_are_idempotent_too(app, client, writer, fake_classifier):
    number = client.post("/api/v1/tickets", json=TICKET, headers=writer).json["number"]
    headers = {**writer, "Idempotency-Key": "comment-1"}

    responses = [client.post(f"/api/v1/tickets/{number}/comments", json={"body": "Any news?"}, headers=headers) for _ in range(3)]

    assert {r.status_code for r in responses} == {201}
    assert count(app, Comment) == 1


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "naïve"])
def test_malformed_keys_are_422(client, writer, key):
    response = client.post("/api/v1/customers", json={"name": "Ada", "email": "ada@example.com"}, headers={**writer, "Idempotency-Key": key})

    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "Idempotency-Key"
