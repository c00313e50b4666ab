"""What each kind of source's events do. Each handler adds to the session and
returns the result members of the response; the view commits once."""

import re
from collections.abc import Callable
from dataclasses import dataclass

from marshmallow import Schema
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit
from ..customers import service as customers
from ..db import utcnow
from ..insights import service as insights
from ..models import InboundSource, Order, Ticket, normalise_email, parse_ticket_reference
from ..orders.numbers import normalise_order_number
from ..problems import ApiProblem, field_problem
from ..tickets import service as tickets
from . import schemas

ORDER_AUDIT_FIELDS = (
    "customer_id", "source", "external_id", "amount", "refunded_amount", "currency", "status", "cancelled_at",
    *schemas.FULFILMENT_FIELDS,
)
# Only these change the customer's figures (crm_backend/insights); fulfilment does not.
FIGURE_FIELDS = ("customer_id", "amount", "refunded_amount", "currency", "status")
# order.updated moves an order forward along these; refund statuses and
# cancelled are set by their own events and are not overwritten by it.
FULFILMENT_ORDER = {status: rank for rank, status in enumerate(schemas.FULFILMENT_STATUSES)}
TICKET_IN_SUBJECT = re.compile(r"\bTCK-(\d{1,18})\b", re.IGNORECASE)
REPLY_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|sv|tr)\s*:\s*)+", re.IGNORECASE)


@dataclass(frozen=True)
class Handler:
    schema: type[Schema]
    handle: Callable[[Session, InboundSource, dict], dict]


def _order_snapshot(order: Order) -> dict:
    return {name: str(value) if name in ("amount", "refunded_amount") else value for name, value in audit.snapshot(order, ORDER_AUDIT_FIELDS).items()}


def _apply_fulfilment(order: Order, data: dict, names=schemas.FULFILMENT_FIELDS) -> None:
    """Set the number and fulfilment fields the event carries (null or absent: unchanged).

    Shipping or delivering moves a placed or paid order to fulfilled; refund
    statuses stay (they come from their own events).
    """
    for name in names:
        if data.get(name) is not None:
            setattr(order, name, data[name])
    if (order.shipped_at is not None or order.delivered_at is not None) and order.status in ("placed", "paid"):
        order.status = "fulfilled"


def _find_order(session: Session, source: InboundSource, external_id: str) -> Order | None:
    return session.scalars(
        select(Order).where(Order.source == source.name, Order.external_id == external_id)
    ).one_or_none()


def _known_order(session: Session, source: InboundSource, external_id: str) -> Order:
    order = _find_order(session, source, external_id)
    if order is None:
        # Typically order.created is still on its way (senders retry): a
        # conflict with the current state, not a malformed request.
        raise ApiProblem(409, f"Order {external_id!r} of source {source.name!r} is not known (yet); send order.created first.")
    return order


def _record_change(session: Session, order: Order, before: dict, action: str) -> None:
    """Audit what changed and recompute the customer's figures if they depend on it; nothing if nothing changed."""
    old, new = audit.changed(before, _order_snapshot(order))
    if new:
        session.flush()
        audit.record(session, action, "order", order.id, old, new)
        if any(name in new for name in FIGURE_FIELDS):
            insights.refresh_customers(session, [order.customer_id])


def _refund_status(order: Order) -> str:
    return "refunded" if order.refunded_amount == order.amount else "partially_refunded"


def order_created(session: Session, source: InboundSource, data: dict) -> dict:
    existing = _find_order(session, source, data["id"])
    if existing is not None:
        # The same order sent again under another webhook-id: already known.
        return {"order_id": existing.id}
    customer = customers.get_or_create_by_email(session, data["customer"]["email"], data["customer"]["name"])
    order = Order(
        customer=customer,
        source=source.name,
        external_id=data["id"],
        amount=data["amount"],
        refunded_amount=0,
        currency=data["currency"],
        status=data["status"],
        ordered_at=data["ordered_at"],
        # The number the customer knows: given, else the id when it is one (NW-100234).
        number=data["number"] or normalise_order_number(data["id"]),
    )
    _apply_fulfilment(order, {**data, "number": None})
    session.add(order)
    session.flush()
    audit.record(session, "order.created", "order", order.id, None, _order_snapshot(order))
    insights.refresh_customers(session, [customer.id])
    return {"order_id": order.id}


def order_updated(session: Session, source: InboundSource, data: dict) -> dict:
    """A status moving forward (placed -> paid -> fulfilled) and/or a new amount.

    Events can arrive out of order, so a status behind the order's is a late
    event and ignored, as is any status for a refunded or cancelled order
    (those statuses come from their own events). A cancelled order is final:
    nothing changes it any more. The whole order may be sent: unknown fields
    are ignored, and a currency, when given, must be the order's.
    """
    order = _known_order(session, source, data["id"])
    if order.status == "cancelled":
        return {"order_id": order.id}
    if data["currency"] is not None and data["currency"] != order.currency:
        raise field_problem("data.currency", f"An order's currency cannot change (it is {order.currency}); cancel it and create a new one.")
    before = _order_snapshot(order)
    status = data["status"]
    if status is not None and order.status in FULFILMENT_ORDER and FULFILMENT_ORDER[status] > FULFILMENT_ORDER[order.status]:
        order.status = status
    if data["amount"] is not None and data["amount"] != order.amount:
        if data["amount"] < order.refunded_amount:
            raise field_problem("data.amount", f"Less than what was refunded already ({order.refunded_amount}).")
        order.amount = data["amount"]
        if order.refunded_amount > 0:
            order.status = _refund_status(order)
    _apply_fulfilment(order, data)
    _record_change(session, order, before, "order.updated")
    return {"order_id": order.id}


