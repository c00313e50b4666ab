"""The delivery worker against a real HTTP receiver: signatures, retries, restarts,
concurrency, order, backoff, failing endpoints, the SSRF guard at delivery time.

Time is a FakeClock: hours of backoff pass by moving it, never by sleeping.
Signatures carry the real time (receivers check them against theirs).
"""

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from standardwebhooks import Webhook

from crm_backend import create_app
from crm_backend.db import get_engine, get_session, utcnow
from crm_backend.models import WebhookAttempt, WebhookEndpoint, WebhookEvent
from crm_backend.webhooks import delivery
from crm_backend.webhooks.delivery import Policy, backoff_seconds
from crm_backend.webhooks.worker import Worker
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

BIN = Path(sys.executable).parent
TICKET_EVENTS = ["ticket.created", "ticket.updated"]


def endpoint_row(app, endpoint_id: int) -> WebhookEndpoint:
    with app.app_context():
        return get_session().get(WebhookEndpoint, endpoint_id)


def attempts(app) -> list[WebhookAttempt]:
    with app.app_context():
        return list(get_session().scalars(select(WebhookAttempt).order_by(WebhookAttempt.id)))


def message_ids(app) -> set[str]:
    with app.app_context():
        return set(get_session().scalars(select(WebhookEvent.message_id)))


def run_until_delivered(worker: Worker, clock, app, endpoint_id: int, rounds: int = 50) -> None:
    """Run the worker, jumping the clock to the next retry, until nothing is pending."""
    for _ in range(rounds):
        worker.run_until_idle()
        pending = [row for row in deliveries(app, endpoint_id) if row.status == "pending"]
        if not pending:
            return
        later = [row.next_attempt_at.timestamp() for row in pending if row.next_attempt_at.timestamp() > clock()]
        clock.advance((min(later) - clock() if later else 0) + 1)
    raise AssertionError(f"deliveries still pending: {[(row.id, row.status) for row in deliveries(app, endpoint_id)]}")


def test_the_worker_delivers_signed_events_that_verify_with_the_library(app, client, admin, register, receiver, make_worker):
    created = register(receiver.url, events=["ticket.created", "customer.created"])
    ticket = open_ticket(client, admin)

    make_worker().run_until_idle()

    customer_event, ticket_event = receiver.verified(created["secret"])
    assert customer_event["type"] == "customer.created" and ticket_event["type"] == "ticket.created"
    assert ticket_event["data"] == client.get(f"/api/v1/tickets/{ticket['number']}", headers=admin).json
    received = receiver.requests[1]
    assert received.headers["content-type"] == "application/json"
    assert received.headers["webhook-signature"].startswith("v1,")
    assert abs(int(received.headers["webhook-timestamp"]) - time.time()) < 60
    assert {row.status for row in deliveries(app, created["id"])} == {"delivered"}
    assert endpoint_row(app, created["id"]).last_success_at is not None


def test_a_receiver_down_for_hours_and_a_restarted_backend_still_get_every_event_exactly_once(
    app, client, admin, register, receiver, clock, tmp_path
):
    created = register(receiver.url)
    for n in range(3):
        ticket = open_ticket(client, admin, email=f"customer{n}@example.com")
        client.patch(f"/api/v1/tickets/{ticket['number']}", json={"priority": "high"}, headers=admin)
    expected = message_ids(app)
    receiver.stop()

    first = Worker(app, clock=clock)
    first.run_until_idle()
    clock.advance(3600)
    first.run_until_idle()
    assert attempts(app) and all(attempt.status_code is None for attempt in attempts(app))
    assert receiver.requests == []

    # The backend restarts: a new app and engine on the same database, a
    # fresh worker. The receiver comes back, but its first two answers are
    # lost (500 after it stored the event), so those arrive twice.
    with app.app_context():
        get_engine().dispose()
    restarted = create_app({"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"], "WEBHOOK_ALLOW_PRIVATE": True})
    receiver.statuses = [500, 500]
    receiver.start()
    clock.advance(5 * 3600)
    run_until_delivered(Worker(restarted, clock=clock), clock, restarted, created["id"])

    receiver.verified(created["secret"])
    assert set(receiver.unique()) == expected
    assert len(receiver.requests) == len(expected) + 2
    assert {row.status for row in deliveries(restarted, created["id"])} == {"delivered"}
    with restarted.app_context():
        get_engine().dispose()


