"""Signed inbound events: a shop's orders and an e-mail tool's messages.

Every rejection (unknown source, bad or stale signature, bad payload) stores
nothing; a repeated webhook-id is answered again without a second effect.
"""

import json
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook

from crm_backend.db import get_session
from crm_backend.inbound import views as inbound_views
from crm_backend.models import AuditEvent, Comment, Customer, InboundReceipt, InboundSource, Order, Ticket, WebhookEvent
from test_webhooks_support import admin, open_ticket, private_app, register  # noqa: F401  (fixtures)

ORDER = {
    "id": "NW-482913",
    "customer": {"email": "Ada@Example.com", "name": "Ada Lovelace"},
    "amount": "59.90",
    "currency": "eur",
    "ordered_at": "2026-11-20T10:15:00+01:00",
    "status": "paid",
}


def signed(secret: str, event: dict | bytes, *, webhook_id: str | None = None, timestamp: float | None = None) -> tuple[bytes, dict]:
    """A body and headers signed the way a sender using the standardwebhooks library would."""
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    moment = datetime.fromtimestamp(timestamp if timestamp is not None else time.time(), tz=timezone.utc)
    signature = Webhook(secret).sign(webhook_id, moment, body.decode())
    return body, {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
        "Content-Type": "application/json",
    }


@pytest.fixture
def add_source(run_cli):
    def add(name: str, *options: str) -> str:
        result = run_cli("inbound", "add-source", name, *options)
        assert result.exit_code == 0, result.output
        return result.output.strip().splitlines()[-1]

    return add


@pytest.fixture
def shop(add_source) -> str:
    return add_source("shop")


@pytest.fixture
def mail(add_source) -> str:
    return add_source("email")


@pytest.fixture
def send(client):
    def send_(source: str, secret: str, event_type: str, data, **signing) -> object:
        body, headers = signed(secret, {"type": event_type, "timestamp": "2026-11-23T10:00:00Z", "data": data}, **signing)
        return client.post(f"/api/v1/inbound/{source}", data=body, headers=headers)

    return send_


def count(app, *models) -> tuple[int, ...]:
    with app.app_context():
        return tuple(get_session().scalar(select(func.count()).select_from(model)) for model in models)


STORED = (Order, InboundReceipt, Customer, Ticket, Comment)


def test_add_source_prints_a_secret_once_and_stores_it_encrypted(app, shop):
    with app.app_context():
        source = get_session().scalars(select(InboundSource)).one()

    assert shop.startswith("whsec_") and Webhook(shop)
    assert (source.name, source.kind) == ("shop", "shop")
    assert shop.removeprefix("whsec_") not in source.secret_encrypted


def test_sources_need_a_known_kind_and_a_unique_name(run_cli, shop):
    assert "give --kind" in run_cli("inbound", "add-source", "erp").output
    assert "already a source" in run_cli("inbound", "add-source", "shop").output
    assert run_cli("inbound", "add-source", "shop-eu", "--kind", "shop").exit_code == 0
    assert "shop-eu\tshop" in run_cli("inbound", "list").output


def test_an_order_is_stored_exactly_with_its_customer_created_by_email(app, send, shop):
    response = send("shop", shop, "order.created", ORDER)

    assert response.status_code == 200, response.json
    assert response.json["status"] == "processed" and response.json["type"] == "order.created"
    with app.app_context():
        order = get_session().get(Order, response.json["order_id"])
        assert order.customer.email == "ada@example.com" and order.customer.name == "Ada Lovelace"
        assert order.amount == Decimal("59.90") and isinstance(order.amount, Decimal)
        assert (order.currency, order.status, order.source, order.external_id) == ("EUR", "paid", "shop", "NW-482913")
        assert order.ordered_at == datetime(2026, 11, 20, 9, 15, tzinfo=timezone.utc)
        assert order.net_amount == Decimal("59.90")


