"""Finding orders and saying where one is (plain functions the views and tests call)."""

from datetime import date, datetime, timezone

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ..models import Customer, Order, normalise_email
from .numbers import normalise_order_number

# Where an order is, in words a reply can be built from. One of these, in
# this order of precedence:
#   cancelled  the order was cancelled (nothing will be sent, or it was stopped)
#   refunded   all of it was refunded (a partial refund keeps the order's place below)
#   delivered  the carrier delivered it (delivered_at)
#   shipped    it left the warehouse (shipped_at, or the shop marked it fulfilled)
#   placed     ordered but not paid yet
#   preparing  paid and not shipped yet: being picked and packed
DELIVERY_STATES = ("placed", "preparing", "shipped", "delivered", "cancelled", "refunded")


def delivery_state(order: Order) -> str:
    if order.status == "cancelled":
        return "cancelled"
    if order.status == "refunded":
        return "refunded"
    if order.delivered_at is not None:
        return "delivered"
    if order.shipped_at is not None or order.status == "fulfilled":
        return "shipped"
    if order.status == "placed":
        return "placed"
    return "preparing"


def delivery_overdue(order: Order, today: date | None = None) -> bool:
    """Shipped, not delivered, and the estimated delivery day has passed (UTC)."""
    if delivery_state(order) != "shipped" or order.estimated_delivery is None:
        return False
    return order.estimated_delivery < (today or datetime.now(timezone.utc).date())


def find_orders(
    session: Session,
    *,
    customer_email: str | None = None,
    customer_id: int | None = None,
    status: list[str] | None = None,
    limit: int = 20,
    after: tuple[datetime, int] | None = None,
) -> tuple[list[Order], tuple[datetime, int] | None]:
    """Newest order first (by when it was ordered); the page and the key to continue after (or None)."""
    query = select(Order)
    if customer_email is not None:
        query = query.where(Order.customer_id.in_(select(Customer.id).where(Customer.email == normalise_email(customer_email))))
    if customer_id is not None:
        query = query.where(Order.customer_id == customer_id)
    if status:
        query = query.where(Order.status.in_(status))
    if after is not None:
        ordered_at, order_id = after
        query = query.where(or_(Order.ordered_at < ordered_at, and_(Order.ordered_at == ordered_at, Order.id < order_id)))
    query = query.order_by(Order.ordered_at.desc(), Order.id.desc()).limit(limit + 1)
    orders = list(session.scalars(query).unique())
    if len(orders) > limit:
        last = orders[limit - 1]
        return orders[:limit], (last.ordered_at, last.id)
    return orders, None


def find_by_number(session: Session, reference: str, *, customer_email: str | None = None) -> Order | None:
    """The order ``reference`` names (any accepted way of writing its number), or None.

    With ``customer_email``, only that customer's order: a number with the
    wrong address is not found, exactly like a number nobody has, so the
    answer never tells a guesser that the number exists. Should two sources
    carry the same number, the most recently ordered one wins.
    """
    number = normalise_order_number(reference)
    if number is None:
        return None
    query = select(Order).where(Order.number == number)
    if customer_email is not None:
        query = query.where(Order.customer_id.in_(select(Customer.id).where(Customer.email == normalise_email(customer_email))))
    return session.scalars(query.order_by(Order.ordered_at.desc(), Order.id.desc()).limit(1)).first()
