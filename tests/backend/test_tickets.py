"""Tickets over HTTP: create, find, change by the lifecycle, comment."""

import pytest
from sqlalchemy import func, select

from crm_backend.db import get_session
from crm_backend.models import AuditEvent, Customer, Ticket

TICKETS = "/api/v1/tickets"


@pytest.fixture
def writer(bearer):
    return bearer("tickets:read", "tickets:write")


@pytest.fixture
def open_ticket(client, writer, fake_classifier):
    def open_(**fields) -> dict:
        body = {"customer_email": "ada@example.com", "subject": "Where is my order?", "description": "Order 1234 is late.", **fields}
        response = client.post(TICKETS, json=body, headers=writer)
        assert response.status_code == 201, response.json
        return response.json

    return open_


def count(app, model) -> int:
    with app.app_context():
        return get_session().scalar(select(func.count()).select_from(model))


def test_creating_a_ticket_for_a_new_email_creates_the_customer(app, client, writer, fake_classifier):
    response = client.post(
        TICKETS,
        json={
            "customer_email": "New.Person@Example.com",
            "customer_name": "New Person",
            "subject": "I want a refund",
            "description": "The kettle leaks.",
            "channel": "chat",
            "conversation_id": "conv-1",
        },
        headers=writer,
    )

    body = response.json
    assert response.status_code == 201
    assert body["number"] == f"TCK-{body['id']:06d}"
    assert response.headers["Location"].endswith(f"/api/v1/tickets/{body['number']}")
    assert body["status"] == "open" and body["priority"] == "normal"
    assert body["customer_email"] == "new.person@example.com"
    assert (body["category"], body["category_confidence"], body["category_source"]) == ("refund", 0.91, "classifier")
    assert body["channel"] == "chat" and body["conversation_id"] == "conv-1"
    assert fake_classifier == ["I want a refund\nThe kettle leaks."]
    with app.app_context():
        customer = get_session().scalars(select(Customer)).one()
    assert customer.name == "New Person" and customer.id == body["customer_id"]


def test_an_existing_customer_is_found_by_id_or_email(client, writer, add_customers, fake_classifier):
    (ada_id,) = add_customers(("Ada Lovelace", "ada@example.com"))

    by_id = client.post(TICKETS, json={"customer_id": ada_id, "subject": "s", "description": "d"}, headers=writer)
    by_email = client.post(TICKETS, json={"customer_email": "ADA@example.com", "subject": "s", "description": "d"}, headers=writer)

    assert by_id.json["customer_id"] == by_email.json["customer_id"] == ada_id


def test_without_a_model_the_ticket_is_still_created_as_other(client, writer, no_classifier):
    response = client.post(TICKETS, json={"customer_email": "a@example.com", "subject": "s", "description": "d"}, headers=writer)

    assert response.status_code == 201
    assert response.json["category"] == "other" and response.json["category_confidence"] is None


@pytest.mark.parametrize(
    "customer, field",
    [({}, "customer_id"), ({"customer_id": 1, "customer_email": "a@example.com"}, "customer_id"), ({"customer_id": 999}, "customer_id")],
)
def test_the_customer_must_be_given_exactly_once_and_exist(app, client, writer, fake_classifier, customer, field):
    response = client.post(TICKETS, json={**customer, "subject": "s", "description": "d"}, headers=writer)

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["errors"][0]["field"] == field
    assert count(app, Ticket) == 0


def test_bad_fields_are_422_naming_each(client, writer):
    response = client.post(
        TICKETS,
        json={"customer_email": "not-an-email", "subject": "", "description": "d", "channel": "fax", "colour": "red"},
        headers=writer,
    )

    assert response.status_code == 422
    assert {e["field"] for e in response.json["errors"]} == {"customer_email", "subject", "channel", "colour"}


def test_a_ticket_is_found_by_id_and_by_number(client, writer, open_ticket):
    ticket = open_ticket()

    by_id = client.get(f"{TICKETS}/{ticket['id']}", headers=writer)
    by_number = client.get(f"{TICKETS}/{ticket['number']}", headers=writer)
    lower = client.get(f"{TICKETS}/{ticket['number'].lower()}", headers=writer)

    assert by_id.json == by_number.json == lower.json == ticket


