"""Webhook endpoints over HTTP: register, list, change, rotate, delete; scopes; the SSRF guard at registration."""

import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook

from crm_backend.db import get_session
from crm_backend.models import AuditEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from test_webhooks_support import (  # noqa: F401  (fixtures)
    EVENTS,
    WEBHOOKS,
    admin,
    clock,
    deliveries,
    make_worker,
    open_ticket,
    private_app,
    receiver,
    register,
    strict,
)


def count(app, model) -> int:
    with app.app_context():
        return get_session().scalar(select(func.count()).select_from(model))


def test_registering_shows_a_standard_webhooks_secret_once(client, admin, register):
    created = register("http://127.0.0.1:9/hook", description="warehouse sync")

    listed = client.get(WEBHOOKS, headers=admin).json["items"]
    fetched = client.get(f"{WEBHOOKS}/{created['id']}", headers=admin).json

    assert created["secret"].startswith("whsec_")
    Webhook(created["secret"])  # the library accepts it
    assert created["events"] == EVENTS and created["enabled"] is True and created["status"] == "active"
    assert created["description"] == "warehouse sync"
    assert [item["id"] for item in listed] == [created["id"]]
    assert "secret" not in listed[0] and "secret" not in fetched


def test_the_secret_is_stored_encrypted_not_in_plain_text(app, register):
    created = register("http://127.0.0.1:9/hook")

    with app.app_context():
        stored = get_session().get(WebhookEndpoint, created["id"]).secret_encrypted
    secret_part = created["secret"].removeprefix("whsec_")

    assert secret_part not in stored and created["secret"] not in stored


def test_registration_is_audited_without_the_secret(app, register):
    created = register("http://127.0.0.1:9/hook")

    with app.app_context():
        [event] = get_session().scalars(select(AuditEvent).where(AuditEvent.entity_type == "webhook")).all()

    assert event.action == "webhook.created" and event.entity_id == created["id"]
    assert created["secret"] not in str(event.after)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"url": "http://127.0.0.1:9/hook", "events": ["ticket.deleted"]}, "events.0"),
        ({"url": "http://127.0.0.1:9/hook", "events": []}, "events"),
        ({"events": ["ticket.created"]}, "url"),
        ({"url": "http://127.0.0.1:9/hook", "events": ["ticket.created"], "secret": "whsec_mine"}, "secret"),
    ],
)
def test_bad_registrations_are_422_and_store_nothing(app, client, admin, private_app, body, field):
    response = client.post(WEBHOOKS, json=body, headers=admin)

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert field in [error["field"] for error in response.json["errors"]]
    assert count(app, WebhookEndpoint) == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/api/v1/api-keys",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://2130706433/hook",
        "http://100.64.0.1/hook",
        "file:///etc/passwd",
        "gopher://example.com/",
        "ftp://example.com/hook",
        "http://user:pass@example.com/hook",
        "http:///no-host",
    ],
)
def test_private_loopback_link_local_and_non_http_targets_are_refused(app, client, admin, strict, url):
    response = client.post(WEBHOOKS, json={"url": url, "events": ["ticket.created"]}, headers=admin)

    assert response.status_code == 422, response.json
    assert response.json["errors"][0]["field"] == "url"
    assert count(app, WebhookEndpoint) == 0


def test_a_name_that_resolves_to_any_private_address_is_refused(app, client, admin, strict):
    # Public and private answers mixed: an attacker's DNS would do that.
    app.extensions["crm_webhook_resolver"] = lambda host, port: ["93.184.216.34", "10.0.0.7"]

    response = client.post(WEBHOOKS, json={"url": "https://hooks.example.com/x", "events": ["ticket.created"]}, headers=admin)

    assert response.status_code == 422
    assert "10.0.0.7" in response.json["errors"][0]["message"]


def test_a_public_https_target_is_accepted(app, client, admin):
    app.extensions["crm_webhook_resolver"] = lambda host, port: ["93.184.216.34", "2606:2800:220:1::1"]

    response = client.post(WEBHOOKS, json={"url": "https://hooks.example.com/x", "events": ["ticket.created"]}, headers=admin)

    assert response.status_code == 201


