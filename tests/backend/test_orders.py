"""Orders in the API: a customer's orders with their fulfilment, found by the
number as customers write it, fed by the shop's order events, the CSV import
and the demo seed; guarded so that nobody learns someone else's order."""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import select

from crm_backend import migrate, seed
from crm_backend.db import get_engine, get_session
from crm_backend.imports import orders as order_import
from crm_backend.models import AuditEvent, Customer, Order
from crm_backend.orders import service
from crm_backend.orders.numbers import normalise_order_number
from test_inbound import ORDER, add_source, send, shop  # noqa: F401  (fixtures)

ORDERS = "/api/v1/orders"
NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
def reader(bearer):
    return bearer("orders:read")


def add_order(app, email: str, external_id: str, *, days_ago: float = 1, status: str = "paid", source: str = "shop", **fields) -> int:
    with app.app_context():
        session = get_session()
        customer = session.scalars(select(Customer).where(Customer.email == email)).one_or_none()
        if customer is None:
            customer = Customer(name=email.split("@")[0], email=email)
        order = Order(
            customer=customer,
            source=source,
            external_id=external_id,
            number=normalise_order_number(external_id),
            amount=Decimal("64.90"),
            refunded_amount=Decimal("0"),
            currency="GBP",
            status=status,
            ordered_at=NOW - timedelta(days=days_ago),
            **fields,
        )
        session.add(order)
        session.commit()
        return order.id


def stored(app, number: str) -> Order:
    with app.app_context():
        order = get_session().scalars(select(Order).where(Order.number == number)).one()
        get_session().expunge(order)
        return order


# --- order numbers -----------------------------------------------------------


@pytest.mark.parametrize(
    "written", ["NW-100234", "nw100234", "NW 100234", "nw-100234", "Nw_100234", "#100234", "# 100234", "100234", " NW-100234 ", "nw-#100234"]
)
def test_every_way_customers_write_an_order_number_gives_the_one_canonical_form(written):
    assert normalise_order_number(written) == "NW-100234"


@pytest.mark.parametrize(
    "written", ["", "NW-", "NW-12", "1234567890123", "NW-10023a", "order 100234", "AB-100234", "100 234", "١٠٠٢٣٤", "NW--#-100234x", "x" * 500]
)
def test_anything_else_is_not_an_order_number_and_never_a_guess(written):
    assert normalise_order_number(written) is None


def test_leading_zeros_are_kept_as_written():
    assert normalise_order_number("#0042") == "NW-0042"


# --- GET /orders/{number} ------------------------------------------------------


def test_one_order_by_its_number_in_any_form_with_its_fulfilment_and_delivery_state(app, client, reader):
    add_order(
        app, "ada@example.com", "NW-100234", status="fulfilled",
        shipped_at=NOW - timedelta(days=1), carrier="DPD", tracking_number="15501234567890",
        tracking_url="https://track.dpd.co.uk/parcels/15501234567890", estimated_delivery=date.today() + timedelta(days=1),
    )

    for written in ("NW-100234", "nw100234", "%23100234", "100234"):
        response = client.get(f"{ORDERS}/{written}", headers=reader)
        assert response.status_code == 200, written
        order = response.json
        assert order["number"] == "NW-100234"
        assert order["customer_email"] == "ada@example.com"
        assert (order["amount"], order["currency"], order["refunded_amount"]) == ("64.90", "GBP", "0.00")
        assert (order["carrier"], order["tracking_number"]) == ("DPD", "15501234567890")
        assert order["tracking_url"] == "https://track.dpd.co.uk/parcels/15501234567890"
        assert order["estimated_delivery"] == (date.today() + timedelta(days=1)).isoformat()
        assert order["delivery_state"] == "shipped" and order["delivery_overdue"] is False
        assert order["delivered_at"] is None and order["shipped_at"].startswith((NOW - timedelta(days=1)).date().isoformat())