def test_events_of_one_ticket_arrive_in_order_even_when_one_has_to_be_retried(app, client, admin, register, receiver, make_worker, clock):
    register(receiver.url, events=TICKET_EVENTS)
    first = open_ticket(client, admin, email="first@example.com", subject="First")
    client.patch(f"/api/v1/tickets/{first['number']}", json={"status": "pending"}, headers=admin)
    second = open_ticket(client, admin, email="second@example.com", subject="Second")
    receiver.statuses = [503]  # the first ticket's creation fails once

    worker = make_worker()
    worker.run_until_idle()
    sent_first_round = [(r.json["type"], r.json["data"]["number"]) for r in receiver.requests]
    clock.advance(3600)
    worker.run_until_idle()

    # Round one: ticket 1's creation failed, so its update waited; ticket 2 went on.
    assert sent_first_round == [("ticket.created", first["number"]), ("ticket.created", second["number"])]
    delivered = [(r.json["type"], r.json["data"]["number"]) for r in receiver.requests[2:]]
    assert delivered == [("ticket.created", first["number"]), ("ticket.updated", first["number"])]


def test_two_workers_at_once_never_send_a_delivery_twice(app, client, admin, register, receiver, clock):
    created = register(receiver.url, events=["ticket.created"])
    for n in range(30):
        open_ticket(client, admin, email=f"c{n}@example.com")
    receiver.delay = 0.01
    # Two apps, two engines: as two processes would be.
    apps = [create_app({"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"], "WEBHOOK_ALLOW_PRIVATE": True}) for _ in range(2)]
    stop = threading.Event()
    workers = [Worker(each, clock=clock, concurrency=4, poll_interval=0.02) for each in apps]
    threads = [threading.Thread(target=worker.run, args=(stop,)) for worker in workers]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(row.status != "delivered" for row in deliveries(app, created["id"])):
        time.sleep(0.05)
    stop.set()
    for worker in workers:
        worker._wake.set()
    for thread in threads:
        thread.join(10)

    assert {row.status for row in deliveries(app, created["id"])} == {"delivered"}
    assert len(receiver.requests) == len(receiver.unique()) == 30
    for each in apps:
        with each.app_context():
            get_engine().dispose()