def test_amounts_as_json_numbers_keep_every_digit(app, send, shop):
    body, headers = signed(shop, b'{"type": "order.created", "data": {"id": 7, "customer": {"email": "a@example.com"}, "amount": 1234567.891, "currency": "JPY", "ordered_at": "2026-11-20T10:15:00Z"}}')

    response = app.test_client().post("/api/v1/inbound/shop", data=body, headers=headers)

    with app.app_context():
        order = get_session().get(Order, response.json["order_id"])
        assert order.amount == Decimal("1234567.891") and order.external_id == "7"


def test_an_order_for_a_known_customer_joins_their_history(app, send, shop, add_customers):
    [customer_id] = add_customers(("Ada Lovelace", "ada@example.com"))

    first = send("shop", shop, "order.created", ORDER)
    second = send("shop", shop, "order.created", {**ORDER, "id": "NW-500001", "amount": "12.50"})

    with app.app_context():
        orders = get_session().scalars(select(Order).where(Order.customer_id == customer_id)).all()
    assert first.status_code == second.status_code == 200
    assert sorted(order.amount for order in orders) == [Decimal("12.50"), Decimal("59.90")]
    assert count(app, Customer) == (1,)


def test_a_repeated_webhook_id_is_answered_again_without_a_second_effect(app, client, shop):
    body, headers = signed(shop, {"type": "order.created", "data": ORDER})

    first = client.post("/api/v1/inbound/shop", data=body, headers=headers)
    again = client.post("/api/v1/inbound/shop", data=body, headers=headers)

    assert first.status_code == again.status_code == 200
    assert again.json == {**first.json, "status": "duplicate"}
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(app, Order, InboundReceipt, Customer) == (1, 1, 1)


def test_the_same_order_sent_under_a_new_webhook_id_is_not_stored_twice(app, send, shop):
    first = send("shop", shop, "order.created", ORDER)
    resent = send("shop", shop, "order.created", ORDER)

    assert resent.json["status"] == "processed" and resent.json["order_id"] == first.json["order_id"]
    assert count(app, Order) == (1,)


def test_refunds_set_the_total_refunded_and_repeat_harmlessly(app, send, shop):
    order_id = send("shop", shop, "order.created", ORDER).json["order_id"]

    partial = send("shop", shop, "order.refunded", {"id": "NW-482913", "amount_refunded": "20.00"})
    repeated = send("shop", shop, "order.refunded", {"id": "NW-482913", "amount_refunded": "20.00"})
    with app.app_context():
        after_partial = get_session().get(Order, order_id)
        partial_state = (after_partial.status, after_partial.refunded_amount, after_partial.net_amount)
    full = send("shop", shop, "order.refunded", {"id": "NW-482913"})

    assert partial.status_code == repeated.status_code == full.status_code == 200
    assert partial_state == ("partially_refunded", Decimal("20.00"), Decimal("39.90"))
    with app.app_context():
        order = get_session().get(Order, order_id)
        assert (order.status, order.refunded_amount, order.net_amount) == ("refunded", Decimal("59.90"), Decimal("0"))
        assert order.refunded_at is not None


def test_a_refund_before_its_order_is_409_so_the_sender_retries_and_nothing_is_stored(app, send, shop):
    response = send("shop", shop, "order.refunded", {"id": "NW-999"})

    assert response.status_code == 409 and response.mimetype == "application/problem+json"
    assert count(app, *STORED) == (0, 0, 0, 0, 0)


def test_refunding_more_than_the_order_is_422(app, send, shop):
    send("shop", shop, "order.created", ORDER)

    response = send("shop", shop, "order.refunded", {"id": "NW-482913", "amount_refunded": "60.00"})

    assert response.status_code == 422 and response.json["errors"][0]["field"] == "data.amount_refunded"
    assert count(app, InboundReceipt) == (1,)


def _order_state(app, order_id: int) -> tuple:
    with app.app_context():
        order = get_session().get(Order, order_id)
        return order.status, order.amount, order.refunded_amount


