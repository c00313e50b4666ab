"""customer_verified on handoffs and tickets: whether the visitor proved the
customer's address (a signed identity) or only typed it. The API takes and
shows it, webhooks carry it, old rows migrate as false, and the console warns
the agent about an unverified handoff."""

import json
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import select

from crm_backend import api_keys, migrate
from crm_backend.db import get_engine, get_session
from crm_backend.models import WebhookEvent
from test_console import alex, console_app, queue_handoff  # noqa: F401  (fixtures)
from test_webhooks_support import admin, private_app, register  # noqa: F401  (fixtures)

HANDOFFS = "/api/v1/handoffs"
TICKETS = "/api/v1/tickets"
WARNING = "don't share account details until they prove it"


@pytest.fixture
def bot(bearer):
    return bearer("handoffs:write", "handoffs:read", "tickets:write", "tickets:read", "customers:read")


def post_handoff(client, headers, conversation_id="conv-1", **fields):
    body = {"conversation_id": conversation_id, "reason": "my refund is late", "customer_email": "ada@example.com", **fields}
    response = client.post(HANDOFFS, json=body, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def post_ticket(client, headers, **fields):
    body = {"customer_email": "ada@example.com", "subject": "Late refund", "description": "Still waiting.", "channel": "chat", **fields}
    response = client.post(TICKETS, json=body, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def test_a_handoff_is_unverified_unless_the_caller_says_so_and_every_read_shows_it(client, bot, fake_classifier):
    typed = post_handoff(client, bot, "conv-typed")
    proven = post_handoff(client, bot, "conv-signed", customer_verified=True)

    assert (typed["customer_verified"], proven["customer_verified"]) == (False, True)
    assert client.get(f"{HANDOFFS}/{typed['id']}", headers=bot).json["customer_verified"] is False
    assert client.get(f"{HANDOFFS}/{proven['id']}", headers=bot).json["customer_verified"] is True
    listed = {item["conversation_id"]: item["customer_verified"] for item in client.get(HANDOFFS, headers=bot).json["items"]}
    assert listed == {"conv-typed": False, "conv-signed": True}


def test_a_ticket_is_unverified_unless_the_caller_says_so_and_every_read_shows_it(client, bot, fake_classifier):
    typed = post_ticket(client, bot, conversation_id="conv-typed")
    proven = post_ticket(client, bot, conversation_id="conv-signed", customer_verified=True)

    assert (typed["customer_verified"], proven["customer_verified"]) == (False, True)
    assert client.get(f"{TICKETS}/{typed['number']}", headers=bot).json["customer_verified"] is False
    assert client.get(f"{TICKETS}/{proven['number']}", headers=bot).json["customer_verified"] is True
    listed = {item["conversation_id"]: item["customer_verified"] for item in client.get(TICKETS, headers=bot).json["items"]}
    assert listed == {"conv-typed": False, "conv-signed": True}


def test_customer_verified_must_be_a_boolean(client, bot, fake_classifier):
    response = client.post(
        HANDOFFS,
        json={"conversation_id": "c", "reason": "r", "customer_email": "ada@example.com", "customer_verified": "maybe"},
        headers=bot,
    )
    assert response.status_code == 422


def test_webhooks_carry_whether_the_customer_was_verified(app, client, bot, register, fake_classifier):
    register("http://127.0.0.1:9/hook", events=["ticket.created", "handoff.requested"])

    post_ticket(client, bot, customer_verified=True)
    post_handoff(client, bot)

    with app.app_context():
        payloads = [json.loads(row.payload) for row in get_session().scalars(select(WebhookEvent).order_by(WebhookEvent.id))]
    by_type = {payload["type"]: payload["data"] for payload in payloads}
    assert by_type["ticket.created"]["customer_verified"] is True
    assert by_type["handoff.requested"]["customer_verified"] is False


def test_a_ticket_an_agent_opens_in_the_console_is_not_verified(console_app, alex, queue_handoff):
    handoff_id = queue_handoff(customer_verified=True)

    created = alex.post(
        f"/console/api/handoffs/{handoff_id}/ticket", {"subject": "Cracked blender", "description": "Arrived cracked."}
    )

    assert created.status_code == 201
    assert created.json["customer_verified"] is False


def test_the_console_warns_about_an_unverified_handoff_and_marks_a_verified_one(console_app, alex, queue_handoff):
    typed = queue_handoff("conv-typed")
    proven = queue_handoff("conv-signed", customer_verified=True)

    typed_page = alex.client.get(f"/console/handoffs/{typed}").text
    typed_panel = alex.client.get(f"/console/handoffs/{typed}/panel").text
    proven_page = alex.client.get(f"/console/handoffs/{proven}").text
    proven_panel = alex.client.get(f"/console/handoffs/{proven}/panel").text

    # The header and the panel both say it; the panel keeps its details.
    assert 'id="identity-warning"' in typed_page and 'id="panel-identity-warning"' in typed_page
    assert WARNING in typed_panel and "Email not verified" in typed_panel
    assert "sign in on the shop" in typed_panel
    assert "ada@example.com" in typed_panel and "Satisfaction" in typed_panel
    for html in (proven_page, proven_panel):
        assert "Email not verified" not in html and WARNING not in html
        assert "badge-verified" in html
    assert "badge-verified" not in typed_page


def _insert_old_rows(connection) -> None:
    """A customer, a ticket and a handoff as revision 0011 stored them."""
    tables = sa.MetaData()
    tables.reflect(connection, only=["customers", "tickets", "handoffs"])
    now = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    connection.execute(
        tables.tables["customers"].insert(),
        {"id": 1, "name": "Ada Lovelace", "email": "ada@example.com", "created_at": now, "updated_at": now},
    )
    connection.execute(
        tables.tables["tickets"].insert(),
        {
            "id": 1, "customer_id": 1, "subject": "Old", "description": "From before.", "status": "open",
            "priority": "normal", "category": "other", "category_source": "classifier", "channel": "chat",
            "created_at": now, "updated_at": now,
        },
    )
    connection.execute(
        tables.tables["handoffs"].insert(),
        {
            "id": 1, "conversation_id": "old-conv", "customer_id": 1, "reason": "from before", "category": "other",
            "channel": "chat", "status": "queued", "transcript": [], "created_at": now, "updated_at": now,
        },
    )


def test_the_migration_marks_existing_handoffs_and_tickets_unverified(unmigrated_app):
    with unmigrated_app.app_context():
        engine = get_engine()
        with engine.begin() as connection:
            command.upgrade(migrate.alembic_config(connection), "0011")
            _insert_old_rows(connection)
        migrate.upgrade_to_head(engine)
        with engine.connect() as connection:
            assert migrate.is_at_head(connection)
            rows = [
                connection.execute(sa.text(f"SELECT customer_verified FROM {table}")).scalar_one()
                for table in ("tickets", "handoffs")
            ]
        _, key = api_keys.create_api_key(get_session(), "test", ["tickets:read", "handoffs:read"])
    assert rows == [False, False]
    client = unmigrated_app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get(f"{TICKETS}/1", headers=headers).json["customer_verified"] is False
    assert client.get(f"{HANDOFFS}/1", headers=headers).json["customer_verified"] is False


def test_the_migration_goes_down_and_up_again(app):
    with app.app_context():
        engine = get_engine()
        with engine.begin() as connection:
            command.downgrade(migrate.alembic_config(connection), "0011")
        columns = {table: {c["name"] for c in sa.inspect(engine).get_columns(table)} for table in ("tickets", "handoffs")}
        assert all("customer_verified" not in names for names in columns.values())
        migrate.upgrade_to_head(engine)
        columns = {table: {c["name"] for c in sa.inspect(engine).get_columns(table)} for table in ("tickets", "handoffs")}
        assert all("customer_verified" in names for names in columns.values())