def order_shipped(session: Session, source: InboundSource, data: dict) -> dict:
    """The parcel left: shipped_at (default now), carrier and tracking; status fulfilled.

    A cancelled order is final and stays as it is. Sent again with a new
    tracking number (a re-shipment), the new parcel's details replace the old.
    """
    order = _known_order(session, source, data["id"])
    if order.status == "cancelled":
        return {"order_id": order.id}
    before = _order_snapshot(order)
    shipped_at = data["shipped_at"] or order.shipped_at or utcnow()
    _apply_fulfilment(order, {**data, "shipped_at": shipped_at}, schemas.SHIPPING_FIELDS)
    _record_change(session, order, before, "order.shipped")
    return {"order_id": order.id}


def order_delivered(session: Session, source: InboundSource, data: dict) -> dict:
    """The carrier delivered it: delivered_at (default now); status fulfilled. A cancelled order stays as it is."""
    order = _known_order(session, source, data["id"])
    if order.status == "cancelled":
        return {"order_id": order.id}
    before = _order_snapshot(order)
    _apply_fulfilment(order, {"delivered_at": data["delivered_at"] or order.delivered_at or utcnow()}, ("delivered_at",))
    _record_change(session, order, before, "order.delivered")
    return {"order_id": order.id}


def order_refunded(session: Session, source: InboundSource, data: dict) -> dict:
    order = _known_order(session, source, data["id"])
    refunded = data["amount_refunded"] if data["amount_refunded"] is not None else order.amount
    if refunded > order.amount:
        raise field_problem("data.amount_refunded", f"More than the order's amount ({order.amount}).")
    before = _order_snapshot(order)
    order.refunded_amount = refunded
    if order.status != "cancelled":  # a refund of a cancelled order's payment keeps it cancelled
        order.status = _refund_status(order)
    order.refunded_at = data["refunded_at"] or utcnow()
    _record_change(session, order, before, "order.refunded")
    return {"order_id": order.id}


def order_cancelled(session: Session, source: InboundSource, data: dict) -> dict:
    """The order will not be kept: it stops counting towards the customer's figures."""
    order = _known_order(session, source, data["id"])
    if order.status == "cancelled":
        return {"order_id": order.id}  # sent again: the first cancellation stands
    before = _order_snapshot(order)
    order.status = "cancelled"
    order.cancelled_at = data["cancelled_at"] or utcnow()
    _record_change(session, order, before, "order.cancelled")
    return {"order_id": order.id}


def _referenced_ticket(session: Session, data: dict) -> Ticket | None:
    reference = data["ticket"]
    if reference is None:
        match = TICKET_IN_SUBJECT.search(data["subject"])
        reference = match.group(0) if match else None
    ticket_id = parse_ticket_reference(reference) if reference else None
    return session.get(Ticket, ticket_id) if ticket_id is not None else None


def message_received(session: Session, source: InboundSource, data: dict) -> dict:
    """A customer's e-mail: a public comment on the ticket it answers, else a new ticket.

    Only the ticket's own customer can comment on it by e-mail (anyone can
    write "TCK-000123" in a subject); mail from anyone else, or about a
    closed ticket, opens a new ticket.
    """
    sender = normalise_email(data["sender"])
    ticket = _referenced_ticket(session, data)
    if ticket is not None and ticket.customer.email == sender and ticket.status != "closed":
        comment = tickets.add_comment(
            session, ticket, body=data["text"], author_type="customer",
            author_name=data["name"] or ticket.customer.name, public=True,
        )
        return {"ticket": ticket.number, "comment_id": comment.id}
    subject = REPLY_PREFIX.sub("", data["subject"]).strip()[:200] or f"E-mail from {sender}"
    ticket = tickets.create_ticket(
        session, subject=subject, description=data["text"], customer_email=sender,
        customer_name=data["name"], channel="email",
    )
    return {"ticket": ticket.number}


HANDLERS: dict[str, dict[str, Handler]] = {
    "shop": {
        "order.created": Handler(schemas.OrderCreated, order_created),
        "order.updated": Handler(schemas.OrderUpdated, order_updated),
        "order.shipped": Handler(schemas.OrderShipped, order_shipped),
        "order.delivered": Handler(schemas.OrderDelivered, order_delivered),
        "order.refunded": Handler(schemas.OrderRefunded, order_refunded),
        "order.cancelled": Handler(schemas.OrderCancelled, order_cancelled),
    },
    "email": {
        "message.received": Handler(schemas.MessageReceived, message_received),
    },
}