def test_two_worker_processes_share_the_outbox_and_stop_cleanly_on_sigterm_and_sigint(app, client, admin, register, receiver):
    created = register(receiver.url, events=["ticket.created"])
    env = {**os.environ, "DATABASE_URL": app.config["DATABASE_URL"], "WEBHOOK_ALLOW_PRIVATE": "1", "NEED_MODEL_PATH": "/nonexistent"}
    workers = [
        subprocess.Popen([str(BIN / "crm"), "webhooks", "worker", "--poll-interval", "0.05"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    for worker in workers:
        wait_until_delivering(worker)  # signals are handled from then on
    for n in range(20):
        open_ticket(client, admin, email=f"c{n}@example.com")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(receiver.unique()) < 20:
            time.sleep(0.1)
    finally:
        workers[0].send_signal(signal.SIGTERM)
        workers[1].send_signal(signal.SIGINT)
        codes = [worker.wait(timeout=10) for worker in workers]
        outputs = [worker.stdout.read() for worker in workers]

    assert codes == [0, 0], outputs
    assert all("Webhook worker stopped." in output for output in outputs), outputs
    assert all("Traceback" not in output for output in outputs), outputs
    assert len(receiver.requests) == len(receiver.unique()) == 20
    receiver.verified(created["secret"])


def wait_until_delivering(worker: subprocess.Popen) -> None:
    lines = []
    while len(lines) < 50:
        line = worker.stdout.readline()
        if not line:  # it exited
            break
        lines.append(line)
        if line.startswith("Webhook worker delivering"):
            return
    raise AssertionError(f"the worker did not start: {lines}")


def test_a_delivery_whose_worker_died_is_taken_over_when_its_lease_expires(app, client, admin, register, receiver, clock):
    created = register(receiver.url, events=["ticket.created"])
    open_ticket(client, admin)
    crashed = Worker(app, clock=clock)
    [claimed] = crashed.claim(1)  # ...and the process dies before sending

    assert Worker(app, clock=clock).run_until_idle() == 0  # leased: nobody else takes it
    clock.advance(crashed.policy.lease_seconds + 1)
    assert Worker(app, clock=clock).run_until_idle() == 1

    late = crashed.process(claimed)  # the "dead" worker wakes up after all

    assert late is None  # its lease is gone: it records nothing
    assert len(attempts(app)) == 1
    assert [row.status for row in deliveries(app, created["id"])] == ["delivered"]
    assert len(receiver.unique()) == 1


def test_backoff_doubles_with_jitter_up_to_four_hours():
    policy, rng = Policy(), random.Random(7)

    for retry in range(1, 30):
        ceiling = min(30 * 2 ** (retry - 1), 4 * 3600)
        delays = [backoff_seconds(retry, policy, rng) for _ in range(50)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 1  # jittered


def test_a_receiver_that_never_answers_well_is_retried_for_24_hours_then_the_delivery_fails(app, client, admin, register, receiver, make_worker, clock):
    created = register(receiver.url, events=["ticket.created"])
    receiver.default_status = 503
    open_ticket(client, admin)
    worker = make_worker(rng=random.Random(1))

    for _ in range(100):
        worker.run_until_idle()
        [row] = deliveries(app, created["id"])
        if row.status != "pending":
            break
        clock.advance(row.next_attempt_at.timestamp() - clock() + 0.5)

    tries = attempts(app)
    times = [attempt.attempted_at for attempt in tries]
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(times, times[1:])]
    assert row.status == "failed" and row.attempt_count == len(tries) == len(receiver.requests)
    assert times[-1] - times[0] >= timedelta(hours=24)
    assert times[-2] - times[0] < timedelta(hours=24)  # it stops once the window is over
    assert 15 <= gaps[0] <= 31 and max(gaps) <= 4 * 3600 + 1
    assert gaps[5] > gaps[0] * 8  # exponential, not linear
    assert all(attempt.status_code == 503 and attempt.error == "HTTP 503" for attempt in tries)
    assert len(receiver.unique()) == 1  # every retry is the same message


def test_an_endpoint_is_marked_failing_after_five_failures_in_a_row_and_recovers_on_success(app, client, admin, register, receiver, make_worker, clock):
    created = register(receiver.url, events=["ticket.created"])
    receiver.default_status = 500
    for n in range(5):
        open_ticket(client, admin, email=f"c{n}@example.com")
    worker = make_worker()

    worker.run_until_idle()  # five deliveries, five failures
    failing = client.get(f"/api/v1/webhooks/{created['id']}", headers=admin).json
    receiver.default_status = 200
    clock.advance(3600)
    worker.run_until_idle()
    recovered = client.get(f"/api/v1/webhooks/{created['id']}", headers=admin).json

    assert failing["status"] == "failing" and failing["consecutive_failures"] == 5
    assert failing["failing_since"] is not None and failing["last_error"] == "HTTP 500"
    assert recovered["status"] == "active" and recovered["consecutive_failures"] == 0 and recovered["failing_since"] is None


def test_four_failures_do_not_mark_an_endpoint_failing(client, admin, register, receiver, make_worker):
    created = register(receiver.url, events=["ticket.created"])
    receiver.default_status = 500
    for n in range(4):
        open_ticket(client, admin, email=f"c{n}@example.com")

    make_worker().run_until_idle()

    assert client.get(f"/api/v1/webhooks/{created['id']}", headers=admin).json["status"] == "active"


def test_a_failed_delivery_can_be_redelivered_with_a_fresh_retry_window(app, client, admin, register, receiver, make_worker, clock):
    created = register(receiver.url, events=["ticket.created"])
    receiver.default_status = 500
    open_ticket(client, admin)
    worker = make_worker()
    worker.run_until_idle()
    clock.advance(25 * 3600)
    worker.run_until_idle()  # past the window: failed
    [failed] = deliveries(app, created["id"])
    assert failed.status == "failed"

    receiver.default_status = 200
    client.post(f"/api/v1/deliveries/{failed.id}/redeliver", headers=admin)
    worker.run_until_idle()

    [row] = deliveries(app, created["id"])
    assert row.status == "delivered" and row.attempt_count == 3
    assert len(receiver.unique()) == 1


def test_a_disabled_endpoint_keeps_its_pending_deliveries_until_enabled(app, client, admin, register, receiver, make_worker):
    created = register(receiver.url, events=["ticket.created"])
    open_ticket(client, admin)
    client.patch(f"/api/v1/webhooks/{created['id']}", json={"enabled": False}, headers=admin)

    paused = make_worker().run_until_idle()
    client.patch(f"/api/v1/webhooks/{created['id']}", json={"enabled": True}, headers=admin)
    resumed = make_worker().run_until_idle()

    assert (paused, resumed) == (0, 1)
    assert len(receiver.requests) == 1


def test_redirects_are_not_followed(app, client, admin, register, receiver, make_worker):
    created = register(receiver.url, events=["ticket.created"])
    receiver.statuses = [302]
    open_ticket(client, admin)

    make_worker().run_until_idle()

    [row] = deliveries(app, created["id"])
    assert row.status == "pending" and row.last_status_code == 302 and row.last_error == "HTTP 302"


def test_a_slow_receiver_times_out_and_the_attempt_says_so(app, client, admin, register, receiver, make_worker):
    created = register(receiver.url, events=["ticket.created"])
    receiver.delay = 1.0
    open_ticket(client, admin)
    worker = make_worker()
    worker.policy = Policy(timeout=0.2, allow_private=True)

    worker.run_until_idle()

    [attempt] = attempts(app)
    assert attempt.status_code is None and "timed out" in attempt.error.lower()
    assert attempt.duration_ms < 900
    assert [row.status for row in deliveries(app, created["id"])] == ["pending"]


def test_a_name_that_turns_private_after_registration_is_refused_at_delivery(app, client, admin, receiver, clock):
    # Registered while hooks.example.com resolved to a public address...
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    app.extensions["crm_webhook_resolver"] = lambda host, port: ["93.184.216.34"]
    created = client.post(
        "/api/v1/webhooks", json={"url": f"http://hooks.example.com:{receiver.port}/x", "events": ["ticket.created"]}, headers=admin
    ).json
    open_ticket(client, admin)

    # ...which now answers with the receiver's loopback address (DNS rebinding).
    Worker(app, clock=clock, resolver=lambda host, port: ["127.0.0.1"]).run_until_idle()

    assert receiver.requests == []
    [attempt] = attempts(app)
    assert attempt.status_code is None and attempt.error.startswith("refused:") and "127.0.0.1" in attempt.error
    assert [row.status for row in deliveries(app, created["id"])] == ["pending"]


def test_the_connection_goes_to_the_checked_address_with_the_urls_host_header(app, client, admin, register, receiver, clock):
    # hooks.example.test does not exist in DNS: the request can only arrive
    # if the transport connects to the address the guard resolved.
    created = register(f"http://127.0.0.1:{receiver.port}/x", events=["ticket.created"])
    with app.app_context():  # as if registered while the name resolved
        session = get_session()
        session.get(WebhookEndpoint, created["id"]).url = f"http://hooks.example.test:{receiver.port}/x?tenant=7"
        session.commit()
    open_ticket(client, admin)

    Worker(app, clock=clock, resolver=lambda host, port: ["127.0.0.1"]).run_until_idle()

    [received] = receiver.requests
    assert received.headers["host"] == f"hooks.example.test:{receiver.port}"
    Webhook(created["secret"]).verify(received.body, received.headers)


def test_finished_deliveries_are_pruned_after_the_retention(app, client, admin, register, receiver, make_worker):
    created = register(receiver.url, events=["ticket.created"])
    open_ticket(client, admin)
    make_worker().run_until_idle()
    open_ticket(client, admin, email="later@example.com")  # still pending: kept

    with app.app_context():
        removed = delivery.prune(get_session(), older_than=utcnow() + timedelta(seconds=1))

    assert removed == 1
    assert [row.status for row in deliveries(app, created["id"])] == ["pending"]
    assert attempts(app) == []
    assert len(message_ids(app)) == 1
