"""Malformed input anywhere gets a 4xx problem, never a 500, and nothing is
half-written: lone surrogates, NUL, absurd nesting and non-object JSON, on
every API route, the inbound webhooks and the console's JSON endpoints."""

import json

import pytest
from sqlalchemy import func, select

from crm_backend.db import get_session
from crm_backend.models import AuditEvent, Comment, Customer, Handoff, Order, Ticket
from test_console import ALEX, Agent_, console_app, queue_handoff  # noqa: F401  (fixtures)
from test_inbound import ORDER, add_source, shop, signed  # noqa: F401  (fixtures)

SURROGATE = '"\\ud800"'  # JSON text of a lone UTF-16 surrogate
NUL = '"a\\u0000b"'  # JSON text of a string holding NUL
DEEP_ARRAY = "[" * 10_000 + "]" * 10_000
DEEP_OBJECT = '{"a":' * 10_000 + "1" + "}" * 10_000
MALFORMED_BODIES = {
    "lone surrogate": '{"text": %s, "name": %s}' % (SURROGATE, SURROGATE),
    "NUL": '{"text": %s, "name": %s}' % (NUL, NUL),
    "surrogate in a key": '{%s: 1}' % SURROGATE,
    "10,000 nested arrays": DEEP_ARRAY,
    "10,000 nested objects": DEEP_OBJECT,
    "an array": "[1, 2, 3]",
    "a string": '"text"',
    "null": "null",
}
WRITES = ("POST", "PUT", "PATCH", "DELETE")
STORED = (Customer, Ticket, Comment, Handoff, Order, AuditEvent)


def count_rows(app) -> tuple[int, ...]:
    with app.app_context():
        session = get_session()
        return tuple(session.scalar(select(func.count()).select_from(model)) for model in STORED)


@pytest.fixture
def world(console_app, queue_handoff, bearer, shop):
    """Every kind of resource exists (id 1), an admin key, a signed-in agent."""
    handoff_id = queue_handoff()
    admin = bearer("admin")
    client = console_app.test_client()
    ticket = client.post("/api/v1/tickets", json={"customer_email": "ada@example.com", "subject": "s", "description": "d"}, headers=admin)
    assert ticket.status_code == 201 and handoff_id == 1
    agent = Agent_(console_app, *ALEX)
    return {"admin": admin, "agent": agent, "shop": shop}


def write_routes(app) -> list[tuple[str, str]]:
    """(method, url) of every route that takes a body, with path values filled in."""
    samples = {"ticket_ref": "TCK-000001", "source_name": "shop", "name": "needs"}
    adapter = app.url_map.bind("localhost")
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.endswith("static"):
            continue
        values = {arg: 1 if type(rule._converters[arg]).__name__.endswith("IdConverter") else samples.get(arg, "x") for arg in rule.arguments}
        url = adapter.build(rule.endpoint, values, force_external=False)
        for method in sorted(rule.methods & set(WRITES)):
            routes.append((method, url))
    return routes


@pytest.mark.parametrize("kind", MALFORMED_BODIES)
def test_every_route_answers_malformed_json_with_a_4xx_problem(console_app, world, kind):
    body = MALFORMED_BODIES[kind]
    client = world["agent"].client  # signed in: console endpoints get past their sign-in check
    headers = {**world["admin"], "X-CSRF-Token": world["agent"].token, "Content-Type": "application/json"}
    before = count_rows(console_app)
    answers = {}

    for method, url in write_routes(console_app):
        response = client.open(url, method=method, data=body, headers=headers)
        answers[f"{method} {url}"] = (response.status_code, response.mimetype)

    bad = {route: answer for route, answer in answers.items() if not 400 <= answer[0] < 500}
    assert bad == {}
    not_problems = {route: answer for route, answer in answers.items() if answer[1] != "application/problem+json" and not route.endswith("/console/login")}
    assert not_problems == {}
    assert len(answers) > 30  # the API, inbound and the console's JSON endpoints were all tried
    assert count_rows(console_app) == before  # nothing half-written