@pytest.mark.parametrize("reference", ["TCK-999999", "nonsense", "0"])
def test_unknown_ticket_is_404_problem(client, writer, reference):
    response = client.get(f"{TICKETS}/{reference}", headers=writer)

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_lists_filter_by_customer_status_category_and_text(client, writer, open_ticket):
    ada_refund = open_ticket(subject="Refund please", description="Broken kettle")
    open_ticket(customer_email="grace@example.com", subject="Where is it", description="Parcel missing")
    ada_late = open_ticket(subject="Late", description="Still waiting for the PARCEL")
    client.patch(f"{TICKETS}/{ada_late['number']}", json={"status": "pending"}, headers=writer)

    def numbers(query: str) -> list[str]:
        response = client.get(f"{TICKETS}?{query}", headers=writer)
        assert response.status_code == 200, response.json
        return [t["number"] for t in response.json["items"]]

    assert numbers("customer_email=ADA@example.com") == [ada_late["number"], ada_refund["number"]]
    assert numbers("customer_email=ada@example.com&status=open") == [ada_refund["number"]]
    assert numbers("status=open,pending&category=refund") == [ada_refund["number"]]
    assert numbers("q=parcel&customer_email=ada@example.com") == [ada_late["number"]]
    assert numbers("customer_email=nobody@example.com") == []


def test_ticket_pages_follow_the_cursor_newest_first(client, writer, open_ticket):
    numbers = [open_ticket(subject=f"Ticket {n}")["number"] for n in range(5)]

    first = client.get(f"{TICKETS}?limit=2", headers=writer).json
    second = client.get(f"{TICKETS}?limit=2&cursor={first['next_cursor']}", headers=writer).json
    third = client.get(f"{TICKETS}?limit=2&cursor={second['next_cursor']}", headers=writer).json

    seen = [t["number"] for page in (first, second, third) for t in page["items"]]
    assert seen == numbers[::-1]
    assert third["next_cursor"] is None


def test_unknown_status_filter_is_422(client, writer):
    response = client.get(f"{TICKETS}?status=open,lost", headers=writer)

    assert response.status_code == 422 and response.json["errors"][0]["field"].startswith("status")


def test_status_follows_the_lifecycle_through_patch(client, writer, open_ticket):
    number = open_ticket()["number"]

    steps = [client.patch(f"{TICKETS}/{number}", json={"status": s}, headers=writer) for s in ("solved", "open", "solved", "closed")]

    assert [r.status_code for r in steps] == [200, 200, 200, 200]
    assert client.get(f"{TICKETS}/{number}", headers=writer).json["status"] == "closed"


def test_a_forbidden_transition_is_409_and_changes_nothing(app, client, writer, open_ticket):
    ticket = open_ticket()

    response = client.patch(f"{TICKETS}/{ticket['number']}", json={"status": "closed", "priority": "urgent"}, headers=writer)

    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.json["allowed_statuses"] == ["on_hold", "pending", "solved"]
    assert client.get(f"{TICKETS}/{ticket['number']}", headers=writer).json == ticket


def test_a_closed_ticket_accepts_no_change_and_no_comment(client, writer, open_ticket):
    number = open_ticket()["number"]
    for status in ("solved", "closed"):
        client.patch(f"{TICKETS}/{number}", json={"status": status}, headers=writer)

    patch = client.patch(f"{TICKETS}/{number}", json={"priority": "high"}, headers=writer)
    comment = client.post(f"{TICKETS}/{number}/comments", json={"body": "hello?"}, headers=writer)

    assert patch.status_code == 409 and comment.status_code == 409


def test_correcting_the_category_marks_it_manual(client, writer, open_ticket):
    number = open_ticket()["number"]

    body = client.patch(f"{TICKETS}/{number}", json={"category": "delivery_problem"}, headers=writer).json

    assert (body["category"], body["category_confidence"], body["category_source"]) == ("delivery_problem", None, "manual")


def test_assignee_must_be_an_agent(client, writer, open_ticket, run_cli):
    run_cli("create-agent", "sam@example.com", "--password", "correct horse battery")
    number = open_ticket()["number"]

    assigned = client.patch(f"{TICKETS}/{number}", json={"assignee": "SAM@example.com"}, headers=writer)
    unknown = client.patch(f"{TICKETS}/{number}", json={"assignee": "nobody@example.com"}, headers=writer)
    cleared = client.patch(f"{TICKETS}/{number}", json={"assignee": None}, headers=writer)

    assert assigned.json["assignee"] == "sam@example.com"
    assert unknown.status_code == 422 and unknown.json["errors"][0]["field"] == "assignee"
    assert cleared.json["assignee"] is None


