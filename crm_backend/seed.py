"""Demo data of the "Northwind Goods" shop; the data itself is in demo/."""

import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .agents import service as agents
from .db import utcnow
from .models import Customer, Order, Ticket, normalise_email
from .tickets.service import TICKET_AUDIT_FIELDS

DEMO_CUSTOMERS = Path(__file__).parent / "demo" / "customers.json"
DEMO_TICKETS = Path(__file__).parent / "demo" / "tickets.json"
DEMO_ORDERS = Path(__file__).parent / "demo" / "orders.json"
DEMO_ORDER_SOURCE = "demo"  # Order.source of the demo customers' current orders of orders.json
DEMO_ORDER_FIELDS = (
    "customer_id", "source", "external_id", "number", "amount", "currency", "status", "ordered_at", "shipped_at", "carrier",
    "tracking_number", "tracking_url", "estimated_delivery", "delivered_at", "refunded_amount", "refunded_at", "cancelled_at",
)
# The console's demo login, also in README and docs/api.md. Demo data only.
DEMO_AGENT_EMAIL = "agent@example.com"
DEMO_AGENT_PASSWORD = "northwind-demo"


def seed_customers(session: Session, path: Path = DEMO_CUSTOMERS) -> tuple[int, int]:
    """Add the customers of ``path`` not yet present (by e-mail); return (added, kept)."""
    records = json.loads(path.read_text(encoding="utf-8"))
    emails = [normalise_email(record["email"]) for record in records]
    existing = set(session.scalars(select(Customer.email).where(Customer.email.in_(emails))))
    added = 0
    for record, email in zip(records, emails):
        if email in existing:
            continue
        session.add(Customer(name=record["name"], email=email, phone=record.get("phone")))
        existing.add(email)
        added += 1
    session.commit()
    return added, len(records) - added


def seed_agent(session: Session) -> bool:
    """Add the demo agent if missing; return whether it was added."""
    if agents.find_agent(session, DEMO_AGENT_EMAIL) is not None:
        return False
    agents.create_agent(session, email=DEMO_AGENT_EMAIL, password=DEMO_AGENT_PASSWORD, name="Demo Agent")
    session.commit()
    return True


def _demo_customer(session: Session, email: str, what: str) -> Customer:
    """The demo customer a demo ticket or order names; they are seeded first."""
    customer = session.scalars(select(Customer).where(Customer.email == normalise_email(email))).one_or_none()
    if customer is None:
        raise ValueError(f"demo {what} for unknown customer {email}; seed customers first")
    return customer


def seed_tickets(session: Session, path: Path = DEMO_TICKETS) -> tuple[int, int]:
    """Add the demo tickets not yet present (same customer and subject); return (added, kept).

    Their categories come from the data, not the classifier, so the demo
    looks the same whether or not a model has been trained.
    """
    records = json.loads(path.read_text(encoding="utf-8"))
    added = 0
    for record in records:
        customer = _demo_customer(session, record["customer_email"], "ticket")
        exists = session.scalars(
            select(Ticket.id).where(Ticket.customer_id == customer.id, Ticket.subject == record["subject"])
        ).first()
        if exists is not None:
            continue
        ticket = Ticket(
            customer=customer,
            subject=record["subject"],
            description=record["description"],
            status=record["status"],
            priority=record["priority"],
            channel=record["channel"],
            category=record["category"],
            category_confidence=None,
            category_source="manual",
        )
        session.add(ticket)
        session.flush()
        audit.record(session, "ticket.created", "ticket", ticket.id, None, audit.snapshot(ticket, TICKET_AUDIT_FIELDS))
        added += 1
    session.commit()
    return added, len(records) - added


def seed_orders(session: Session, path: Path = DEMO_ORDERS, now: datetime | None = None) -> tuple[int, int]:
    """Add the demo customers' current orders not yet present (by number); return (added, kept).

    Dated relative to ``now`` when first added, so that a fresh demo has an
    order on its way, one late, one delivered, one not shipped yet, one
    cancelled and one refunded (docs/demo-data.md).
    """
    records = json.loads(path.read_text(encoding="utf-8"))
    now = now or utcnow()
    added = 0
    for record in records:
        customer = _demo_customer(session, record["customer_email"], "order")
        exists = session.scalars(
            select(Order.id).where(Order.source == DEMO_ORDER_SOURCE, Order.external_id == record["number"])
        ).first()
        if exists is not None:
            continue
        order = Order(customer=customer, source=DEMO_ORDER_SOURCE, external_id=record["number"], **_demo_order_values(record, now))
        session.add(order)
        session.flush()
        snapshot = {name: str(value) if isinstance(value, Decimal) else value for name, value in audit.snapshot(order, DEMO_ORDER_FIELDS).items()}
        audit.record(session, "order.created", "order", order.id, None, snapshot)
        added += 1
    session.commit()
    return added, len(records) - added


def _demo_order_values(record: dict, now: datetime) -> dict:
    def ago(key: str) -> datetime | None:
        return now - timedelta(days=record[key]) if key in record else None

    amount = Decimal(record["amount"])
    refunded_at, cancelled_at = ago("refunded_days_ago"), ago("cancelled_days_ago")
    shipped_at, delivered_at = ago("shipped_days_ago"), ago("delivered_days_ago")
    if cancelled_at:
        status = "cancelled"
    elif refunded_at:
        status = "refunded"
    elif shipped_at or delivered_at:
        status = "fulfilled"
    else:
        status = record.get("status", "paid")
    estimated = record.get("estimated_delivery_in_days")
    return {
        "number": record["number"],
        "amount": amount,
        "currency": record.get("currency", "GBP"),
        "status": status,
        "ordered_at": ago("ordered_days_ago"),
        "shipped_at": shipped_at,
        "carrier": record.get("carrier"),
        "tracking_number": record.get("tracking_number"),
        "tracking_url": record.get("tracking_url"),
        "estimated_delivery": (now + timedelta(days=estimated)).date() if estimated is not None else None,
        "delivered_at": delivered_at,
        "refunded_amount": amount if refunded_at else Decimal("0"),
        "refunded_at": refunded_at,
        "cancelled_at": cancelled_at,
    }