@pytest.mark.parametrize("text, what", [(SURROGATE, "lone UTF-16 surrogate"), (NUL, "NUL character")])
@pytest.mark.parametrize(
    "method, url, template",
    [
        ("POST", "/api/v1/customers", '{"name": %s, "email": "new@example.com"}'),
        ("POST", "/api/v1/tickets", '{"customer_email": "ada@example.com", "subject": %s, "description": "d"}'),
        ("PATCH", "/api/v1/tickets/1", '{"subject": %s}'),
        ("POST", "/api/v1/tickets/1/comments", '{"body": %s}'),
        ("POST", "/api/v1/feedback", '{"score": 4, "comment": %s, "conversation_id": "c-1"}'),
        ("POST", "/api/v1/handoffs", '{"conversation_id": "c-2", "reason": %s, "customer_email": "ada@example.com"}'),
        ("POST", "/console/api/handoffs/1/messages", '{"text": %s}'),
        ("POST", "/console/api/handoffs/1/ticket", '{"subject": %s, "description": "d"}'),
    ],
)
def test_a_bad_character_in_a_real_field_is_400_and_stores_nothing(console_app, world, fake_rasa, method, url, template, text, what):
    client = world["agent"].client
    headers = {**world["admin"], "X-CSRF-Token": world["agent"].token, "Content-Type": "application/json"}
    before = count_rows(console_app)

    response = client.open(url, method=method, data=template % text, headers=headers)

    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    assert what in response.json["detail"]
    assert count_rows(console_app) == before
    assert fake_rasa.sent == []


@pytest.mark.parametrize("text", [SURROGATE, NUL])
def test_a_signed_inbound_event_with_a_bad_character_is_400_and_stores_nothing(console_app, world, text):
    event = '{"type": "order.created", "data": %s}' % json.dumps({**ORDER, "id": "__ID__"}).replace('"__ID__"', text)
    body, headers = signed(world["shop"], event.encode())
    before = count_rows(console_app)

    response = console_app.test_client().post("/api/v1/inbound/shop", data=body, headers=headers)
    as_text = console_app.test_client().post("/api/v1/inbound/shop", data=body, headers={**headers, "Content-Type": "text/plain"})

    assert response.status_code == as_text.status_code == 400
    assert count_rows(console_app) == before


@pytest.mark.parametrize("url", ["/api/v1/customers?q=%00", "/api/v1/tickets?customer_email=a%00@example.com", "/api/v1/inbound/sh%00op"])
def test_nul_in_a_query_or_path_is_400(console_app, world, url):
    method = "POST" if "inbound" in url else "GET"

    response = console_app.test_client().open(url, method=method, headers=world["admin"])

    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    assert "NUL" in response.json["detail"]


def test_nul_in_the_sign_in_form_is_400(console_app):
    client = console_app.test_client()
    page = client.get("/console/login").text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]

    response = client.post("/console/login", data={"email": "alex@example.com\x00", "password": "x", "csrf_token": token})

    assert response.status_code == 400


def test_ids_beyond_any_row_are_404_not_an_overflow(console_app, world):
    client = console_app.test_client()

    answers = [
        client.get(f"/api/v1/customers/{2**70}", headers=world["admin"]).status_code,
        client.get(f"/api/v1/tickets/{10**17}", headers=world["admin"]).status_code,
        client.get(f"/api/v1/feedback/{2**40}", headers=world["admin"]).status_code,
        client.post("/api/v1/feedback", json={"score": 3, "handoff_id": 2**40}, headers=world["admin"]).status_code,
    ]

    assert answers == [404, 404, 404, 422]


@pytest.fixture
def fake_rasa(monkeypatch):
    from fakes import FakeRasa

    fake = FakeRasa()
    monkeypatch.setattr("crm_backend.console.api.rasa_client", lambda: fake)
    monkeypatch.setattr("crm_backend.handoffs.views.rasa_client", lambda: fake)
    return fake