def test_comments_are_public_or_internal_and_listed_in_order(client, writer, open_ticket):
    number = open_ticket()["number"]

    first = client.post(f"{TICKETS}/{number}/comments", json={"body": "We are on it", "author_type": "agent", "author_name": "Sam"}, headers=writer)
    client.post(f"{TICKETS}/{number}/comments", json={"body": "Courier says Tuesday", "public": False}, headers=writer)

    everything = client.get(f"{TICKETS}/{number}/comments", headers=writer).json["items"]
    public = client.get(f"{TICKETS}/{number}/comments?public_only=true", headers=writer).json["items"]
    assert first.status_code == 201 and first.json["ticket_number"] == number
    assert [(c["body"], c["public"]) for c in everything] == [("We are on it", True), ("Courier says Tuesday", False)]
    assert [c["body"] for c in public] == ["We are on it"]
    assert everything[1]["author_type"] == "integration"


def test_every_change_leaves_an_audit_event_with_before_and_after(app, client, make_key, fake_classifier):
    key = make_key("tickets:read", "tickets:write", name="helpdesk-sync")
    headers = {"Authorization": f"Bearer {key}"}
    ticket = client.post(TICKETS, json={"customer_email": "ada@example.com", "subject": "s", "description": "d"}, headers=headers).json
    client.patch(f"{TICKETS}/{ticket['id']}", json={"status": "pending", "priority": "normal"}, headers=headers)
    client.post(f"{TICKETS}/{ticket['id']}/comments", json={"body": "hi"}, headers=headers)

    with app.app_context():
        events = get_session().scalars(select(AuditEvent).where(AuditEvent.actor_type == "api_key").order_by(AuditEvent.id)).all()
    assert [e.action for e in events] == ["customer.created", "ticket.created", "ticket.updated", "comment.created"]
    assert {e.actor_name for e in events} == {"helpdesk-sync"}
    update = events[2]
    assert (update.before, update.after) == ({"status": "open"}, {"status": "pending"})
    assert events[1].after["number"] == ticket["number"]


def test_ticket_scopes_are_enforced(client, bearer):
    reader = bearer("tickets:read")

    response = client.post(TICKETS, json={"customer_email": "a@example.com", "subject": "s", "description": "d"}, headers=reader)

    assert response.status_code == 403 and "tickets:write" in response.json["detail"]


def test_a_failure_after_the_customer_was_added_stores_nothing(app, client, writer, monkeypatch):
    from crm_backend.tickets import service

    def broken(subject, description):
        raise RuntimeError("classifier exploded")

    monkeypatch.setattr(service, "classify_ticket", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False

    response = client.post(TICKETS, json={"customer_email": "new@example.com", "subject": "s", "description": "d"}, headers=writer)

    assert response.status_code == 500 and response.mimetype == "application/problem+json"
    assert count(app, Customer) == 0 and count(app, AuditEvent) == 1  # the key's own creation


def test_a_ticket_is_classified_by_the_real_need_model(tmp_path, demo_model_path):
    from crm_backend import create_app, migrate
    from crm_backend import api_keys
    from crm_backend.db import get_engine

    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'real.db'}", "NEED_MODEL_PATH": str(demo_model_path)})
    with app.app_context():
        migrate.upgrade_to_head(get_engine())
        _, key = api_keys.create_api_key(get_session(), "bot", ["tickets:write"])

    response = app.test_client().post(
        TICKETS,
        json={"customer_email": "ada@example.com", "subject": "Refund", "description": "I returned the shoes two weeks ago and still have no refund."},
        headers={"Authorization": f"Bearer {key}"},
    )

    body = response.json
    assert response.status_code == 201
    assert body["category"] == "refund" and body["category_source"] == "classifier"
    assert 0 < body["category_confidence"] <= 1
    with app.app_context():
        get_engine().dispose()


def test_tickets_of_needs_the_company_wants_a_person_on_say_so(app, client, writer, open_ticket):
    app.config["HUMAN_ONLY_NEEDS"] = frozenset({"refund"})
    refund = open_ticket(subject="I want a refund", description="The kettle leaks.")
    late = open_ticket()
    assert (refund["category"], refund["needs_human"]) == ("refund", True)
    assert late["needs_human"] is False
    assert client.get(f"{TICKETS}/{refund['number']}", headers=writer).json["needs_human"] is True
