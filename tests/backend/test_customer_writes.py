"""Creating and changing customers: validation, uniqueness, audit."""

import pytest
from sqlalchemy import select

from crm_backend.db import get_session
from crm_backend.models import AuditEvent

CUSTOMERS = "/api/v1/customers"


@pytest.fixture
def writer(bearer):
    return bearer("customers:*")


def test_a_created_customer_is_normalised_and_found_by_email(client, writer):
    response = client.post(CUSTOMERS, json={"name": "Ada Lovelace", "email": "Ada@Example.COM", "phone": "+44 20 7123 4567"}, headers=writer)

    assert response.status_code == 201
    assert response.json["email"] == "ada@example.com" and response.json["phone"] == "+442071234567"
    assert response.headers["Location"].endswith(f"/api/v1/customers/{response.json['id']}")
    found = client.get(f"{CUSTOMERS}?email=ADA@example.com", headers=writer).json["items"]
    assert [c["id"] for c in found] == [response.json["id"]]


def test_an_email_used_by_another_customer_is_409_naming_them(client, writer, add_customers):
    (ada_id,) = add_customers(("Ada Lovelace", "ada@example.com"))

    response = client.post(CUSTOMERS, json={"name": "Impostor", "email": "ADA@example.com"}, headers=writer)

    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.json["existing_id"] == ada_id


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "A", "email": "not an email"}, "email"),
        ({"name": "A", "email": "a@example.com", "phone": "020 7123 4567"}, "phone"),
        ({"name": "A", "email": "a@example.com", "phone": "+44 1"}, "phone"),
        ({"name": "", "email": "a@example.com"}, "name"),
        ({"email": "a@example.com"}, "name"),
        ({"name": "A", "email": "a@example.com", "vip": True}, "vip"),
    ],
)
def test_invalid_customers_are_422_naming_the_field(client, writer, body, field):
    response = client.post(CUSTOMERS, json=body, headers=writer)

    assert response.status_code == 422
    assert [e["field"] for e in response.json["errors"]] == [field]


def test_patch_changes_only_the_given_fields_and_audits_them(app, client, writer, add_customers):
    (ada_id,) = add_customers(("Ada Lovelace", "ada@example.com"))

    response = client.patch(f"{CUSTOMERS}/{ada_id}", json={"phone": "+1 202 555 0147"}, headers=writer)

    assert response.status_code == 200
    assert (response.json["name"], response.json["phone"]) == ("Ada Lovelace", "+12025550147")
    with app.app_context():
        event = get_session().scalars(select(AuditEvent).where(AuditEvent.action == "customer.updated")).one()
    assert (event.before, event.after) == ({"phone": None}, {"phone": "+12025550147"})


def test_patch_to_a_taken_email_is_409(client, writer, add_customers):
    ada_id, _ = add_customers(("Ada", "ada@example.com"), ("Grace", "grace@example.com"))

    response = client.patch(f"{CUSTOMERS}/{ada_id}", json={"email": "grace@example.com"}, headers=writer)

    assert response.status_code == 409


def test_patch_of_an_unknown_customer_is_404(client, writer):
    assert client.patch(f"{CUSTOMERS}/999", json={"name": "X"}, headers=writer).status_code == 404


def test_a_reader_cannot_write(client, bearer):
    response = client.post(CUSTOMERS, json={"name": "A", "email": "a@example.com"}, headers=bearer("customers:read"))

    assert response.status_code == 403
