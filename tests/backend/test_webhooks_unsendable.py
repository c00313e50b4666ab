"""The webhook worker and what it cannot send or store: one delivery costs that
delivery, never the worker or the other deliveries (issue 19)."""

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text, update

from crm_backend.db import get_session
from crm_backend.models import DeadLetter, WebhookAttempt, WebhookDelivery, WebhookEvent
from crm_backend.webhooks import delivery as delivery_module
from crm_backend.webhooks.secrets import SecretBox
from test_webhooks_support import (  # noqa: F401  (fixtures)
    admin,
    clock,
    deliveries,
    make_worker,
    open_ticket,
    private_app,
    receiver,
    register,
)

POSTGRES = bool(os.environ.get("CRM_TEST_POSTGRES_URL"))


def dead_letters(app) -> list[tuple[str, str, str]]:
    with app.app_context():
        return [(row.source, row.position, row.error) for row in get_session().scalars(select(DeadLetter).order_by(DeadLetter.id))]


def attempts(app) -> list[WebhookAttempt]:
    with app.app_context():
        return list(get_session().scalars(select(WebhookAttempt).order_by(WebhookAttempt.id)))


@pytest.mark.skipif(POSTGRES, reason="PostgreSQL's text is always UTF-8; SQLite keeps whatever bytes it is given")
def test_a_delivery_whose_body_is_not_utf8_fails_and_is_set_aside_while_the_others_go_out(app, client, admin, register, receiver, make_worker):
    register(receiver.url, events=["ticket.created"])
    open_ticket(client, admin, email="first@example.com", subject="First")
    second_ticket = open_ticket(client, admin, email="second@example.com", subject="Second")
    with app.app_context():
        session = get_session()
        first_event = session.scalar(select(WebhookEvent.id).order_by(WebhookEvent.id))
        session.execute(
            text("UPDATE webhook_events SET payload = CAST(:raw AS TEXT) WHERE id = :id"),
            {"raw": b'{"type": "ticket.created", "subject": "caf\xe9 \xed\xa0\x80"}', "id": first_event},
        )
        session.commit()

    make_worker().run_until_idle()

    with app.app_context():  # columns only: the broken body cannot be read back as text
        failed, delivered = get_session().execute(
            select(WebhookDelivery.id, WebhookDelivery.status, WebhookDelivery.last_error).order_by(WebhookDelivery.id)
        ).all()
    assert failed.status == "failed" and failed.last_error.startswith("the stored body is not UTF-8 text")
    assert delivered.status == "delivered"
    assert [r.json["data"]["number"] for r in receiver.requests] == [second_ticket["number"]]
    assert [(source, position) for source, position, _ in dead_letters(app)] == [("webhooks", f"delivery {failed.id}")]


class NulReceiver:
    """Answers 200 with a NUL byte and bytes that are not UTF-8 in the body."""

    def __enter__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = b"ok\x00\xff"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_port}/hooks"

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_a_receivers_answer_with_a_nul_byte_is_stored_cleaned_and_the_delivery_counts(app, client, admin, register, make_worker):
    with NulReceiver() as url:
        created = register(url, events=["ticket.created"])
        open_ticket(client, admin)

        make_worker().run_until_idle()

    [row] = deliveries(app, created["id"])
    assert row.status == "delivered"
    [attempt] = attempts(app)
    assert attempt.status_code == 200 and attempt.response_body == "ok\ufffd"


def test_a_secret_the_key_cannot_decrypt_is_a_failed_attempt_retried_once_the_key_is_back(
    app, client, admin, register, receiver, make_worker, clock, tmp_path
):
    created = register(receiver.url, events=["ticket.created"])
    open_ticket(client, admin)
    worker = make_worker()
    right_key = worker.box
    worker.box = SecretBox(Fernet.generate_key().decode(), tmp_path / "unused.key")  # WEBHOOK_SECRETS_KEY changed

    worker.run_until_idle()

    [row] = deliveries(app, created["id"])
    assert row.status == "pending" and row.last_error.startswith("cannot sign: a stored webhook secret cannot be decrypted")
    assert receiver.requests == [] and dead_letters(app) == []

    worker.box = right_key
    clock.advance(3600)
    worker.run_until_idle()

    [row] = deliveries(app, created["id"])
    assert row.status == "delivered" and len(receiver.requests) == 1


def test_an_unexpected_error_costs_the_worker_a_pause_not_its_life(app, client, admin, register, receiver, make_worker, monkeypatch):
    register(receiver.url, events=["ticket.created"])
    open_ticket(client, admin)
    real = delivery_module.claim
    calls = []

    def fails_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return real(*args, **kwargs)

    monkeypatch.setattr(delivery_module, "claim", fails_once)
    worker = make_worker(poll_interval=0.02)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        alive = thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=10)

    assert alive and len(receiver.requests) == 1


def test_an_attempt_the_database_refuses_is_set_aside_and_the_others_are_recorded(app, client, admin, register, receiver, make_worker, monkeypatch):
    created = register(receiver.url, events=["ticket.created"])
    open_ticket(client, admin, email="first@example.com")
    open_ticket(client, admin, email="second@example.com")
    real = delivery_module.record

    def refuses_the_first(session, claimed, outcome, **kwargs):
        status = real(session, claimed, outcome, **kwargs)
        first = session.scalar(select(WebhookDelivery.id).order_by(WebhookDelivery.id))
        if claimed.delivery_id == first:
            # A value the column cannot hold, as PostgreSQL refuses a NUL or an overflow.
            session.execute(update(WebhookDelivery).where(WebhookDelivery.id == first).values(status="lost"))
        return status

    monkeypatch.setattr(delivery_module, "record", refuses_the_first)
    worker = make_worker(concurrency=2)

    worker.record([(claimed, worker.send(claimed), worker.now()) for claimed in worker.claim(2)])

    first, second = deliveries(app, created["id"])
    assert second.status == "delivered"
    assert first.status == "pending" and first.lease_token is not None  # sent again when its lease runs out
    assert [(source, position) for source, position, _ in dead_letters(app)] == [("webhooks", f"delivery {first.id}")]
