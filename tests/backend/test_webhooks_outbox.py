"""The outbox: every change writes its event in its own transaction, with the resource as the API shows it."""

import json

import pytest
from sqlalchemy import func, select

from crm_backend.agents.service import create_agent
from crm_backend.db import get_session
from crm_backend.models import Customer, Ticket, WebhookDelivery, WebhookEvent
from crm_backend import rasa as rasa_module
from crm_backend.webhooks import outbox
from test_webhooks_support import admin, open_ticket, private_app, register  # noqa: F401  (fixtures)

ALL_EVENTS = list(outbox.EVENT_TYPES)


class FakeRasa:
    """Rasa's HTTP API as the handoff service uses it; ``down`` makes it unreachable."""

    def __init__(self):
        self.down = False

    def send_agent_message(self, conversation_id, text, agent_name):
        self._check()

    def send_presence(self, conversation_id, presence, agent_name):
        self._check()

    def resume(self, conversation_id, agent_name, person_left=False):
        self._check()

    def _check(self):
        if self.down:
            raise rasa_module.RasaUnavailable("the assistant could not be reached")


def events(app) -> list[dict]:
    with app.app_context():
        rows = get_session().scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
        return [json.loads(row.payload) for row in rows]


INSIGHT_FIELDS = ("lifetime_value", "loyalty_score", "loyalty_tier", "churn_risk", "segment", "insights", "insights_updated_at")


def count(app, model) -> int:
    with app.app_context():
        return get_session().scalar(select(func.count()).select_from(model))


@pytest.fixture
def subscribed(register):
    return register("http://127.0.0.1:9/hook", events=ALL_EVENTS)


def test_a_new_ticket_emits_its_customer_and_itself_as_the_api_returns_them(app, client, admin, subscribed, fake_classifier):
    ticket = open_ticket(client, admin, email="new.person@example.com")

    customer_event, ticket_event = events(app)

    assert [customer_event["type"], ticket_event["type"]] == ["customer.created", "ticket.created"]
    assert set(ticket_event) == {"type", "timestamp", "data"}
    assert ticket_event["data"] == client.get(f"/api/v1/tickets/{ticket['number']}", headers=admin).json
    # The ticket then recomputed the customer's insights, derived figures
    # that send no customer.updated of their own.
    customer_now = client.get(f"/api/v1/customers/{ticket['customer_id']}", headers=admin).json
    assert customer_event["data"] == {**customer_now, **{name: customer_event["data"][name] for name in INSIGHT_FIELDS}}


def test_a_ticket_change_emits_ticket_updated_with_the_new_state(app, client, admin, subscribed):
    ticket = open_ticket(client, admin)

    changed = client.patch(f"/api/v1/tickets/{ticket['number']}", json={"status": "pending", "priority": "high"}, headers=admin).json

    update = events(app)[-1]
    assert update["type"] == "ticket.updated"
    assert update["data"] == changed == client.get(f"/api/v1/tickets/{ticket['number']}", headers=admin).json


def test_a_patch_that_changes_nothing_emits_nothing(app, client, admin, subscribed):
    ticket = open_ticket(client, admin)
    before = count(app, WebhookEvent)

    client.patch(f"/api/v1/tickets/{ticket['number']}", json={"priority": "normal"}, headers=admin)

    assert count(app, WebhookEvent) == before


def test_a_comment_emits_ticket_updated_carrying_the_comment(app, client, admin, subscribed):
    ticket = open_ticket(client, admin)

    comment = client.post(f"/api/v1/tickets/{ticket['number']}/comments", json={"body": "Any news?", "author_type": "customer"}, headers=admin).json

    update = events(app)[-1]
    assert update["type"] == "ticket.updated"
    assert update["data"]["number"] == ticket["number"]
    assert update["comment"] == comment


def test_a_customer_change_emits_customer_updated(app, client, admin, subscribed, add_customers):
    [customer_id] = add_customers(("Ada Lovelace", "ada@example.com"))

    changed = client.patch(f"/api/v1/customers/{customer_id}", json={"name": "Ada King"}, headers=admin).json

    [update] = events(app)
    assert update == {"type": "customer.updated", "timestamp": update["timestamp"], "data": changed}