def test_an_unknown_or_malformed_number_is_a_404_problem_saying_what_a_number_looks_like(client, reader):
    for reference in ("NW-999999", "not-a-number", "12", "x" * 300):
        response = client.get(f"{ORDERS}/{reference}", headers=reader)
        assert response.status_code == 404
        assert response.content_type == "application/problem+json"
        assert "NW-100234" in response.json["detail"]


def test_with_the_customers_email_only_their_order_is_found_and_a_wrong_email_looks_like_no_order(app, client, reader):
    add_order(app, "ada@example.com", "NW-100234")

    right = client.get(f"{ORDERS}/NW-100234?customer_email=ADA@example.com", headers=reader)
    wrong = client.get(f"{ORDERS}/NW-100234?customer_email=mallory@example.com", headers=reader)
    nobody = client.get(f"{ORDERS}/NW-999999?customer_email=mallory@example.com", headers=reader)

    assert right.status_code == 200 and right.json["number"] == "NW-100234"
    # A guesser with someone else's number learns nothing: the same answer as for a number nobody has.
    assert wrong.status_code == nobody.status_code == 404
    assert wrong.json == nobody.json


def test_the_same_number_from_two_sources_answers_the_latest_and_the_customers_own(app, client, reader):
    add_order(app, "ada@example.com", "NW-100234", days_ago=30, source="import")
    add_order(app, "grace@example.com", "NW-100234", days_ago=2, source="shop")

    latest = client.get(f"{ORDERS}/NW-100234", headers=reader).json
    adas = client.get(f"{ORDERS}/NW-100234?customer_email=ada@example.com", headers=reader).json

    assert (latest["customer_email"], latest["source"]) == ("grace@example.com", "shop")
    assert (adas["customer_email"], adas["source"]) == ("ada@example.com", "import")


def test_reading_orders_needs_the_orders_read_scope(app, client, bearer):
    add_order(app, "ada@example.com", "NW-100234")

    assert client.get(f"{ORDERS}/NW-100234").status_code == 401
    assert client.get(f"{ORDERS}/NW-100234", headers=bearer("tickets:read", "customers:read")).status_code == 403
    assert client.get(ORDERS, headers=bearer("tickets:read")).status_code == 403
    assert client.get(ORDERS, headers=bearer("admin")).status_code == 200


def test_unknown_query_parameters_and_bad_values_are_422(client, reader):
    assert client.get(f"{ORDERS}/NW-100234?email=ada@example.com", headers=reader).status_code == 422
    assert client.get(f"{ORDERS}?status=shipped", headers=reader).status_code == 422
    assert client.get(f"{ORDERS}?status=", headers=reader).status_code == 422
    assert client.get(f"{ORDERS}?limit=0", headers=reader).status_code == 422
    assert client.get(f"{ORDERS}?limit=101", headers=reader).status_code == 422
    for cursor in ("nonsense", "b3JkZXI6MTow", "after:5", "b3JkZXI6OTk5OTk5OTk5OTk5OTk5OTk5OTk5OjE"):
        response = client.get(f"{ORDERS}?cursor={cursor}", headers=reader)
        assert response.status_code == 422, cursor
        assert response.json["errors"][0]["field"] == "cursor"


# --- delivery state ------------------------------------------------------------


@pytest.mark.parametrize(
    "status, fields, state",
    [
        ("placed", {}, "placed"),
        ("paid", {}, "preparing"),
        ("partially_refunded", {}, "preparing"),
        ("fulfilled", {}, "shipped"),
        ("paid", {"shipped_at": NOW}, "shipped"),
        ("fulfilled", {"shipped_at": NOW, "delivered_at": NOW}, "delivered"),
        ("partially_refunded", {"shipped_at": NOW, "delivered_at": NOW}, "delivered"),
        ("refunded", {"shipped_at": NOW, "delivered_at": NOW}, "refunded"),
        ("cancelled", {"shipped_at": NOW}, "cancelled"),
    ],
)
def test_the_delivery_state_is_one_of_a_small_set_in_order_of_precedence(status, fields, state):
    order = Order(status=status, **fields)
    assert service.delivery_state(order) == state
    assert state in service.DELIVERY_STATES


