from apiflask import Schema
from apiflask.fields import DateTime, Float, Integer, List, Nested, String
from apiflask.validators import Length, Range

from ..db import MAX_ID
from ..schemas import Cursor, EmailAddress, QuerySchema, cursor_field


class FeedbackIn(Schema):
    score = Integer(required=True, strict=True, validate=Range(1, 5), metadata={"description": "1 (very unhappy) to 5 (very happy)."})
    comment = String(allow_none=True, load_default=None, validate=Length(0, 5000))
    conversation_id = String(allow_none=True, load_default=None, validate=Length(1, 128))
    customer_id = Integer(validate=Range(1, MAX_ID))
    customer_email = EmailAddress(
        validate=Length(max=320), metadata={"description": "A new customer is created if none has this e-mail."}
    )
    customer_name = String(validate=Length(1, 200))
    handoff_id = Integer(
        allow_none=True,
        load_default=None,
        validate=Range(1, MAX_ID),
        metadata={"description": "The handoff this score rates; by default the conversation's latest resolved one."},
    )
    channel = String(load_default="chat", validate=Length(1, 32))


class FeedbackOut(Schema):
    id = Integer(required=True)
    score = Integer(required=True)
    comment = String(allow_none=True, required=True)
    category = String(allow_none=True, required=True, metadata={"description": "The comment's classified need."})
    category_confidence = Float(allow_none=True, required=True)
    conversation_id = String(allow_none=True, required=True)
    customer_id = Integer(allow_none=True, required=True)
    customer_email = String(allow_none=True, required=True)
    handoff_id = Integer(allow_none=True, required=True)
    agent = String(attribute="agent_email", allow_none=True, required=True)
    channel = String(required=True)
    created_at = DateTime(required=True)


class FeedbackQuery(QuerySchema):
    conversation_id = String(validate=Length(1, 128))
    customer_email = String(validate=Length(1, 320))
    max_score = Integer(validate=Range(1, 5), metadata={"description": "Only scores up to this (e.g. 2 for the unhappy)."})
    limit = Integer(load_default=20, validate=Range(1, 100))
    cursor = cursor_field()


class FeedbackPage(Schema):
    items = List(Nested(FeedbackOut), required=True)
    next_cursor = Cursor(allow_none=True, metadata={"type": "string"})
