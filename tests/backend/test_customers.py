import pytest
from sqlalchemy.exc import IntegrityError

from crm_backend.models import Customer


@pytest.fixture
def reader(bearer):
    return bearer("customers:read")


def test_lookup_by_email_ignores_case(client, reader, add_customers):
    add_customers(("Ada Lovelace", "ada@example.com"), ("Grace Hopper", "grace@example.com"))

    response = client.get("/api/v1/customers?email=ADA@Example.COM", headers=reader)

    assert response.status_code == 200
    assert [c["name"] for c in response.json["items"]] == ["Ada Lovelace"]
    assert response.json["next_cursor"] is None


INSIGHT_FIELDS = {
    "lifetime_value", "loyalty_score", "loyalty_tier", "churn_risk", "segment", "insights", "insights_updated_at"
}


def test_customer_json_has_the_documented_fields(client, reader, add_customers):
    (ada_id,) = add_customers(("Ada Lovelace", "Ada@Example.com"))

    body = client.get(f"/api/v1/customers/{ada_id}", headers=reader).json

    assert set(body) == {"id", "name", "email", "phone", "created_at", "updated_at"} | INSIGHT_FIELDS
    assert body["email"] == "ada@example.com"
    assert body["phone"] is None
    assert body["created_at"].endswith("+00:00")


def test_q_searches_names_and_emails(client, reader, add_customers):
    add_customers(
        ("Ada Lovelace", "ada@example.com"),
        ("Grace Hopper", "grace@navy.example.org"),
        ("Alan Turing", "alan@example.com"),
    )

    by_name = client.get("/api/v1/customers?q=hop", headers=reader).json["items"]
    by_email = client.get("/api/v1/customers?q=NAVY", headers=reader).json["items"]
    wildcard = client.get("/api/v1/customers?q=%25", headers=reader).json["items"]

    assert [c["name"] for c in by_name] == ["Grace Hopper"]
    assert [c["name"] for c in by_email] == ["Grace Hopper"]
    assert wildcard == []


def test_pages_follow_the_cursor_without_gaps_or_repeats(client, reader, add_customers):
    add_customers(*[(f"Customer {n}", f"c{n}@example.com") for n in range(5)])

    first = client.get("/api/v1/customers?limit=3", headers=reader).json
    second = client.get(f"/api/v1/customers?limit=3&cursor={first['next_cursor']}", headers=reader).json

    names = [c["name"] for c in first["items"] + second["items"]]
    assert names == [f"Customer {n}" for n in range(5)]
    assert second["next_cursor"] is None


def test_limit_defaults_to_20(client, reader, add_customers):
    add_customers(*[(f"Customer {n}", f"c{n}@example.com") for n in range(21)])

    body = client.get("/api/v1/customers", headers=reader).json

    assert len(body["items"]) == 20 and body["next_cursor"]


@pytest.mark.parametrize("query", ["limit=101", "limit=0", "cursor=not-a-cursor"])
def test_bad_paging_values_are_422(client, reader, query):
    response = client.get(f"/api/v1/customers?{query}", headers=reader)

    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == query.split("=")[0]


def test_unknown_customer_is_404_problem(client, reader):
    response = client.get("/api/v1/customers/4242", headers=reader)

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert "4242" in response.json["detail"]


def test_emails_are_unique_whatever_their_case(app, add_customers):
    add_customers(("Ada Lovelace", "ada@example.com"))

    with pytest.raises(IntegrityError):
        add_customers(("Ada Impostor", "ADA@EXAMPLE.COM"))


def test_phone_must_be_e164():
    with pytest.raises(ValueError, match="E.164"):
        Customer(name="Ada", email="ada@example.com", phone="020 7123 4567")
