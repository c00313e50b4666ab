"""Customer queries, independent of HTTP."""

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..models import Customer, normalise_email


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