def test_handoffs_emit_requested_and_resolved(app, client, admin, subscribed, monkeypatch, fake_classifier):
    monkeypatch.setattr("crm_backend.handoffs.views.rasa_client", lambda: FakeRasa())
    with app.app_context():
        create_agent(get_session(), email="alex@example.com", password="correct horse 1", name="Alex Agent")
        get_session().commit()
    handoff = client.post(
        "/api/v1/handoffs",
        json={"conversation_id": "conv-9", "reason": "wants a person", "customer_email": "ada@example.com"},
        headers=admin,
    ).json

    resolved = client.post(f"/api/v1/handoffs/{handoff['id']}/resolve", json={"agent_email": "alex@example.com"}, headers=admin).json

    requested_event, resolved_event = [event for event in events(app) if event["type"].startswith("handoff.")]
    assert requested_event["type"] == "handoff.requested" and requested_event["data"]["id"] == handoff["id"]
    assert requested_event["data"]["status"] == "queued"
    assert resolved_event["type"] == "handoff.resolved"
    assert {k: v for k, v in resolved_event["data"].items() if k not in ("wait_seconds", "handle_seconds")} == {
        k: v for k, v in resolved.items() if k not in ("wait_seconds", "handle_seconds")
    }


def test_a_handoff_that_cannot_be_resolved_emits_nothing(app, client, admin, subscribed, monkeypatch, fake_classifier):
    rasa = FakeRasa()
    monkeypatch.setattr("crm_backend.handoffs.views.rasa_client", lambda: rasa)
    with app.app_context():
        create_agent(get_session(), email="alex@example.com", password="correct horse 1", name="Alex Agent")
        get_session().commit()
    handoff = client.post(
        "/api/v1/handoffs", json={"conversation_id": "conv-9", "reason": "wants a person", "customer_email": "ada@example.com"}, headers=admin
    ).json
    rasa.down = True

    response = client.post(f"/api/v1/handoffs/{handoff['id']}/resolve", json={"agent_email": "alex@example.com"}, headers=admin)

    assert response.status_code == 503
    assert "handoff.resolved" not in [event["type"] for event in events(app)]


def test_feedback_emits_feedback_received(app, client, admin, subscribed, fake_classifier):
    feedback = client.post("/api/v1/feedback", json={"score": 2, "comment": "I want a refund", "customer_email": "ada@example.com"}, headers=admin).json

    received = events(app)[-1]
    assert received["type"] == "feedback.received"
    assert received["data"] == feedback


def test_a_failed_request_leaves_no_event(app, client, admin, subscribed):
    # The new customer's event is written, then the unknown assignee fails
    # the request: the rollback must take the event with it.
    response = client.post(
        "/api/v1/tickets",
        json={"customer_email": "new@example.com", "subject": "s", "description": "d", "assignee": "nobody@example.com"},
        headers=admin,
    )

    assert response.status_code == 422
    assert count(app, Customer) == 0
    assert count(app, WebhookEvent) == count(app, WebhookDelivery) == 0


def test_emit_only_adds_to_the_session_so_a_rollback_discards_the_event(app, subscribed):
    with app.app_context():
        session = get_session()
        customer = Customer(name="Ada", email="ada@example.com")
        session.add(customer)
        assert outbox.emit(session, "customer.created", customer) is not None
        session.rollback()

    assert count(app, WebhookEvent) == count(app, Customer) == 0


def test_nothing_is_stored_when_no_endpoint_subscribes(app, client, admin, register):
    register("http://127.0.0.1:9/hook", events=["feedback.received"])

    open_ticket(client, admin)

    assert count(app, WebhookEvent) == 0


def test_disabled_endpoints_get_no_new_events_and_each_subscriber_gets_its_own_delivery(app, client, admin, register):
    first = register("http://127.0.0.1:9/one", events=["ticket.created"])
    second = register("http://127.0.0.1:9/two", events=["ticket.created"])
    paused = register("http://127.0.0.1:9/three", events=["ticket.created"], enabled=False)

    open_ticket(client, admin)

    with app.app_context():
        rows = get_session().scalars(select(WebhookDelivery)).all()
        assert sorted(row.endpoint_id for row in rows) == [first["id"], second["id"]]
        assert len({row.event_id for row in rows}) == 1
        assert paused["id"] not in [row.endpoint_id for row in rows]


def test_events_of_one_resource_share_its_key_and_get_increasing_message_ids(app, client, admin, subscribed):
    ticket = open_ticket(client, admin)
    client.patch(f"/api/v1/tickets/{ticket['number']}", json={"priority": "high"}, headers=admin)

    with app.app_context():
        rows = get_session().scalars(select(WebhookEvent).where(WebhookEvent.resource_key == f"ticket:{ticket['id']}").order_by(WebhookEvent.id)).all()

    assert [row.event_type for row in rows] == ["ticket.created", "ticket.updated"]
    assert rows[0].message_id < rows[1].message_id
    assert all(row.message_id.startswith("msg_") and len(row.message_id) == 30 for row in rows)


def test_unknown_event_types_are_a_programming_error(app):
    with app.app_context(), pytest.raises(ValueError):
        outbox.emit(get_session(), "ticket.deleted", Ticket())
