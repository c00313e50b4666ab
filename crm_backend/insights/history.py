"""What the insights are computed from: each customer's orders, tickets and
feedback, loaded for a batch of customers in three queries."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ..models import Customer, Feedback, Order, Ticket
from .formulas import COUNTED_ORDER_STATUSES

# Ids per IN (...) list: far below every backend's bound-parameter limit.
BATCH_SIZE = 1000


@dataclass(frozen=True)
class OrderFact:
    amount: Decimal
    refunded_amount: Decimal
    currency: str
    status: str
    ordered_at: datetime


@dataclass(frozen=True)
class TicketFact:
    created_at: datetime
    category: str


@dataclass(frozen=True)
class FeedbackFact:
    created_at: datetime
    score: int


@dataclass
class History:
    orders: list[OrderFact] = field(default_factory=list)
    tickets: list[TicketFact] = field(default_factory=list)
    feedback: list[FeedbackFact] = field(default_factory=list)


# Built once: a batch of one (a ticket's customer) is the common case, and
# building the statements would cost more than running them.
_IDS = bindparam("ids", expanding=True)
_ORDERS = (
    select(Order.customer_id, Order.amount, Order.refunded_amount, Order.currency, Order.status, Order.ordered_at)
    .where(Order.customer_id.in_(_IDS), Order.currency == bindparam("currency"), Order.status.in_(COUNTED_ORDER_STATUSES))
    .order_by(Order.ordered_at)
)
_TICKETS = select(Ticket.customer_id, Ticket.created_at, Ticket.category).where(Ticket.customer_id.in_(_IDS)).order_by(Ticket.created_at)
_FEEDBACK = (
    select(Feedback.customer_id, Feedback.created_at, Feedback.score)
    .where(Feedback.customer_id.in_(_IDS))
    .order_by(Feedback.created_at, Feedback.id)
)


def load_histories(session: Session, customer_ids: Sequence[int], currency: str) -> dict[int, History]:
    """Every given customer's history (empty when they have none), oldest first."""
    histories: dict[int, History] = {customer_id: History() for customer_id in customer_ids}
    if not histories:
        return histories
    params = {"ids": list(histories), "currency": currency}
    for customer_id, *values in session.execute(_ORDERS, params):
        histories[customer_id].orders.append(OrderFact(*values))
    for customer_id, created_at, category in session.execute(_TICKETS, params):
        histories[customer_id].tickets.append(TicketFact(created_at, category))
    for customer_id, created_at, score in session.execute(_FEEDBACK, params):
        histories[customer_id].feedback.append(FeedbackFact(created_at, score))
    return histories


def customer_id_batches(session: Session, batch_size: int = BATCH_SIZE) -> Iterator[list[int]]:
    """All customer ids in ascending batches, read a batch at a time (keyset)."""
    after = 0
    while True:
        batch = list(
            session.scalars(select(Customer.id).where(Customer.id > after).order_by(Customer.id).limit(batch_size))
        )
        if not batch:
            return
        yield batch
        after = batch[-1]


def batched_histories(session: Session, currency: str, batch_size: int = BATCH_SIZE) -> Iterator[dict[int, History]]:
    for ids in customer_id_batches(session, batch_size):
        yield load_histories(session, ids, currency)
