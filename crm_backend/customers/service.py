"""Customer queries, independent of HTTP."""

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .. import audit
from ..models import Customer, normalise_email
from ..problems import ApiProblem


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def find_customers(
    session: Session,
    *,
    email: str | None = None,
    q: str | None = None,
    limit: int = 20,
    after_id: int | None = None,
) -> tuple[list[Customer], int | None]:
    """One page of customers ordered by id, and the id to continue after (or None)."""
    query = select(Customer).order_by(Customer.id).limit(limit + 1)
    if email is not None:
        query = query.where(Customer.email == normalise_email(email))
    if q:
        pattern = _like_pattern(q)
        query = query.where(
            or_(Customer.name.ilike(pattern, escape="\\"), Customer.email.ilike(pattern, escape="\\"))
        )
    if after_id is not None:
        query = query.where(Customer.id > after_id)
    customers = list(session.scalars(query))
    # Fetching one extra row tells whether another page exists.
    if len(customers) > limit:
        return customers[:limit], customers[limit - 1].id
    return customers, None


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
    return customer


def get_or_create_by_email(session: Session, email: str, name: str | None) -> Customer:
    """The customer with ``email``, created (named ``name`` or the address's local part) if new."""
    existing = _email_taken(session, email)
    if existing is not None:
        return existing
    return create_customer(session, name=name or email.split("@", 1)[0], email=email)