def test_private_targets_are_allowed_when_the_server_says_so(client, admin, private_app):
    response = client.post(WEBHOOKS, json={"url": "http://127.0.0.1:9/hook", "events": ["ticket.created"]}, headers=admin)

    assert response.status_code == 201


def test_an_unresolvable_host_is_refused(client, admin):
    response = client.post(WEBHOOKS, json={"url": "https://no-such-host.invalid/x", "events": ["ticket.created"]}, headers=admin)

    assert response.status_code == 422
    assert "cannot be resolved" in response.json["errors"][0]["message"]


@pytest.mark.parametrize(
    "scopes, method, path, status",
    [
        (("tickets:*", "customers:*"), "get", WEBHOOKS, 403),
        (("webhooks:read",), "post", WEBHOOKS, 403),
        (("webhooks:read",), "get", WEBHOOKS, 200),
        (("webhooks:write",), "post", WEBHOOKS, 201),
        (("webhooks:*",), "post", WEBHOOKS, 201),
    ],
)
def test_webhooks_need_their_own_scopes(client, bearer, private_app, scopes, method, path, status):
    body = {"url": "http://127.0.0.1:9/hook", "events": ["ticket.created"]} if method == "post" else None

    response = getattr(client, method)(path, json=body, headers=bearer(*scopes))

    assert response.status_code == status


def test_patch_changes_events_and_disables_and_enables(client, admin, register):
    created = register("http://127.0.0.1:9/hook")
    url = f"{WEBHOOKS}/{created['id']}"

    disabled = client.patch(url, json={"enabled": False, "events": ["ticket.created"]}, headers=admin)
    enabled = client.patch(url, json={"enabled": True}, headers=admin)

    assert disabled.status_code == 200
    assert disabled.json["status"] == "disabled" and disabled.json["events"] == ["ticket.created"]
    assert enabled.json["status"] == "active" and enabled.json["enabled"] is True


def test_patching_the_url_to_a_private_address_is_refused_without_the_setting(app, client, admin, register):
    created = register("http://127.0.0.1:9/hook")
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False

    response = client.patch(f"{WEBHOOKS}/{created['id']}", json={"url": "http://10.0.0.1/hook"}, headers=admin)

    assert response.status_code == 422
    assert client.get(f"{WEBHOOKS}/{created['id']}", headers=admin).json["url"] == "http://127.0.0.1:9/hook"


def test_unknown_endpoints_and_deliveries_are_404(client, admin):
    for method, path in [
        ("get", f"{WEBHOOKS}/99"),
        ("patch", f"{WEBHOOKS}/99"),
        ("delete", f"{WEBHOOKS}/99"),
        ("post", f"{WEBHOOKS}/99/rotate-secret"),
        ("get", f"{WEBHOOKS}/99/deliveries"),
        ("get", "/api/v1/deliveries/99"),
        ("post", "/api/v1/deliveries/99/redeliver"),
    ]:
        response = getattr(client, method)(path, json={} if method in ("patch", "post") else None, headers=admin)
        assert response.status_code == 404, (method, path)
        assert response.mimetype == "application/problem+json"


def test_deleting_an_endpoint_removes_its_deliveries_and_attempts(app, client, admin, register, receiver, make_worker):
    created = register(receiver.url)
    open_ticket(client, admin)
    make_worker().run_until_idle()
    assert count(app, WebhookAttempt) > 0

    response = client.delete(f"{WEBHOOKS}/{created['id']}", headers=admin)

    assert response.status_code == 204
    assert count(app, WebhookEndpoint) == count(app, WebhookDelivery) == count(app, WebhookAttempt) == 0
    assert client.get(f"{WEBHOOKS}/{created['id']}", headers=admin).status_code == 404


