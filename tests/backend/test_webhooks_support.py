"""What the webhook tests share: a real HTTP receiver, a fake clock, an admin
client and workers. Imported by the other test_webhooks_* and test_inbound_*
modules; the two tests here check the receiver itself."""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from standardwebhooks import Webhook

from crm_backend.db import get_session
from crm_backend.webhooks.worker import Worker

WEBHOOKS = "/api/v1/webhooks"
EVENTS = ["ticket.created", "ticket.updated", "customer.created", "customer.updated"]


@dataclass
class Received:
    headers: dict
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on a free local port that records every POST.

    ``statuses`` are answered in turn (then ``default_status``); ``stop()``
    and ``start()`` take it off the network and back on the same port.
    """

    default_status: int = 204
    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    delay: float = 0.0

    def __post_init__(self):
        self._lock = threading.Lock()
        self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/crm"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver._lock:
                    receiver.requests.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default_status
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_port
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def verified(self, *secrets: str) -> list[dict]:
        """Every request body, verified with the standardwebhooks library (raises if one is not)."""
        payloads = []
        for received in self.requests:
            errors = []
            for secret in secrets:
                try:
                    payloads.append(Webhook(secret).verify(received.body, received.headers))
                    break
                except Exception as error:  # noqa: BLE001  (try the next secret)
                    errors.append(error)
            else:
                raise AssertionError(f"{received.webhook_id} does not verify: {errors}")
        return payloads

    def unique(self) -> dict[str, Received]:
        """The requests de-duplicated by webhook-id, as a receiver should."""
        return {received.webhook_id: received for received in self.requests}


class FakeClock:
    """The real time plus however far the test has travelled ahead: hours of
    backoff pass in an instant, and events written just now are already due."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def receiver():
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def admin(bearer) -> dict:
    return bearer("admin")


@pytest.fixture
def private_app(app):
    """The app with local targets allowed, as `make run` has it."""
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    return app


@pytest.fixture
def strict(app):
    """The app with the SSRF guard fully on, whatever the environment says."""
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    return app


@pytest.fixture
def register(client, admin, private_app):
    """Register an endpoint; returns the API's answer (with the secret)."""

    def register_(url: str, events=EVENTS, **fields) -> dict:
        response = client.post(WEBHOOKS, json={"url": url, "events": list(events), **fields}, headers=admin)
        assert response.status_code == 201, response.json
        return response.json

    return register_


@pytest.fixture
def make_worker(private_app, clock):
    def make(app=None, **options) -> Worker:
        options.setdefault("clock", clock)
        return Worker(app or private_app, **options)

    return make


def open_ticket(client, headers, email="ada@example.com", subject="Kettle leaks") -> dict:
    response = client.post(
        "/api/v1/tickets", json={"customer_email": email, "subject": subject, "description": "The lid is cracked."}, headers=headers
    )
    assert response.status_code == 201, response.json
    return response.json


def deliveries(app, endpoint_id: int) -> list:
    from sqlalchemy import select

    from crm_backend.models import WebhookDelivery

    with app.app_context():
        session = get_session()
        return list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id).order_by(WebhookDelivery.id)))


def test_the_receiver_records_posts_and_answers_in_turn(receiver):
    receiver.statuses = [500]

    first = requests.post(receiver.url, data=b"{}", timeout=5)
    second = requests.post(receiver.url, data=b"{}", timeout=5)

    assert (first.status_code, second.status_code) == (500, 204)
    assert len(receiver.requests) == 2


def test_a_stopped_receiver_refuses_connections_and_comes_back_on_its_port(receiver):
    port = receiver.port
    receiver.stop()
    with pytest.raises(requests.ConnectionError):
        requests.post(receiver.url, data=b"{}", timeout=5)

    receiver.start()

    assert receiver.port == port
    assert requests.post(receiver.url, data=b"{}", timeout=5).status_code == 204

