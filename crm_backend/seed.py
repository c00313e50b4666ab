"""Demo data of the "Northwind Goods" shop; the data itself is in demo/."""

import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Customer, normalise_email

DEMO_CUSTOMERS = Path(__file__).parent / "demo" / "customers.json"


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
