from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from webargs.fields import DelimitedList

from ..db import MAX_ID
from ..models import HANDOFF_MESSAGE_SENDERS, HANDOFF_STATUSES
from ..schemas import Cursor, EmailAddress, QuerySchema, cursor_field

MAX_TRANSCRIPT_MESSAGES = 500


class TranscriptLine(Schema):
    sender = String(required=True, validate=OneOf(HANDOFF_MESSAGE_SENDERS))
    text = String(required=True, validate=Length(0, 20000))
    timestamp = DateTime(allow_none=True, load_default=None)


class HandoffIn(Schema):
    conversation_id = String(
        required=True, validate=Length(1, 128), metadata={"description": "The chat conversation (Rasa sender id)."}
    )
    reason = String(required=True, validate=Length(1, 2000), metadata={"description": "Why the customer wants a person."})
    customer_id = Integer(validate=Range(1, MAX_ID), metadata={"description": "An existing customer; or give customer_email."})
    customer_email = EmailAddress(
        validate=Length(max=320),
        metadata={"description": "The customer's e-mail; a new customer is created if none has it."},
    )
    customer_name = String(validate=Length(1, 200))
    ticket = String(
        allow_none=True,
        load_default=None,
        validate=Length(1, 32),
        metadata={"description": "A ticket this conversation is about: id or number (TCK-000123)."},
    )
    channel = String(load_default="chat", validate=Length(1, 32))
    customer_verified = Boolean(
        load_default=False,
        metadata={
            "description": "True only when the visitor proved the customer's address (a signed identity); "
            "false for an address they only typed: the console then warns the agent not to share account details."
        },
    )
    transcript = List(
        Nested(TranscriptLine),
        load_default=list,
        validate=Length(max=MAX_TRANSCRIPT_MESSAGES),
        metadata={"description": "The conversation so far, oldest first."},
    )


class AgentAction(Schema):
    agent_email = EmailAddress(
        required=True,
        metadata={"description": "The agent on whose behalf the API key acts (an agent's e-mail)."},
    )


class AgentMessageIn(AgentAction):
    text = String(required=True, validate=Length(1, 5000))


class HandoffMessageOut(Schema):
    id = Integer(required=True)
    sender = String(required=True, validate=OneOf(HANDOFF_MESSAGE_SENDERS))
    agent_name = String(allow_none=True, required=True)
    text = String(required=True)
    created_at = DateTime(required=True)


class TranscriptLineOut(Schema):
    sender = String(required=True)
    text = String(required=True)
    timestamp = String(allow_none=True)


class HandoffOut(Schema):
    id = Integer(required=True)
    conversation_id = String(required=True)
    status = String(required=True, validate=OneOf(HANDOFF_STATUSES))
    reason = String(required=True)
    category = String(required=True)
    category_confidence = Float(allow_none=True, required=True)
    channel = String(required=True)
    customer_id = Integer(required=True)
    customer_email = String(required=True)
    customer_name = String(required=True)
    customer_verified = Boolean(
        required=True, metadata={"description": "Whether the visitor proved the customer's address (a signed identity)."}
    )
    ticket = String(attribute="ticket_number", allow_none=True, required=True)
    agent = String(attribute="agent_email", allow_none=True, required=True)
    agent_name = String(allow_none=True, required=True)
    created_at = DateTime(required=True)
    claimed_at = DateTime(allow_none=True, required=True)
    resolved_at = DateTime(allow_none=True, required=True)
    wait_seconds = Float(allow_none=True, required=True, metadata={"description": "Queued until claimed."})
    handle_seconds = Float(allow_none=True, required=True, metadata={"description": "Claimed until resolved."})


class HandoffDetail(HandoffOut):
    transcript = List(Nested(TranscriptLineOut), required=True)
    messages = List(Nested(HandoffMessageOut), required=True, metadata={"description": "Every message after the handoff."})


class AvailabilityOut(Schema):
    within_hours = Boolean(required=True, metadata={"description": "Inside the support hours (SUPPORT_HOURS)."})
    agents_online = Integer(required=True, metadata={"description": "Agents with the console open right now."})
    available = Boolean(required=True, metadata={"description": "Within hours and someone online: a person will answer soon."})
    hours = String(required=True, metadata={"example": "mon-fri 08:00-18:00; sat 09:00-14:00"})


class QueuePlaceOut(Schema):
    position = Integer(allow_none=True, required=True, metadata={"description": "1: next to be claimed."})
    expected_wait_seconds = Float(
        allow_none=True,
        required=True,
        metadata={
            "description": "The median wait (requested → claimed) of the handoffs claimed in the last 28 days; "
            "null with fewer than 3 of them."
        },
    )


class HandoffCreated(HandoffDetail):
    availability = Nested(AvailabilityOut, required=True, metadata={"description": "Whether a person is there to answer now."})
    queue = Nested(QueuePlaceOut, required=True, metadata={"description": "The handoff's place in the queue and the expected wait."})


class HandoffQuery(QuerySchema):
    status = DelimitedList(
        String(validate=OneOf(HANDOFF_STATUSES)), metadata={"description": "One status or several, comma-separated."}
    )
    conversation_id = String(validate=Length(1, 128))
    customer_email = String(validate=Length(1, 320))
    agent = String(validate=Length(1, 320), metadata={"description": "The claiming agent's e-mail."})
    limit = Integer(load_default=20, validate=Range(1, 100))
    cursor = cursor_field()


class HandoffPage(Schema):
    items = List(Nested(HandoffOut), required=True)
    next_cursor = Cursor(allow_none=True, metadata={"type": "string"})
