"""Agents, API keys and the audit log over HTTP (scope admin)."""

from sqlalchemy import select

from crm_backend.agents import service as agents
from crm_backend.db import get_session
from crm_backend.models import Agent


def test_an_admin_creates_an_agent_whose_password_is_hashed(app, client, bearer):
    response = client.post(
        "/api/v1/agents",
        json={"email": "Sam@Example.com", "name": "Sam", "password": "correct horse battery"},
        headers=bearer("admin"),
    )

    assert response.status_code == 201
    assert response.json["email"] == "sam@example.com" and "password" not in response.json
    with app.app_context():
        session = get_session()
        stored = session.scalars(select(Agent)).one().password_hash
        assert stored.startswith("$argon2id$") and "correct horse" not in stored
        assert agents.verify_password(session, "sam@example.com", "correct horse battery") is not None
        assert agents.verify_password(session, "sam@example.com", "wrong password!") is None


def test_short_passwords_and_duplicate_agents_are_refused(client, bearer):
    admin = bearer("admin")
    body = {"email": "sam@example.com", "password": "correct horse battery"}

    short = client.post("/api/v1/agents", json={**body, "password": "short"}, headers=admin)
    client.post("/api/v1/agents", json=body, headers=admin)
    duplicate = client.post("/api/v1/agents", json=body, headers=admin)

    assert short.status_code == 422 and short.json["errors"][0]["field"] == "password"
    assert duplicate.status_code == 409


def test_only_admin_keys_manage_agents_and_keys(client, bearer):
    everything_else = bearer("tickets:*", "customers:*", "handoffs:write")

    responses = [
        client.post("/api/v1/agents", json={"email": "a@example.com", "password": "x" * 12}, headers=everything_else),
        client.get("/api/v1/api-keys", headers=everything_else),
        client.post("/api/v1/api-keys", json={"name": "x", "scopes": ["admin"]}, headers=everything_else),
        client.get("/api/v1/audit-events", headers=everything_else),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403, 403]


def test_a_key_created_over_http_works_and_is_shown_only_once(client, bearer):
    admin = bearer("admin")

    created = client.post("/api/v1/api-keys", json={"name": "zapier", "scopes": ["customers:read"]}, headers=admin)
    key = created.json["key"]
    listed = client.get("/api/v1/api-keys", headers=admin).json["items"]

    assert created.status_code == 201
    assert client.get("/api/v1/customers", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert [k["name"] for k in listed] == ["test", "zapier"]
    assert all("key" not in k and "key_hash" not in k for k in listed)


def test_a_revoked_key_stops_working_at_once(client, bearer):
    admin = bearer("admin")
    created = client.post("/api/v1/api-keys", json={"name": "old", "scopes": ["customers:read"]}, headers=admin).json
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert client.get("/api/v1/customers", headers=headers).status_code == 200

    revoked = client.delete(f"/api/v1/api-keys/{created['id']}", headers=admin)
    again = client.delete(f"/api/v1/api-keys/{created['id']}", headers=admin)

    assert revoked.status_code == again.status_code == 204
    assert client.get("/api/v1/customers", headers=headers).status_code == 401
    assert client.delete("/api/v1/api-keys/999", headers=admin).status_code == 404


def test_unknown_scopes_are_422(client, bearer):
    response = client.post("/api/v1/api-keys", json={"name": "x", "scopes": ["tickets:delete"]}, headers=bearer("admin"))

    assert response.status_code == 422 and response.json["errors"][0]["field"].startswith("scopes")


def test_the_audit_log_shows_who_did_what(client, bearer, make_key):
    admin = bearer("admin")
    writer = {"Authorization": f"Bearer {make_key('customers:write', name='crm-sync')}"}
    customer = client.post("/api/v1/customers", json={"name": "Ada", "email": "ada@example.com"}, headers=writer).json
    client.patch(f"/api/v1/customers/{customer['id']}", json={"name": "Ada Lovelace"}, headers=writer)

    page = client.get(f"/api/v1/audit-events?entity_type=customer&entity_id={customer['id']}", headers=admin).json

    assert [e["action"] for e in page["items"]] == ["customer.updated", "customer.created"]
    assert page["items"][0]["actor_name"] == "crm-sync"
    assert page["items"][0]["before"] == {"name": "Ada"} and page["items"][0]["after"] == {"name": "Ada Lovelace"}


def test_agents_are_listed_for_assignment(client, bearer, run_cli):
    run_cli("create-agent", "sam@example.com", "--password", "correct horse battery", "--admin")

    items = client.get("/api/v1/agents", headers=bearer("tickets:read")).json["items"]

    assert [(a["email"], a["is_admin"]) for a in items] == [("sam@example.com", True)]