def test_a_shipped_order_past_its_estimated_day_is_overdue_and_a_delivered_one_never():
    today = date(2026, 11, 23)
    late = Order(status="fulfilled", shipped_at=NOW, estimated_delivery=date(2026, 11, 22))
    due_today = Order(status="fulfilled", shipped_at=NOW, estimated_delivery=today)
    delivered = Order(status="fulfilled", shipped_at=NOW, delivered_at=NOW, estimated_delivery=date(2026, 11, 1))

    assert service.delivery_overdue(late, today) is True
    assert service.delivery_overdue(due_today, today) is False
    assert service.delivery_overdue(delivered, today) is False


# --- GET /orders -----------------------------------------------------------------


def test_a_customers_orders_newest_first_a_page_at_a_time(app, client, reader):
    for index, days_ago in enumerate([5, 1, 30, 1, 12]):
        add_order(app, "ada@example.com", f"NW-10000{index}", days_ago=days_ago)
    add_order(app, "grace@example.com", "NW-200000", days_ago=0.5)

    seen, cursor = [], None
    while True:
        query = f"{ORDERS}?customer_email=Ada@Example.com&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(query, headers=reader).json
        seen += [order["number"] for order in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    # The two ordered at the same moment come newest-stored first; nobody else's order is there.
    assert seen == ["NW-100003", "NW-100001", "NW-100000", "NW-100004", "NW-100002"]


def test_orders_filter_by_one_status_or_several(app, client, reader):
    add_order(app, "ada@example.com", "NW-100001", status="paid")
    add_order(app, "ada@example.com", "NW-100002", status="fulfilled")
    add_order(app, "ada@example.com", "NW-100003", status="cancelled")

    paid = client.get(f"{ORDERS}?status=paid", headers=reader).json["items"]
    some = client.get(f"{ORDERS}?customer_email=ada@example.com&status=paid,cancelled", headers=reader).json["items"]

    assert [order["number"] for order in paid] == ["NW-100001"]
    assert sorted(order["number"] for order in some) == ["NW-100001", "NW-100003"]


def test_an_unknown_customer_has_no_orders(app, client, reader):
    add_order(app, "ada@example.com", "NW-100001")

    assert client.get(f"{ORDERS}?customer_email=nobody@example.com", headers=reader).json == {"items": [], "next_cursor": None}


# --- inbound events ----------------------------------------------------------------


def test_order_created_keeps_the_number_the_shop_sends_or_takes_it_from_the_id(app, send, shop):
    assert send("shop", shop, "order.created", ORDER).status_code == 200
    explicit = {**ORDER, "id": "gid-5531", "number": "#100777"}
    assert send("shop", shop, "order.created", explicit).status_code == 200
    internal = {**ORDER, "id": "5531234567890123"}
    assert send("shop", shop, "order.created", internal).status_code == 200

    with app.app_context():
        numbers = dict(get_session().execute(select(Order.external_id, Order.number)).tuples().all())
    assert numbers == {"NW-482913": "NW-482913", "gid-5531": "NW-100777", "5531234567890123": None}


def test_order_shipped_then_delivered_moves_the_order_along_and_is_audited(app, client, reader, send, shop):
    send("shop", shop, "order.created", ORDER)
    shipped = send(
        "shop", shop, "order.shipped",
        {"id": "NW-482913", "shipped_at": "2026-11-21T08:00:00Z", "carrier": " DPD ", "tracking_number": "15501234567890",
         "tracking_url": "https://track.dpd.co.uk/parcels/15501234567890", "estimated_delivery": "2026-11-24"},
    )
    in_transit = client.get(f"{ORDERS}/NW-482913", headers=reader).json
    delivered = send("shop", shop, "order.delivered", {"id": "NW-482913", "delivered_at": "2026-11-23T11:30:00Z"})
    arrived = client.get(f"{ORDERS}/NW-482913", headers=reader).json

    assert shipped.status_code == 200 and delivered.status_code == 200
    assert (in_transit["status"], in_transit["delivery_state"], in_transit["carrier"]) == ("fulfilled", "shipped", "DPD")
    assert in_transit["estimated_delivery"] == "2026-11-24"
    assert (arrived["delivery_state"], arrived["delivered_at"]) == ("delivered", "2026-11-23T11:30:00+00:00")
    with app.app_context():
        actions = get_session().scalars(select(AuditEvent.action).where(AuditEvent.entity_type == "order").order_by(AuditEvent.id)).all()
        shipped_audit = get_session().scalars(select(AuditEvent).where(AuditEvent.action == "order.shipped")).one()
    assert actions == ["order.created", "order.shipped", "order.delivered"]
    assert shipped_audit.after["tracking_number"] == "15501234567890" and shipped_audit.after["estimated_delivery"] == "2026-11-24"


def test_order_shipped_without_a_time_is_shipped_now_and_sent_again_keeps_the_first_time(app, send, shop):
    send("shop", shop, "order.created", ORDER)
    send("shop", shop, "order.shipped", {"id": "NW-482913", "carrier": "Royal Mail"})
    first = stored(app, "NW-482913").shipped_at
    send("shop", shop, "order.shipped", {"id": "NW-482913", "tracking_number": "JB123456789GB"})
    order = stored(app, "NW-482913")

    assert abs(first - datetime.now(timezone.utc)) < timedelta(minutes=1)
    assert order.shipped_at == first
    assert (order.carrier, order.tracking_number) == ("Royal Mail", "JB123456789GB")


def test_order_updated_carries_fulfilment_and_the_old_events_still_work(app, send, shop):
    send("shop", shop, "order.created", {**ORDER, "status": "placed"})
    old_style = send("shop", shop, "order.updated", {"id": "NW-482913", "status": "paid"})
    new_style = send(
        "shop", shop, "order.updated",
        {"id": "NW-482913", "carrier": "Evri", "tracking_number": "H01HYA0012345678", "shipped_at": "2026-11-22T09:00:00Z"},
    )
    order = stored(app, "NW-482913")

    assert old_style.status_code == new_style.status_code == 200
    assert (order.status, order.carrier, order.tracking_number) == ("fulfilled", "Evri", "H01HYA0012345678")


def test_fulfilment_of_a_cancelled_order_changes_nothing(app, send, shop):
    send("shop", shop, "order.created", ORDER)
    send("shop", shop, "order.cancelled", {"id": "NW-482913"})

    assert send("shop", shop, "order.shipped", {"id": "NW-482913", "carrier": "DPD"}).status_code == 200
    assert send("shop", shop, "order.delivered", {"id": "NW-482913"}).status_code == 200
    order = stored(app, "NW-482913")
    assert (order.status, order.carrier, order.shipped_at, order.delivered_at) == ("cancelled", None, None, None)


def test_shipping_an_order_not_known_yet_is_a_conflict_the_sender_retries(send, shop):
    response = send("shop", shop, "order.shipped", {"id": "NW-482913", "carrier": "DPD"})

    assert response.status_code == 409


@pytest.mark.parametrize(
    "data, field",
    [
        ({"tracking_url": "javascript:alert(document.cookie)"}, "tracking_url"),
        ({"tracking_url": "data:text/html,<script>alert(1)</script>"}, "tracking_url"),
        ({"tracking_url": "https://localhost/track"}, "tracking_url"),
        ({"tracking_url": "https://track.example.com/" + "x" * 2000}, "tracking_url"),
        ({"carrier": "DPD\nInjected: header"}, "carrier"),
        ({"carrier": "   "}, "carrier"),
        ({"tracking_number": "1" * 65}, "tracking_number"),
        ({"estimated_delivery": "next tuesday"}, "estimated_delivery"),
        ({"shipped_at": "2026-11-21T08:00:00"}, "shipped_at"),  # no offset: ambiguous
    ],
)
def test_bad_fulfilment_values_are_422_naming_the_field_and_store_nothing(app, send, shop, data, field):
    send("shop", shop, "order.created", ORDER)

    response = send("shop", shop, "order.shipped", {"id": "NW-482913", **data})

    assert response.status_code == 422
    assert any(error["field"].endswith(field) for error in response.json["errors"]), response.json
    order = stored(app, "NW-482913")
    assert (order.shipped_at, order.carrier, order.tracking_url) == (None, None, None)


def test_a_bad_number_in_an_order_event_is_422(send, shop):
    response = send("shop", shop, "order.created", {**ORDER, "number": "ORDER-ABC"})

    assert response.status_code == 422


def test_order_updated_with_nothing_to_change_is_still_422(send, shop):
    send("shop", shop, "order.created", ORDER)

    assert send("shop", shop, "order.updated", {"id": "NW-482913", "carrier": None}).status_code == 422


# --- CSV import ----------------------------------------------------------------------


def import_csv(app, *lines: str, **options):
    with app.app_context():
        return order_import.import_orders(get_session(), ("\n".join(lines) + "\n").encode(), **options)


def test_the_import_reads_the_optional_number_and_fulfilment_columns(app, add_customers):
    add_customers(("Ada Lovelace", "ada@example.com"))

    result = import_csv(
        app,
        "order id,email,amount,currency,order date,status,number,shipped at,courier,tracking number,tracking link,eta,delivered",
        "5001,ada@example.com,64.90,GBP,2026-11-20,paid,#100234,2026-11-21T08:00:00Z,DPD,155012,https://track.dpd.co.uk/parcels/155012,2026-11-24,",
        "NW-100235,ada@example.com,12.00,GBP,2026-11-20,paid,,,,,,,",
        "5003,ada@example.com,12.00,GBP,2026-11-20,paid,,,,,javascript:alert(1),,",
        "5004,ada@example.com,12.00,GBP,2026-11-20,paid,order 9,,,,,,",
        "5005,ada@example.com,12.00,GBP,2026-11-20,paid,,,,,,23/11/2026,",
    )

    assert (result.created, result.rejected) == (2, 3)
    reasons = " ".join(issue.reason for issue in result.issues)
    assert "tracking URL" in reasons and "order number 'order 9'" in reasons and "estimated delivery '23/11/2026'" in reasons
    shipped, waiting = stored(app, "NW-100234"), stored(app, "NW-100235")
    assert (shipped.external_id, shipped.status, shipped.carrier, shipped.tracking_number) == ("5001", "fulfilled", "DPD", "155012")
    assert shipped.estimated_delivery == date(2026, 11, 24) and shipped.delivered_at is None
    assert (waiting.status, waiting.shipped_at) == ("paid", None)


def test_an_import_without_fulfilment_columns_leaves_the_orders_tracking_alone(app, add_customers):
    add_customers(("Ada Lovelace", "ada@example.com"))
    import_csv(app, "order id,email,amount,currency,order date,shipped at,carrier", "NW-100234,ada@example.com,64.90,GBP,2026-11-20,2026-11-21,DPD")

    again = import_csv(app, "order id,email,amount,currency,order date,status", "NW-100234,ada@example.com,64.90,GBP,2026-11-20,fulfilled")
    cleared = import_csv(app, "order id,email,amount,currency,order date,status,carrier", "NW-100234,ada@example.com,64.90,GBP,2026-11-20,fulfilled,")

    assert (again.unchanged, cleared.updated) == (1, 1)
    order = stored(app, "NW-100234")
    assert order.shipped_at == datetime(2026, 11, 21, tzinfo=timezone.utc) and order.carrier is None


# --- the demo seed and the bot's key -----------------------------------------------


def test_the_demo_orders_tell_every_delivery_story_the_assistant_needs(app, client, reader):
    with app.app_context():
        seed.seed_customers(get_session())
        added, _ = seed.seed_orders(get_session())
        assert seed.seed_orders(get_session()) == (0, added)

    adas = client.get(f"{ORDERS}?customer_email=ada@example.com", headers=reader).json["items"]
    everyone = client.get(f"{ORDERS}?limit=100", headers=reader).json["items"]

    states = {order["number"]: (order["delivery_state"], order["delivery_overdue"]) for order in adas}
    assert states == {
        "NW-100245": ("preparing", False),
        "NW-100234": ("shipped", False),
        "NW-482913": ("delivered", False),
        "NW-10234": ("shipped", True),
    }
    assert all(order["tracking_url"].startswith("https://") for order in adas if order["delivery_state"] != "preparing")
    assert {order["delivery_state"] for order in everyone} == set(service.DELIVERY_STATES)


def test_the_bot_key_is_given_orders_read_by_the_ensure_step(run_cli, tmp_path):
    key_file = tmp_path / "crm_api_key"
    run_cli("ensure-api-key", "bot", "--file", str(key_file), "--scopes", "customers:read")

    result = run_cli("ensure-api-key", "bot", "--file", str(key_file), "--scopes", "customers:read", "--scopes", "orders:read")

    assert result.exit_code == 0 and "Created API key" in result.output


def test_scripts_give_the_bots_key_orders_read_and_readyz_checks_it(app):
    from pathlib import Path

    env_script = (Path(__file__).parents[2] / "scripts" / "env.sh").read_text(encoding="utf-8")
    assert "--scopes orders:read" in env_script
    assert "orders:read" in app.config["BOT_API_KEY_SCOPES"]


# --- the migration ------------------------------------------------------------------


def test_migration_0013_numbers_stored_orders_from_their_ids_and_goes_down_and_up_again(unmigrated_app):
    with unmigrated_app.app_context():
        engine = get_engine()
        with engine.begin() as connection:
            command.upgrade(migrate.alembic_config(connection), "0012")
            tables = sa.MetaData()
            tables.reflect(connection, only=["customers", "orders"])
            connection.execute(
                tables.tables["customers"].insert(),
                {"id": 1, "name": "Ada Lovelace", "email": "ada@example.com", "created_at": NOW, "updated_at": NOW},
            )
            connection.execute(
                tables.tables["orders"].insert(),
                [
                    {
                        "customer_id": 1, "source": "shop", "external_id": external_id, "amount": Decimal("10"),
                        "refunded_amount": Decimal("0"), "currency": "GBP", "status": "paid", "ordered_at": NOW,
                        "created_at": NOW, "updated_at": NOW,
                    }
                    for external_id in ("NW-200001", "nw 4242", "5531234567890123")
                ],
            )
        migrate.upgrade_to_head(engine)
        with engine.connect() as connection:
            numbers = dict(connection.execute(sa.text("SELECT external_id, number FROM orders")).tuples().all())
            states = connection.execute(sa.text("SELECT shipped_at, carrier, tracking_url, estimated_delivery, delivered_at FROM orders")).all()
        with engine.begin() as connection:
            command.downgrade(migrate.alembic_config(connection), "0012")
        down = {column["name"] for column in sa.inspect(engine).get_columns("orders")}
        migrate.upgrade_to_head(engine)
        up = {column["name"] for column in sa.inspect(engine).get_columns("orders")}

    assert numbers == {"NW-200001": "NW-200001", "nw 4242": "NW-4242", "5531234567890123": None}
    assert states == [(None,) * 5] * 3
    assert not down & {"number", "shipped_at", "carrier", "tracking_number", "tracking_url", "estimated_delivery", "delivered_at"}
    assert {"number", "shipped_at", "carrier", "tracking_number", "tracking_url", "estimated_delivery", "delivered_at"} <= up
