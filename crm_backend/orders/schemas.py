import base64
import binascii
from datetime import datetime, timezone
from decimal import Decimal

from apiflask import Schema
from apiflask.fields import Date, DateTime, Function, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from marshmallow import ValidationError, fields
from webargs.fields import DelimitedList

from ..db import MAX_ID
from ..models import ORDER_STATUSES
from ..schemas import QuerySchema
from .service import DELIVERY_STATES, delivery_overdue, delivery_state

TWO_PLACES, THREE_PLACES = Decimal("0.01"), Decimal("0.001")
# Microseconds since 1970 of year 9999: bounds what a cursor may hold.
MAX_MICROS = 253402300799999999


class OrderCursor(fields.Field):
    """An opaque page cursor holding the last order's (ordered_at, id)."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        ordered_at, order_id = value
        return base64.urlsafe_b64encode(f"order:{_micros(ordered_at)}:{order_id}".encode()).decode().rstrip("=")

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            if not isinstance(value, str) or len(value) > 100:
                raise ValueError(value)
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            label, micros, order_id = raw.split(":")
            if label != "order" or not _digits(micros, 18) or not _digits(order_id, 10):
                raise ValueError(raw)
            if int(micros) > MAX_MICROS or not 0 < int(order_id) <= MAX_ID:
                raise ValueError(raw)
        except (ValueError, binascii.Error, UnicodeDecodeError) as error:
            raise ValidationError("Invalid cursor; pass back a next_cursor from a previous page.") from error
        seconds, rest = divmod(int(micros), 1_000_000)
        return datetime.fromtimestamp(seconds, timezone.utc).replace(microsecond=rest), int(order_id)


class Money(fields.Field):
    """An exact amount as a decimal string: two places, three when the third is used (64.90, 1.005)."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        two = value.quantize(TWO_PLACES)
        return str(two if two == value else value.quantize(THREE_PLACES))


def _micros(moment: datetime) -> int:
    # Exact: no float rounding of microseconds.
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _digits(text: str, most: int) -> bool:
    return text.isascii() and text.isdigit() and 1 <= len(text) <= most


class OrderOut(Schema):
    id = Integer(required=True)
    number = String(
        allow_none=True,
        required=True,
        metadata={"example": "NW-100234", "description": "The number the customer knows; null when the shop sent none."},
    )
    source = String(required=True, metadata={"description": "Where the order came from: an inbound source's name, `import`, `demo`."})
    external_id = String(required=True, metadata={"description": "The order's id at its source."})
    customer_id = Integer(required=True)
    customer_email = String(required=True)
    status = String(
        required=True,
        validate=OneOf(ORDER_STATUSES),
        metadata={"description": "The shop's status: placed, paid, fulfilled (shipped), partially_refunded, refunded, cancelled."},
    )
    delivery_state = Function(
        delivery_state,
        required=True,
        metadata={
            "type": "string",
            "enum": list(DELIVERY_STATES),
            "description": "Where the order is, for telling the customer: placed (not paid yet), preparing (paid, not "
            "shipped), shipped, delivered, cancelled, refunded (all of it; a partial refund keeps the delivery state).",
        },
    )
    delivery_overdue = Function(
        lambda order: delivery_overdue(order),
        required=True,
        metadata={"type": "boolean", "description": "Shipped, not delivered, and the estimated delivery day has passed."},
    )
    amount = Money(required=True, metadata={"type": "string", "description": "Major units, exact (a decimal string).", "example": "64.90"})
    currency = String(required=True, metadata={"example": "GBP"})
    ordered_at = DateTime(required=True)
    refunded_amount = Money(required=True, metadata={"type": "string", "description": "Refunded so far, in the order's currency.", "example": "0.00"})
    refunded_at = DateTime(allow_none=True, required=True)
    cancelled_at = DateTime(allow_none=True, required=True)
    shipped_at = DateTime(allow_none=True, required=True)
    carrier = String(allow_none=True, required=True, metadata={"example": "DPD"})
    tracking_number = String(allow_none=True, required=True)
    tracking_url = String(allow_none=True, required=True, metadata={"format": "uri", "description": "An http(s) link to the carrier's tracking page."})
    estimated_delivery = Date(allow_none=True, required=True, metadata={"description": "The day the shop expects it delivered."})
    delivered_at = DateTime(allow_none=True, required=True)
    updated_at = DateTime(required=True)


class OrderQuery(QuerySchema):
    customer_email = String(validate=Length(1, 320), metadata={"description": "Exact e-mail, case-insensitive."})
    customer_id = Integer(validate=Range(1, MAX_ID))
    status = DelimitedList(
        String(validate=OneOf(ORDER_STATUSES)),
        validate=Length(min=1, error="Give one status or several, comma-separated."),
        metadata={"description": "One status or several, comma-separated."},
    )
    limit = Integer(load_default=20, validate=Range(1, 100))
    cursor = OrderCursor(metadata={"description": "next_cursor of the previous page.", "type": "string"})


class OrderPage(Schema):
    items = List(Nested(OrderOut), required=True)
    next_cursor = OrderCursor(allow_none=True, metadata={"type": "string"})


class OrderLookupQuery(QuerySchema):
    customer_email = String(
        validate=Length(1, 320),
        metadata={
            "description": "Only this customer's order: with another address the answer is the same 404 as for a "
            "number nobody has (a guest's look-up: number plus the order's e-mail)."
        },
    )
