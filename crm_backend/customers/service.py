"""Customer queries, independent of HTTP."""

import functools

from sqlalchemy import RowMapping, Select, bindparam, or_, select
from sqlalchemy.orm import Session

from .. import audit
from ..models import Customer, normalise_email
from ..problems import ApiProblem
from ..webhooks import outbox


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@functools.cache
def _customer_query(
    by_email: bool, by_text: bool, after_id: bool, by_tier: bool = False, by_segment: bool = False, by_risk: bool = False
) -> Select:
    # One statement per combination of filters, built once: SQLAlchemy then
    # reuses its cache key and compiled form instead of redoing both.
    customers = Customer.__table__
    query = select(customers).order_by(customers.c.id).limit(bindparam("limit"))
    if by_email:
        query = query.where(customers.c.email == bindparam("email"))
    if by_text:
        pattern = bindparam("pattern")
        query = query.where(
            or_(customers.c.name.ilike(pattern, escape="\\"), customers.c.email.ilike(pattern, escape="\\"))
        )
    if after_id:
        query = query.where(customers.c.id > bindparam("after_id"))
    if by_tier:
        query = query.where(customers.c.loyalty_tier == bindparam("loyalty_tier"))
    if by_segment:
        query = query.where(customers.c.segment == bindparam("segment"))
    if by_risk:
        query = query.where(customers.c.churn_risk >= bindparam("min_churn_risk"))
    return query


def find_customers(
    session: Session,
    *,
    email: str | None = None,
    q: str | None = None,
    loyalty_tier: str | None = None,
    segment: str | None = None,
    min_churn_risk: float | None = None,
    limit: int = 20,
    after_id: int | None = None,
) -> tuple[list[RowMapping], int | None]:
    """One page of customers ordered by id (read-only rows), and the id to continue after (or None).

    A Core query: the bot looks customers up by e-mail on every conversation,
    and building ORM objects that are only serialised would double its cost.
    """
    query = _customer_query(
        email is not None, bool(q), after_id is not None, loyalty_tier is not None, segment is not None, min_churn_risk is not None
    )
    params = {
        # Fetching one extra row tells whether another page exists.
        "limit": limit + 1,
        "email": normalise_email(email) if email is not None else None,
        "pattern": _like_pattern(q) if q else None,
        "after_id": after_id,
        "loyalty_tier": loyalty_tier,
        "segment": segment,
        "min_churn_risk": min_churn_risk,
    }
    rows = list(session.connection().execute(query, params).mappings())
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1]["id"]
    return rows, None


CUSTOMER_AUDIT_FIELDS = ("name", "email", "phone")


def _email_taken(session: Session, email: str, exclude_id: int | None = None) -> Customer | None:
    query = select(Customer).where(Customer.email == normalise_email(email))
    if exclude_id is not None:
        query = query.where(Customer.id != exclude_id)
    return session.scalars(query).one_or_none()


def _conflict(existing: Customer) -> ApiProblem:
    return ApiProblem(
        409,
        f"A customer with the e-mail {existing.email} already exists (id {existing.id}).",
        existing_id=existing.id,
    )


def create_customer(session: Session, *, name: str, email: str, phone: str | None = None) -> Customer:
    """Add a customer (not committed); 409 if the e-mail is taken."""
    existing = _email_taken(session, email)
    if existing is not None:
        raise _conflict(existing)
    customer = Customer(name=name, email=email, phone=phone)
    session.add(customer)
    session.flush()
    audit.record(session, "customer.created", "customer", customer.id, None, audit.snapshot(customer, CUSTOMER_AUDIT_FIELDS))
    outbox.emit(session, "customer.created", customer)
    return customer


def update_customer(session: Session, customer: Customer, changes: dict) -> Customer:
    """Apply ``changes`` (name, email, phone) and audit what really changed."""
    before = audit.snapshot(customer, CUSTOMER_AUDIT_FIELDS)
    if "email" in changes:
        existing = _email_taken(session, changes["email"], exclude_id=customer.id)
        if existing is not None:
            raise _conflict(existing)
    for field in CUSTOMER_AUDIT_FIELDS:
        if field in changes:
            setattr(customer, field, changes[field])
    old, new = audit.changed(before, audit.snapshot(customer, CUSTOMER_AUDIT_FIELDS))
    if new:
        session.flush()
        audit.record(session, "customer.updated", "customer", customer.id, old, new)
        outbox.emit(session, "customer.updated", customer)
    return customer


def get_or_create_by_email(session: Session, email: str, name: str | None) -> Customer:
    """The customer with ``email``, created (named ``name`` or the address's local part) if new."""
    existing = _email_taken(session, email)
    if existing is not None:
        return existing
    return create_customer(session, name=name or email.split("@", 1)[0], email=email)
