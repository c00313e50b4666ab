from apiflask import Schema
import json

from apiflask.fields import Boolean, DateTime, Float, Integer, List, Method, Nested, String
from apiflask.validators import Length, OneOf, Range

from ..models import DELIVERY_STATUSES, WEBHOOK_EVENT_TYPES
from ..schemas import Cursor, QuerySchema, cursor_field

ENDPOINT_STATUSES = ("active", "failing", "disabled")


def _events(**kwargs) -> List:
    return List(
        String(validate=OneOf(WEBHOOK_EVENT_TYPES)),
        validate=Length(1, len(WEBHOOK_EVENT_TYPES) * 4),
        metadata={"description": "The event types to receive.", "example": ["ticket.created", "ticket.updated"]},
        **kwargs,
    )


def _url(**kwargs) -> String:
    return String(
        validate=Length(1, 2000),
        metadata={
            "description": "An http(s) URL on a public address (private, loopback and link-local targets "
            "are refused unless the server sets WEBHOOK_ALLOW_PRIVATE=1).",
            "example": "https://hooks.example.com/northwind",
        },
        **kwargs,
    )


class WebhookIn(Schema):
    url = _url(required=True)
    events = _events(required=True)
    description = String(load_default="", validate=Length(0, 500))
    enabled = Boolean(load_default=True)


class WebhookPatch(Schema):
    url = _url()
    events = _events()
    description = String(validate=Length(0, 500))
    enabled = Boolean(metadata={"description": "false pauses deliveries; pending ones resume when enabled again."})


class WebhookOut(Schema):
    id = Integer(required=True)
    url = String(required=True)
    description = String(required=True)
    events = List(String(), required=True)
    enabled = Boolean(required=True)
    status = String(
        required=True,
        validate=OneOf(ENDPOINT_STATUSES),
        metadata={"description": "failing after WEBHOOK_FAILING_AFTER (default 5) failed attempts in a row, until one succeeds."},
    )
    consecutive_failures = Integer(required=True)
    failing_since = DateTime(allow_none=True, required=True)
    last_success_at = DateTime(allow_none=True, required=True)
    last_failure_at = DateTime(allow_none=True, required=True)
    last_error = String(allow_none=True, required=True)
    secret_rotated_at = DateTime(allow_none=True, required=True)
    previous_secret_expires_at = DateTime(
        allow_none=True, required=True, metadata={"description": "Until then deliveries carry a second signature made with the previous secret."}
    )
    created_at = DateTime(required=True)
    updated_at = DateTime(required=True)


class WebhookWithSecretOut(WebhookOut):
    secret = String(
        required=True,
        metadata={"description": "whsec_<base64>: verify deliveries with it. Shown only in this response.", "example": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
    )


class RotateSecretIn(Schema):
    keep_previous_seconds = Integer(
        load_default=24 * 3600,
        validate=Range(0, 7 * 24 * 3600),
        metadata={"description": "How long the old secret still signs (as a second signature); 0 stops it at once."},
    )


class WebhookQuery(QuerySchema):
    limit = Integer(load_default=20, validate=Range(1, 100))
    cursor = cursor_field()


class WebhookPage(Schema):
    items = List(Nested(WebhookOut), required=True)
    next_cursor = Cursor(allow_none=True, metadata={"type": "string"})


class DeliveryOut(Schema):
    id = Integer(required=True)
    endpoint_id = Integer(required=True)
    message_id = String(required=True, metadata={"description": "The webhook-id header: the same on every retry and redelivery."})
    event_type = String(required=True)
    resource = String(attribute="resource_key", required=True, metadata={"example": "ticket:42"})
    status = String(required=True, validate=OneOf(DELIVERY_STATUSES))
    attempt_count = Integer(required=True)
    next_attempt_at = DateTime(allow_none=True, required=True)
    last_attempt_at = DateTime(allow_none=True, required=True)
    last_status_code = Integer(allow_none=True, required=True)
    last_error = String(allow_none=True, required=True)
    delivered_at = DateTime(allow_none=True, required=True)
    created_at = DateTime(required=True)


class AttemptOut(Schema):
    id = Integer(required=True)
    attempted_at = DateTime(required=True)
    duration_ms = Float(required=True)
    status_code = Integer(allow_none=True, required=True)
    error = String(allow_none=True, required=True)
    response_body = String(allow_none=True, required=True, metadata={"description": "The first KiB of the answer."})


class DeliveryDetail(DeliveryOut):
    payload = Method("_payload", required=True, metadata={"type": "object", "description": "The body that is sent."})
    attempts = List(Nested(AttemptOut), required=True, metadata={"description": "Oldest first."})

    def _payload(self, delivery) -> dict:
        return json.loads(delivery.event.payload)


class DeliveryQuery(QuerySchema):
    status = String(validate=OneOf(DELIVERY_STATUSES))
    event_type = String(validate=OneOf(WEBHOOK_EVENT_TYPES))
    limit = Integer(load_default=20, validate=Range(1, 100))
    cursor = cursor_field()


class DeliveryPage(Schema):
    items = List(Nested(DeliveryOut), required=True)
    next_cursor = Cursor(allow_none=True, metadata={"type": "string"})

