"""Webhooks through the real stack: the worker under honcho delivers signed
events for tickets opened over the API and by the bot, and signed inbound
events reach the CRM."""

import json
import os
import subprocess
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from standardwebhooks import Webhook

from harness import REPO
from tests.e2e.test_conversation import texts


def crm(stack, *args: str) -> str:
    """Run a `crm` command against the stack's database, as an operator would."""
    result = subprocess.run(
        [str(REPO / ".venv/backend/bin/crm"), *args],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{stack.var_dir / 'crm.db'}"},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


class Receiver:
    """An integration's endpoint: records what it is sent and answers 200."""

    def __init__(self):
        self.received: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/crm-events"

    def wait_for(self, secret: str, matches, timeout: float = 30) -> dict:
        """The first delivery that verifies with ``secret`` and satisfies ``matches``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for headers, body in list(self.received):
                payload = Webhook(secret).verify(body, headers)
                if matches(payload):
                    return payload
            time.sleep(0.2)
        raise AssertionError(f"no matching delivery in {timeout} s; got {[json.loads(body)['type'] for _, body in self.received]}")


@pytest.fixture(scope="module")
def integration(stack):
    receiver = Receiver()
    key = crm(stack, "create-api-key", "e2e-webhooks", "--scopes", "webhooks:*,tickets:*,customers:read")
    headers = {"Authorization": f"Bearer {key}"}
    response = requests.post(
        f"{stack.crm_url}/api/v1/webhooks",
        json={"url": receiver.url, "events": ["ticket.created", "customer.created"], "description": "e2e"},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    yield receiver, response.json(), headers
    receiver.server.shutdown()
    receiver.server.server_close()


def test_a_ticket_opened_over_the_api_is_delivered_signed_by_the_worker(stack, integration):
    receiver, endpoint, headers = integration

    ticket = requests.post(
        f"{stack.crm_url}/api/v1/tickets",
        json={"customer_email": "ada@example.com", "subject": "Webhook check", "description": "The kettle lid is cracked."},
        headers=headers,
        timeout=10,
    ).json()

    payload = receiver.wait_for(endpoint["secret"], lambda p: p["type"] == "ticket.created" and p["data"]["number"] == ticket["number"])
    assert payload["data"] == requests.get(f"{stack.crm_url}/api/v1/tickets/{ticket['number']}", headers=headers, timeout=10).json()
    deliveries = requests.get(f"{stack.crm_url}/api/v1/webhooks/{endpoint['id']}/deliveries", headers=headers, timeout=10).json()
    assert "delivered" in {item["status"] for item in deliveries["items"]}


def test_a_ticket_the_bot_opens_reaches_the_integration_with_its_conversation(stack, integration):
    receiver, endpoint, _ = integration
    sender = f"webhook-visitor-{uuid.uuid4().hex[:8]}"
    email = f"{sender}@example.com"

    stack.say(sender, "I want to make a complaint")
    stack.say(sender, email)
    stack.say(sender, "/deny")
    stack.say(sender, "the toaster lever will not stay down")
    done = texts(stack.say(sender, "yes please"))

    payload = receiver.wait_for(endpoint["secret"], lambda p: p["type"] == "ticket.created" and p["data"]["conversation_id"] == sender)
    assert payload["data"]["number"] in done
    assert payload["data"]["channel"] == "chat" and payload["data"]["customer_email"] == email
    assert payload["data"]["description"] == "the toaster lever will not stay down"
    customer = receiver.wait_for(endpoint["secret"], lambda p: p["type"] == "customer.created" and p["data"]["email"] == email)
    assert customer["data"]["id"] == payload["data"]["customer_id"]


def test_a_shops_signed_order_is_accepted_once_and_a_forged_one_is_refused(stack, integration):
    _, _, headers = integration
    source = f"shop-{uuid.uuid4().hex[:6]}"
    secret = crm(stack, "inbound", "add-source", source, "--kind", "shop")
    body = json.dumps({
        "type": "order.created",
        "data": {"id": "NW-700001", "customer": {"email": "order.e2e@example.com", "name": "Order Person"},
                 "amount": "42.50", "currency": "EUR", "ordered_at": "2026-11-22T09:00:00Z"},
    })
    webhook_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(timezone.utc)
    signed = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, now, body),
        "Content-Type": "application/json",
    }
    url = f"{stack.crm_url}/api/v1/inbound/{source}"

    first = requests.post(url, data=body, headers=signed, timeout=10)
    again = requests.post(url, data=body, headers=signed, timeout=10)
    forged = requests.post(url, data=body.replace("42.50", "0.01"), headers=signed, timeout=10)

    assert first.status_code == 200 and first.json()["status"] == "processed"
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert forged.status_code == 401 and forged.headers["Content-Type"] == "application/problem+json"
    customers = requests.get(f"{stack.crm_url}/api/v1/customers", params={"email": "order.e2e@example.com"}, headers=headers, timeout=10).json()
    assert [customer["name"] for customer in customers["items"]] == ["Order Person"]