def test_order_updates_move_the_status_forward_and_change_the_amount(app, send, shop):
    order_id = send("shop", shop, "order.created", {**ORDER, "status": "placed"}).json["order_id"]

    paid = send("shop", shop, "order.updated", {"id": "NW-482913", "status": "paid"})
    paid_state = _order_state(app, order_id)
    fulfilled = send("shop", shop, "order.updated", {"id": "NW-482913", "status": "fulfilled", "amount": "64.90"})

    assert paid.status_code == fulfilled.status_code == 200, fulfilled.json
    assert paid.json["order_id"] == fulfilled.json["order_id"] == order_id
    assert paid_state == ("paid", Decimal("59.90"), Decimal("0"))
    assert _order_state(app, order_id) == ("fulfilled", Decimal("64.90"), Decimal("0"))


def test_a_late_order_update_does_not_move_the_status_back(app, send, shop):
    order_id = send("shop", shop, "order.created", {**ORDER, "status": "fulfilled"}).json["order_id"]

    late = send("shop", shop, "order.updated", {"id": "NW-482913", "status": "paid"})

    assert late.status_code == 200
    assert _order_state(app, order_id)[0] == "fulfilled"


def test_the_whole_order_can_be_sent_as_an_update(app, send, shop):
    order_id = send("shop", shop, "order.created", ORDER).json["order_id"]

    response = send("shop", shop, "order.updated", {**ORDER, "status": "fulfilled", "amount": "70.00"})

    assert response.status_code == 200, response.json
    assert _order_state(app, order_id) == ("fulfilled", Decimal("70.00"), Decimal("0"))


def test_an_amount_change_of_a_refunded_order_keeps_its_refund_status_right(app, send, shop):
    order_id = send("shop", shop, "order.created", ORDER).json["order_id"]
    send("shop", shop, "order.refunded", {"id": "NW-482913"})

    raised = send("shop", shop, "order.updated", {"id": "NW-482913", "amount": "80.00", "status": "fulfilled"})
    raised_state = _order_state(app, order_id)
    below_refunds = send("shop", shop, "order.updated", {"id": "NW-482913", "amount": "10.00"})

    assert raised.status_code == 200
    assert raised_state == ("partially_refunded", Decimal("80.00"), Decimal("59.90"))
    assert below_refunds.status_code == 422 and below_refunds.json["errors"][0]["field"] == "data.amount"
    assert _order_state(app, order_id) == raised_state


def test_an_order_update_without_a_change_or_in_another_currency_is_422(app, send, shop):
    send("shop", shop, "order.created", ORDER)

    empty = send("shop", shop, "order.updated", {"id": "NW-482913"})
    currency = send("shop", shop, "order.updated", {"id": "NW-482913", "amount": "10", "currency": "USD"})
    status = send("shop", shop, "order.updated", {"id": "NW-482913", "status": "refunded"})

    assert empty.status_code == currency.status_code == status.status_code == 422
    assert currency.json["errors"][0]["field"] == "data.currency"
    assert status.json["errors"][0]["field"] == "data.status"
    assert count(app, InboundReceipt) == (1,)


def test_an_update_or_cancellation_before_its_order_is_409_and_stores_nothing(app, send, shop):
    updated = send("shop", shop, "order.updated", {"id": "NW-999", "status": "paid"})
    cancelled = send("shop", shop, "order.cancelled", {"id": "NW-999"})

    assert updated.status_code == cancelled.status_code == 409
    assert count(app, *STORED) == (0, 0, 0, 0, 0)


