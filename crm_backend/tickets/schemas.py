from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Float, Function, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp
from flask import current_app
from webargs.fields import DelimitedList

from ..db import MAX_ID
from ..models import COMMENT_AUTHOR_TYPES, PRIORITY_SOURCES, TICKET_CHANNELS, TICKET_PRIORITIES, TICKET_STATUSES
from ..schemas import Cursor, EmailAddress, QuerySchema, cursor_field

# Labels are tenant data (the classifier's CSV), so only their shape is fixed.
CATEGORY = Regexp(r"^[a-z0-9_]{1,64}$", error="A category is 1-64 lower-case letters, digits or underscores.")


def _category(metadata: dict | None = None, **kwargs) -> String:
    metadata = {"pattern": "^[a-z0-9_]{1,64}$", "example": "refund", **(metadata or {})}
    return String(validate=CATEGORY, metadata=metadata, **kwargs)


def _conversation_id(**kwargs) -> String:
    return String(
        validate=Length(1, 128), metadata={"description": "The chat conversation (Rasa sender id)."}, **kwargs
    )


class TicketIn(Schema):
    customer_id = Integer(validate=Range(1, MAX_ID), metadata={"description": "An existing customer; or give customer_email."})
    customer_email = EmailAddress(
        validate=Length(max=320),
        metadata={"description": "The customer's e-mail; a new customer is created if none has it."},
    )
    customer_name = String(
        validate=Length(1, 200), metadata={"description": "Name for a customer created from customer_email."}
    )
    subject = String(required=True, validate=Length(1, 200))
    description = String(required=True, validate=Length(1, 20000))
    channel = String(load_default="api", validate=OneOf(TICKET_CHANNELS))
    priority = String(
        validate=OneOf(TICKET_PRIORITIES),
        metadata={
            "description": "Leave out to let the customer's value and churn risk decide: normal, or high/urgent "
            "for a complaint from a valued customer at risk (see priority_reason)."
        },
    )
    conversation_id = _conversation_id(allow_none=True, load_default=None)
    customer_verified = Boolean(
        load_default=False,
        metadata={
            "description": "True only when whoever opened it proved the customer's address (the chat's signed "
            "identity); false for an address a visitor only typed."
        },
    )
    assignee = EmailAddress(allow_none=True, load_default=None, metadata={"description": "An agent's e-mail."})
    category = _category(
        allow_none=True,
        load_default=None,
        metadata={"description": "Set only if already known; otherwise the need classifier decides."},
    )


class TicketPatch(Schema):
    subject = String(validate=Length(1, 200))
    description = String(validate=Length(1, 20000))
    status = String(
        validate=OneOf(TICKET_STATUSES),
        metadata={"description": "open -> pending/on_hold/solved; solved -> open/closed; closed is final (409)."},
    )
    priority = String(validate=OneOf(TICKET_PRIORITIES))
    channel = String(validate=OneOf(TICKET_CHANNELS))
    category = _category(metadata={"description": "A correction of the classified need."})
    assignee = EmailAddress(allow_none=True, metadata={"description": "An agent's e-mail, or null to unassign."})
    conversation_id = _conversation_id(allow_none=True)


def _category_of(ticket) -> str | None:
    # A Ticket, a row of the look-up query, or an already dumped dict.
    return ticket.get("category") if isinstance(ticket, dict) else getattr(ticket, "category", None)


class TicketOut(Schema):
    id = Integer(required=True)
    number = String(required=True, metadata={"example": "TCK-000123"})
    customer_id = Integer(required=True)
    customer_email = String(required=True)
    customer_verified = Boolean(
        required=True, metadata={"description": "Whether whoever opened it proved the customer's address (a signed identity)."}
    )
    subject = String(required=True)
    description = String(required=True)
    status = String(required=True, validate=OneOf(TICKET_STATUSES))
    priority = String(required=True, validate=OneOf(TICKET_PRIORITIES))
    priority_reason = String(
        allow_none=True,
        required=True,
        metadata={"description": "Why the priority was raised from the customer's value and churn risk; null when normal or set by hand."},
    )
    priority_source = String(
        required=True,
        validate=OneOf(PRIORITY_SOURCES),
        metadata={
            "description": "automatic: decided from the customer's value and churn risk, and decided again when the "
            "need is corrected; manual: given by a person or the client, and left alone."
        },
    )
    category = String(required=True)
    category_confidence = Float(allow_none=True, required=True, metadata={"description": "0..1; null when set by hand."})
    category_source = String(required=True, metadata={"description": "classifier or manual"})
    channel = String(required=True, validate=OneOf(TICKET_CHANNELS))
    assignee = String(attribute="assignee_email", allow_none=True, required=True)
    conversation_id = String(allow_none=True, required=True)
    needs_human = Function(
        lambda ticket: _category_of(ticket) in current_app.config.get("HUMAN_ONLY_NEEDS", ()),
        required=True,
        metadata={
            "type": "boolean",
            "description": "The category is one the company wants a person on (setting HUMAN_ONLY_NEEDS).",
        },
    )
    created_at = DateTime(required=True)
    updated_at = DateTime(required=True)


class TicketQuery(QuerySchema):
    customer_email = String(validate=Length(1, 320), metadata={"description": "Exact e-mail, case-insensitive."})
    customer_id = Integer(validate=Range(1, MAX_ID))
    status = DelimitedList(
        String(validate=OneOf(TICKET_STATUSES)), metadata={"description": "One status or several, comma-separated."}
    )
    category = _category()
    priority = String(validate=OneOf(TICKET_PRIORITIES))
    assignee = String(validate=Length(1, 320), metadata={"description": "An agent's e-mail."})
    conversation_id = String(validate=Length(1, 128))
    q = String(validate=Length(1, 200), metadata={"description": "Substring of subject or description."})
    limit = Integer(load_default=20, validate=Range(1, 100))
    cursor = cursor_field()


class TicketPage(Schema):
    items = List(Nested(TicketOut), required=True)
    next_cursor = Cursor(allow_none=True, metadata={"type": "string"})


class CommentIn(Schema):
    body = String(required=True, validate=Length(1, 20000))
    author_type = String(load_default="integration", validate=OneOf(COMMENT_AUTHOR_TYPES))
    author_name = String(allow_none=True, load_default=None, validate=Length(1, 200))
    public = Boolean(
        load_default=True, metadata={"description": "false makes an internal note, shown to agents only."}
    )


class CommentOut(Schema):
    id = Integer(required=True)
    ticket_number = String(required=True)
    author_type = String(required=True)
    author_name = String(allow_none=True, required=True)
    body = String(required=True)
    public = Boolean(required=True)
    created_at = DateTime(required=True)


class CommentQuery(QuerySchema):
    public_only = Boolean(load_default=False)
    limit = Integer(load_default=50, validate=Range(1, 100))
    cursor = cursor_field()


class CommentPage(Schema):
    items = List(Nested(CommentOut), required=True)
    next_cursor = Cursor(allow_none=True, metadata={"type": "string"})
