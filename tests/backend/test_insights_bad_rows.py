"""The nightly recompute and a customer it cannot refresh: that customer is set
aside, everyone else is refreshed, and the run finishes (issue 19)."""

import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import select, text

from crm_backend.db import get_session
from crm_backend.insights import nightly
from crm_backend.models import Customer, DeadLetter, Order

POSTGRES = bool(os.environ.get("CRM_TEST_POSTGRES_URL"))
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def add_customer(session, name: str, amounts: list[str]) -> int:
    customer = Customer(name=name, email=f"{name.lower()}@example.com")
    session.add(customer)
    for number, amount in enumerate(amounts):
        session.add(Order(
            customer=customer, source="shop", external_id=f"{name}-{number}", amount=Decimal(amount),
            refunded_amount=Decimal(0), currency="GBP", status="paid", ordered_at=NOW - timedelta(days=10 + number),
        ))
    session.flush()
    return customer.id


def add_huge_orders(session, customer_id: int) -> None:
    # Ten orders at the largest amount an order event may carry: a lifetime
    # value beyond what its column holds.
    for number in range(10):
        session.add(Order(
            customer_id=customer_id, source="shop", external_id=f"big-{number}", amount=Decimal("999999999999.999"),
            refunded_amount=Decimal(0), currency="GBP", status="paid", ordered_at=NOW - timedelta(days=1),
        ))


def make_unrefreshable(session, customer_id: int, monkeypatch) -> None:
    if POSTGRES:
        # PostgreSQL keeps its cells typed: the database refuses this one
        # customer's figures (as it would a value past a column's range).
        from sqlalchemy.exc import DataError

        from crm_backend.insights import service

        store = service._store

        def refusing_store(customer, insights, now):
            if customer.id == customer_id:
                raise DataError("UPDATE customers ...", {}, Exception("numeric field overflow"))
            store(customer, insights, now)

        monkeypatch.setattr(service, "_store", refusing_store)
    else:
        # SQLite keeps whatever a cell is given: an order date that is no date.
        session.execute(text("UPDATE orders SET ordered_at = 'not a date' WHERE customer_id = :id"), {"id": customer_id})


def test_absurd_order_amounts_give_the_largest_lifetime_value_the_column_holds(app):
    with app.app_context():
        session = get_session()
        customer_id = add_customer(session, "Midas", ["10.00"])
        add_huge_orders(session, customer_id)
        session.commit()

        result = nightly.run_exclusive(app, train=True)
        customer = session.get(Customer, customer_id)
        session.refresh(customer)

    assert result.status == "finished" and result.metrics["set_aside"] == 0
    assert customer.insights_updated_at is not None
    assert customer.lifetime_value == Decimal("9999999999999.99")


def test_a_customer_who_cannot_be_refreshed_is_set_aside_and_the_run_finishes(app, monkeypatch):
    with app.app_context():
        session = get_session()
        good = [add_customer(session, name, ["40.00", "25.50"]) for name in ("Ada", "Grace", "Linus")]
        bad = add_customer(session, "Mallory", ["10.00"])
        make_unrefreshable(session, bad, monkeypatch)
        session.commit()

        result = nightly.run_exclusive(app, train=True)

        refreshed = dict(session.execute(select(Customer.id, Customer.insights_updated_at)).all())
        letters = [(row.source, row.position) for row in session.scalars(select(DeadLetter))]

    assert result.status == "finished"
    assert all(refreshed[customer_id] is not None for customer_id in good)
    assert refreshed[bad] is None
    assert letters == [("insights", f"customer {bad}")]
    assert result.metrics["set_aside"] == 1 and result.metrics["customers"] == 3
    assert "1 customer(s) could not be refreshed" in nightly.summary(result)