def test_rotation_returns_a_new_secret_and_both_sign_until_the_old_expires(client, admin, register, receiver, make_worker, clock):
    created = register(receiver.url, events=["ticket.created"])

    rotated = client.post(f"{WEBHOOKS}/{created['id']}/rotate-secret", json={"keep_previous_seconds": 3600}, headers=admin)
    open_ticket(client, admin)
    make_worker().run_until_idle()
    clock.advance(3601)
    open_ticket(client, admin, email="grace@example.com")
    make_worker().run_until_idle()

    assert rotated.status_code == 200
    new_secret = rotated.json["secret"]
    assert new_secret != created["secret"] and rotated.json["previous_secret_expires_at"] is not None
    during, after = receiver.requests
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    Webhook(created["secret"]).verify(during.body, during.headers)
    Webhook(new_secret).verify(during.body, during.headers)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    Webhook(new_secret).verify(after.body, after.headers)
    with pytest.raises(Exception):
        Webhook(created["secret"]).verify(after.body, after.headers)


def test_rotation_with_no_overlap_drops_the_old_secret_at_once(client, admin, register):
    created = register("http://127.0.0.1:9/hook")

    rotated = client.post(f"{WEBHOOKS}/{created['id']}/rotate-secret", json={"keep_previous_seconds": 0}, headers=admin)

    assert rotated.status_code == 200 and rotated.json["previous_secret_expires_at"] is None


def test_deliveries_are_listed_newest_first_with_attempts_in_the_detail(client, admin, register, receiver, make_worker):
    created = register(receiver.url, events=["ticket.created", "ticket.updated"])
    ticket = open_ticket(client, admin)
    client.patch(f"/api/v1/tickets/{ticket['number']}", json={"priority": "high"}, headers=admin)
    make_worker().run_until_idle()

    page = client.get(f"{WEBHOOKS}/{created['id']}/deliveries", headers=admin).json
    only_created = client.get(f"{WEBHOOKS}/{created['id']}/deliveries?event_type=ticket.created", headers=admin).json
    detail = client.get(f"/api/v1/deliveries/{page['items'][-1]['id']}", headers=admin).json

    assert [item["event_type"] for item in page["items"]] == ["ticket.updated", "ticket.created"]
    assert {item["status"] for item in page["items"]} == {"delivered"}
    assert [item["event_type"] for item in only_created["items"]] == ["ticket.created"]
    assert detail["payload"]["data"]["number"] == ticket["number"]
    assert detail["message_id"] == receiver.requests[0].webhook_id
    [attempt] = detail["attempts"]
    assert attempt["status_code"] == 204 and attempt["duration_ms"] >= 0 and attempt["error"] is None


def test_deliveries_page_with_a_cursor(client, admin, register, receiver, make_worker):
    created = register(receiver.url, events=["ticket.created"])
    for n in range(3):
        open_ticket(client, admin, email=f"c{n}@example.com")

    first = client.get(f"{WEBHOOKS}/{created['id']}/deliveries?limit=2", headers=admin).json
    second = client.get(f"{WEBHOOKS}/{created['id']}/deliveries?limit=2&cursor={first['next_cursor']}", headers=admin).json

    assert len(first["items"]) == 2 and len(second["items"]) == 1 and second["next_cursor"] is None
    assert {item["status"] for item in first["items"] + second["items"]} == {"pending"}


def test_redeliver_queues_the_same_message_again(app, client, admin, register, receiver, make_worker):
    created = register(receiver.url, events=["ticket.created"])
    open_ticket(client, admin)
    make_worker().run_until_idle()
    [delivered] = deliveries(app, created["id"])

    response = client.post(f"/api/v1/deliveries/{delivered.id}/redeliver", headers=admin)
    make_worker().run_until_idle()

    assert response.status_code == 202 and response.json["status"] == "pending"
    first, again = receiver.requests
    assert first.webhook_id == again.webhook_id and first.body == again.body
    [after] = deliveries(app, created["id"])
    assert after.status == "delivered" and after.attempt_count == 2


def test_redeliver_is_409_while_the_delivery_is_being_sent(app, client, admin, register, clock):
    register("http://127.0.0.1:9/hook", events=["ticket.created"])
    open_ticket(client, admin)
    from crm_backend.webhooks.worker import Worker

    [claimed] = Worker(app, clock=clock).claim(1)  # leased, not yet recorded

    response = client.post(f"/api/v1/deliveries/{claimed.delivery_id}/redeliver", headers=admin)

    assert response.status_code == 409