def test_a_cancelled_order_stays_cancelled(app, send, shop):
    order_id = send("shop", shop, "order.created", ORDER).json["order_id"]

    cancelled = send("shop", shop, "order.cancelled", {"id": "NW-482913", "cancelled_at": "2026-11-21T08:00:00Z"})
    again = send("shop", shop, "order.cancelled", {"id": "NW-482913"})
    updated = send("shop", shop, "order.updated", {"id": "NW-482913", "status": "fulfilled", "amount": "99.00"})
    refunded = send("shop", shop, "order.refunded", {"id": "NW-482913"})
    recreated = send("shop", shop, "order.created", ORDER)

    assert [r.status_code for r in (cancelled, again, updated, refunded, recreated)] == [200] * 5
    assert recreated.json["order_id"] == order_id and count(app, Order) == (1,)
    with app.app_context():
        order = get_session().get(Order, order_id)
        assert (order.status, order.amount, order.refunded_amount) == ("cancelled", Decimal("59.90"), Decimal("59.90"))
        assert order.cancelled_at == datetime(2026, 11, 21, 8, 0, tzinfo=timezone.utc)
        actions = [event.action for event in get_session().scalars(select(AuditEvent).where(AuditEvent.entity_type == "order").order_by(AuditEvent.id))]
    # The repeated cancellation and the update of a cancelled order change nothing.
    assert actions == ["order.created", "order.cancelled", "order.refunded"]


def test_a_resent_order_created_changes_nothing(app, send, shop):
    order_id = send("shop", shop, "order.created", ORDER).json["order_id"]

    resent = send("shop", shop, "order.created", {**ORDER, "amount": "1.00", "status": "fulfilled"})

    assert resent.status_code == 200 and resent.json["order_id"] == order_id
    assert _order_state(app, order_id) == ("paid", Decimal("59.90"), Decimal("0"))


def test_a_replay_older_than_five_minutes_is_401_and_stores_nothing(app, send, shop):
    response = send("shop", shop, "order.created", ORDER, timestamp=time.time() - 301)

    assert response.status_code == 401 and response.mimetype == "application/problem+json"
    assert "5 minutes" in response.json["detail"]
    assert count(app, *STORED) == (0, 0, 0, 0, 0)


def test_a_captured_request_replayed_later_is_refused(app, client, shop, monkeypatch):
    body, headers = signed(shop, {"type": "order.created", "data": ORDER})
    # An attacker keeps the request and sends it ten minutes later (with a new id
    # they cannot sign, so the same headers).
    monkeypatch.setattr(inbound_views, "clock", lambda: time.time() + 600)

    response = client.post("/api/v1/inbound/shop", data=body, headers=headers)

    assert response.status_code == 401
    assert count(app, *STORED) == (0, 0, 0, 0, 0)


def test_timestamps_from_the_future_are_refused(app, send, shop):
    assert send("shop", shop, "order.created", ORDER, timestamp=time.time() + 400).status_code == 401


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, headers: (body.replace(b"59.90", b"0.01"), headers),
        lambda body, headers: (body, {**headers, "webhook-id": headers["webhook-id"] + "x"}),
        lambda body, headers: (body, {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) - 1)}),
        lambda body, headers: (body, {**headers, "webhook-signature": "v1," + "A" * 44}),
        lambda body, headers: (body, {**headers, "webhook-signature": "v2," + headers["webhook-signature"][3:]}),
        lambda body, headers: (body, {key: value for key, value in headers.items() if key != "webhook-signature"}),
        lambda body, headers: (body, {key: value for key, value in headers.items() if key != "webhook-id"}),
        lambda body, headers: (body, {**headers, "webhook-signature": "garbage"}),
    ],
    ids=["body", "id", "timestamp", "forged", "version", "no-signature", "no-id", "garbage"],
)
def test_tampered_or_unsigned_requests_are_401_and_store_nothing(app, client, shop, tamper):
    body, headers = tamper(*signed(shop, {"type": "order.created", "data": ORDER}))

    response = client.post("/api/v1/inbound/shop", data=body, headers=headers)

    assert response.status_code == 401 and response.mimetype == "application/problem+json"
    assert count(app, *STORED) == (0, 0, 0, 0, 0)


def test_another_sources_secret_does_not_sign_for_this_source(app, send, shop, mail):
    response = send("shop", mail, "order.created", ORDER)

    assert response.status_code == 401


