"""Demo data of the "Northwind Goods" shop; the data itself is in demo/."""

import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .agents import service as agents
from .models import Customer, Ticket, normalise_email
from .tickets.service import TICKET_AUDIT_FIELDS

DEMO_CUSTOMERS = Path(__file__).parent / "demo" / "customers.json"
DEMO_TICKETS = Path(__file__).parent / "demo" / "tickets.json"
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


def seed_tickets(session: Session, path: Path = DEMO_TICKETS) -> tuple[int, int]:
    """Add the demo tickets not yet present (same customer and subject); return (added, kept).

    Their categories come from the data, not the classifier, so the demo
    looks the same whether or not a model has been trained.
    """
    records = json.loads(path.read_text(encoding="utf-8"))
    added = 0
    for record in records:
        customer = session.scalars(
            select(Customer).where(Customer.email == normalise_email(record["customer_email"]))
        ).one_or_none()
        if customer is None:
            raise ValueError(f"demo ticket for unknown customer {record['customer_email']}; seed customers first")
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
