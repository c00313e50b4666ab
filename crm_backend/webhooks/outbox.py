"""The transactional outbox: ``emit`` records an event in the caller's transaction.

Service functions call ``emit(session, "ticket.created", ticket)`` next to
their audit record. It only adds rows to the session: the event and one
delivery per enabled endpoint subscribed to its type (fan-out at emit time,
so that who receives an event is decided by the subscriptions at the moment
of the change). If the request fails and rolls back, the event disappears
with the change; if it commits, the delivery worker will send it, however
long the receiver is down.
"""

import json
import os
import time
from dataclasses import dataclass
from functools import cache
from importlib import import_module

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..models import WEBHOOK_EVENT_TYPES, WebhookDelivery, WebhookEndpoint, WebhookEvent


@dataclass(frozen=True)
class EventType:
    name: str
    resource: str  # "ticket": the resource key is "ticket:<id>"
    schema: str  # the API's output schema, "module:Class"


EVENT_TYPES = {
    event.name: event
    for event in (
        EventType("ticket.created", "ticket", "crm_backend.tickets.schemas:TicketOut"),
        EventType("ticket.updated", "ticket", "crm_backend.tickets.schemas:TicketOut"),
        EventType("handoff.requested", "handoff", "crm_backend.handoffs.schemas:HandoffOut"),
        EventType("handoff.resolved", "handoff", "crm_backend.handoffs.schemas:HandoffOut"),
        EventType("feedback.received", "feedback", "crm_backend.feedback.schemas:FeedbackOut"),
        EventType("customer.created", "customer", "crm_backend.customers.schemas:CustomerOut"),
        EventType("customer.updated", "customer", "crm_backend.customers.schemas:CustomerOut"),
    )
}
assert tuple(EVENT_TYPES) == WEBHOOK_EVENT_TYPES
# Extra top-level members some events carry besides {type, timestamp, data}.
RELATED_SCHEMAS = {"comment": "crm_backend.tickets.schemas:CommentOut"}


@cache
def _schema(path: str):
    # Imported on first use: the services that call emit() are imported by
    # the very packages whose schemas these are.
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)()


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_message_id() -> str:
    """``msg_`` and a ULID: unique, and sorting by it sorts by creation time."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return "msg_" + "".join(reversed(chars))


def subscribed_endpoints(session: Session, event_type: str) -> list[int]:
    rows = session.execute(select(WebhookEndpoint.id, WebhookEndpoint.events).where(WebhookEndpoint.enabled.is_(True)))
    return [endpoint_id for endpoint_id, events in rows if event_type in (events or ())]


def payload_for(event_type: str, resource, timestamp, **related) -> dict:
    """``{type, timestamp, data}``: data is the resource as the API's GET returns it."""
    event = EVENT_TYPES[event_type]
    payload = {"type": event_type, "timestamp": timestamp.isoformat(), "data": _schema(event.schema).dump(resource)}
    for name, value in related.items():
        payload[name] = _schema(RELATED_SCHEMAS[name]).dump(value)
    return payload


def emit(session: Session, event_type: str, resource, **related) -> WebhookEvent | None:
    """Queue ``event_type`` about ``resource`` (a model or a dict of its fields) for delivery.

    Adds rows to ``session`` and commits nothing. Returns the event, or None
    when no enabled endpoint subscribes to this type (then nothing is stored).
    ``related`` adds top-level members, e.g. ``comment=`` on ticket.updated.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    endpoint_ids = subscribed_endpoints(session, event_type)
    if not endpoint_ids:
        return None
    session.flush()  # ids, defaults and onupdate timestamps as the API shows them
    now = utcnow()
    payload = payload_for(event_type, resource, now, **related)
    resource_key = f"{EVENT_TYPES[event_type].resource}:{payload['data']['id']}"
    event = WebhookEvent(
        message_id=new_message_id(),
        event_type=event_type,
        resource_key=resource_key,
        # Serialised once: every attempt sends, and signs, the same bytes.
        payload=json.dumps(payload, separators=(",", ":")),
        created_at=now,
    )
    session.add(event)
    session.add_all(
        WebhookDelivery(event=event, endpoint_id=endpoint_id, resource_key=resource_key, status="pending", next_attempt_at=now)
        for endpoint_id in endpoint_ids
    )
    return event