def test_an_unknown_source_is_404_and_stores_nothing(app, send, shop):
    response = send("erp", shop, "order.created", ORDER)

    assert response.status_code == 404 and response.mimetype == "application/problem+json"
    assert count(app, *STORED) == (0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    "event, field",
    [
        ({"type": "order.created", "data": {**ORDER, "amount": "12,50"}}, "data.amount"),
        ({"type": "order.created", "data": {**ORDER, "amount": "-1"}}, "data.amount"),
        ({"type": "order.created", "data": {**ORDER, "amount": "1.2345"}}, "data.amount"),
        ({"type": "order.created", "data": {**ORDER, "currency": "euro"}}, "data.currency"),
        ({"type": "order.created", "data": {**ORDER, "ordered_at": "2026-11-20T10:15:00"}}, "data.ordered_at"),
        ({"type": "order.created", "data": {**ORDER, "customer": {"email": "not-an-email"}}}, "data.customer.email"),
        ({"type": "order.created", "data": {key: value for key, value in ORDER.items() if key != "id"}}, "data.id"),
        ({"type": "order.teleported", "data": ORDER}, "type"),
        ({"data": ORDER}, "type"),
        ({"type": "order.created"}, "data"),
        ({"type": "order.created", "data": "NW-1"}, "data"),
    ],
)
def test_bad_payloads_are_422_naming_the_field_and_store_nothing(app, client, shop, event, field):
    body, headers = signed(shop, event)

    response = client.post("/api/v1/inbound/shop", data=body, headers=headers)

    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert field in [error["field"] for error in response.json["errors"]]
    assert count(app, *STORED) == (0, 0, 0, 0, 0)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"type": "order.created", "data": {"amount": NaN}}', b""])
def test_a_body_that_is_not_a_json_object_is_422(app, client, shop, body):
    response = client.post("/api/v1/inbound/shop", data=body, headers=signed(shop, body)[1])

    assert response.status_code == 422
    assert count(app, InboundReceipt) == (0,)


def test_a_rotated_source_secret_keeps_the_old_one_valid_for_the_grace_period(app, client, run_cli, shop):
    result = run_cli("inbound", "rotate-secret", "shop", "--keep-previous-hours", "1")
    new_secret = result.output.strip().splitlines()[-1]

    with_old = client.post("/api/v1/inbound/shop", **_request(shop, ORDER))
    with_new = client.post("/api/v1/inbound/shop", **_request(new_secret, {**ORDER, "id": "NW-2"}))

    assert new_secret != shop and with_old.status_code == with_new.status_code == 200


def test_a_removed_source_is_404(client, run_cli, shop):
    run_cli("inbound", "remove-source", "shop")

    assert client.post("/api/v1/inbound/shop", **_request(shop, ORDER)).status_code == 404


def _request(secret: str, order: dict) -> dict:
    body, headers = signed(secret, {"type": "order.created", "data": order})
    return {"data": body, "headers": headers}


# The e-mail tool


def test_a_reply_by_the_tickets_customer_becomes_a_public_comment(app, client, admin, send, mail):
    ticket = open_ticket(client, admin, email="ada@example.com")

    response = send("email", mail, "message.received", {"from": "ADA@example.com", "name": "Ada", "subject": f"Re: {ticket['number']} Kettle leaks", "text": "It still leaks."})

    assert response.status_code == 200
    assert response.json["ticket"] == ticket["number"] and response.json["comment_id"] is not None
    comments = client.get(f"/api/v1/tickets/{ticket['number']}/comments", headers=admin).json["items"]
    assert [(c["body"], c["author_type"], c["public"], c["author_name"]) for c in comments] == [("It still leaks.", "customer", True, "Ada")]


def test_the_ticket_field_wins_over_the_subject(client, admin, send, mail):
    ticket = open_ticket(client, admin, email="ada@example.com")

    response = send("email", mail, "message.received", {"from": "ada@example.com", "subject": "Hello", "text": "More details", "ticket": str(ticket["id"])})

    assert response.json["ticket"] == ticket["number"] and response.json["comment_id"] is not None


def test_mail_without_a_ticket_reference_opens_an_email_ticket(app, client, admin, send, mail):
    response = send("email", mail, "message.received", {"from": "new.person@example.com", "name": "New Person", "subject": "Fwd: Where is my order?", "text": "It has been two weeks."})

    ticket = client.get(f"/api/v1/tickets/{response.json['ticket']}", headers=admin).json
    assert response.json["comment_id"] is None
    assert (ticket["channel"], ticket["subject"], ticket["description"], ticket["customer_email"]) == (
        "email", "Where is my order?", "It has been two weeks.", "new.person@example.com",
    )


def test_mail_from_someone_else_about_a_ticket_opens_a_new_one_instead(client, admin, send, mail):
    ticket = open_ticket(client, admin, email="ada@example.com")

    response = send("email", mail, "message.received", {"from": "mallory@example.com", "subject": f"Re: {ticket['number']}", "text": "Cancel everything"})

    assert response.json["ticket"] != ticket["number"]
    assert client.get(f"/api/v1/tickets/{ticket['number']}/comments", headers=admin).json["items"] == []


def test_a_reply_to_a_closed_ticket_opens_a_new_one(client, admin, send, mail):
    ticket = open_ticket(client, admin, email="ada@example.com")
    client.patch(f"/api/v1/tickets/{ticket['number']}", json={"status": "solved"}, headers=admin)
    client.patch(f"/api/v1/tickets/{ticket['number']}", json={"status": "closed"}, headers=admin)

    response = send("email", mail, "message.received", {"from": "ada@example.com", "subject": f"Re: {ticket['number']}", "text": "It broke again"})

    assert response.status_code == 200 and response.json["ticket"] != ticket["number"]


def test_a_message_without_text_is_422(app, send, mail):
    response = send("email", mail, "message.received", {"from": "ada@example.com", "subject": "hi"})

    assert response.status_code == 422 and response.json["errors"][0]["field"] == "data.text"
    assert count(app, *STORED) == (0, 0, 0, 0, 0)


def test_a_shop_event_sent_to_the_email_source_is_422(send, mail):
    assert send("email", mail, "order.created", ORDER).status_code == 422


def test_changes_made_by_inbound_events_are_audited_as_the_source(app, send, shop):
    send("shop", shop, "order.created", ORDER)

    with app.app_context():
        actors = {(event.action, event.actor_type, event.actor_name) for event in get_session().scalars(select(AuditEvent))}

    assert actors == {("customer.created", "inbound", "inbound source shop"), ("order.created", "inbound", "inbound source shop")}


def test_inbound_changes_go_out_as_webhooks(app, send, mail, register):
    register("http://127.0.0.1:9/hook", events=["ticket.created"])

    send("email", mail, "message.received", {"from": "ada@example.com", "subject": "Broken kettle", "text": "Switch snapped."})

    with app.app_context():
        [event] = get_session().scalars(select(WebhookEvent)).all()
    payload = json.loads(event.payload)
    assert payload["type"] == "ticket.created" and payload["data"]["channel"] == "email"


def test_the_same_event_arriving_twice_at_once_has_one_effect(app, client, shop, monkeypatch):
    body, headers = signed(shop, {"type": "order.created", "data": ORDER})
    first = client.post("/api/v1/inbound/shop", data=body, headers=headers)
    # The second copy passed its duplicate check before the first committed:
    # the receipt's unique key catches it at commit.
    real_find = inbound_views._find_receipt
    calls = []

    def find_nothing_the_first_time(*args):
        calls.append(args)
        return None if len(calls) == 1 else real_find(*args)

    monkeypatch.setattr(inbound_views, "_find_receipt", find_nothing_the_first_time)

    second = client.post("/api/v1/inbound/shop", data=body, headers=headers)

    assert len(calls) == 2
    assert second.status_code == 200 and second.json == {**first.json, "status": "duplicate"}
    assert count(app, Order, InboundReceipt) == (1, 1)
