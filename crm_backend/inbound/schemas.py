"""What inbound events must carry. Unknown fields are ignored: senders add fields over time."""

from decimal import Decimal

from apiflask import Schema
from apiflask.fields import AwareDateTime, Date, Dict, Integer, Nested, String
from apiflask.validators import Length, OneOf, Regexp
from marshmallow import EXCLUDE, ValidationError, fields, validates_schema

from ..orders import fulfilment
from ..orders.numbers import normalise_order_number
from ..schemas import EmailAddress

MAX_AMOUNT = Decimal("1e12")


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class ExternalId(fields.Field):
    """An id in the other system: a string or a whole number, kept as a string."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValidationError("An id is a string or a whole number.")
        text = str(value).strip()
        if not 1 <= len(text) <= 64:
            raise ValidationError("An id is 1-64 characters.")
        return text


class Money(fields.Decimal):
    """An amount in major units (19.99), exact: a JSON number or a decimal string."""

    def __init__(self, **kwargs):
        super().__init__(as_string=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, (bool, float)):
            # json.loads(parse_float=Decimal) leaves no floats; guard all the same.
            raise ValidationError("Give the amount as a decimal string or a JSON number.")
        amount = super()._deserialize(value, attr, data, **kwargs)
        if amount < 0 or amount >= MAX_AMOUNT:
            raise ValidationError("The amount must be between 0 and 999,999,999,999.999.")
        if amount.as_tuple().exponent < -3:
            raise ValidationError("At most 3 decimal places.")
        return amount


class Currency(String):
    def __init__(self, **kwargs):
        super().__init__(validate=Regexp(r"^[A-Za-z]{3}$", error="An ISO 4217 code such as EUR."), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).upper()


class InboundCustomer(_Lenient):
    email = EmailAddress(required=True, validate=Length(max=320))
    name = String(validate=Length(1, 200), allow_none=True, load_default=None)


FULFILMENT_STATUSES = ("placed", "paid", "fulfilled")
SHIPPING_FIELDS, FULFILMENT_FIELDS = fulfilment.SHIPPING_FIELDS, fulfilment.FULFILMENT_FIELDS


class OrderNumber(fields.Field):
    """The number the customer knows the order by, in any accepted form; stored as NW-100234."""

    def _deserialize(self, value, attr, data, **kwargs):
        number = normalise_order_number(value) if isinstance(value, str) else None
        if number is None:
            raise ValidationError("An order number such as NW-100234 (or 100234, #100234): 3-12 digits.")
        return number


class Label(String):
    """A carrier's name or a tracking number (crm_backend/orders/fulfilment.py)."""

    def __init__(self, what: str, **kwargs):
        self.what = what
        kwargs.setdefault("metadata", {}).update(minLength=1, maxLength=fulfilment.MAX_LABEL_LENGTH)
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return fulfilment.check_label(super()._deserialize(value, attr, data, **kwargs), self.what)
        except ValueError as error:
            raise ValidationError(str(error).capitalize() + ".") from None


class TrackingUrl(String):
    """A link customers are sent to: http(s) only (crm_backend/orders/fulfilment.py)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {}).update(format="uri", maxLength=fulfilment.MAX_URL_LENGTH)
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return fulfilment.check_tracking_url(super()._deserialize(value, attr, data, **kwargs))
        except ValueError as error:
            raise ValidationError(str(error).capitalize() + ".") from None


class _Fulfilment(_Lenient):
    """Optional on order.created and order.updated; null or absent leaves a value as it is."""

    number = OrderNumber(allow_none=True, load_default=None, metadata={"description": "The number the customer knows."})
    shipped_at = AwareDateTime(allow_none=True, load_default=None)
    carrier = Label("carrier", allow_none=True, load_default=None)
    tracking_number = Label("tracking number", allow_none=True, load_default=None)
    tracking_url = TrackingUrl(allow_none=True, load_default=None)
    estimated_delivery = Date(allow_none=True, load_default=None)
    delivered_at = AwareDateTime(allow_none=True, load_default=None)


class OrderCreated(_Fulfilment):
    id = ExternalId(required=True)
    customer = Nested(InboundCustomer, required=True)
    amount = Money(required=True)
    currency = Currency(required=True)
    ordered_at = AwareDateTime(required=True)
    status = String(load_default="paid", validate=OneOf(FULFILMENT_STATUSES))


class OrderRefunded(_Lenient):
    id = ExternalId(required=True)
    # Cumulative, not the increment: a repeated or re-sent event changes nothing.
    amount_refunded = Money(allow_none=True, load_default=None)
    refunded_at = AwareDateTime(allow_none=True, load_default=None)


class OrderUpdated(_Fulfilment):
    id = ExternalId(required=True)
    # Any of these; a status only moves forward (placed -> paid -> fulfilled).
    status = String(allow_none=True, load_default=None, validate=OneOf(FULFILMENT_STATUSES))
    amount = Money(allow_none=True, load_default=None)
    currency = Currency(allow_none=True, load_default=None)

    @validates_schema
    def _something_to_change(self, data, **kwargs):
        if all(data.get(name) is None for name in ("status", "amount", *FULFILMENT_FIELDS)):
            raise ValidationError("Give the new status, the new amount, the number or fulfilment (shipped_at, carrier, ...).", "_schema")


class OrderShipped(_Lenient):
    """The order left the warehouse: status fulfilled, with the parcel's carrier and tracking."""

    id = ExternalId(required=True)
    shipped_at = AwareDateTime(allow_none=True, load_default=None)
    carrier = Label("carrier", allow_none=True, load_default=None)
    tracking_number = Label("tracking number", allow_none=True, load_default=None)
    tracking_url = TrackingUrl(allow_none=True, load_default=None)
    estimated_delivery = Date(allow_none=True, load_default=None)


class OrderDelivered(_Lenient):
    id = ExternalId(required=True)
    delivered_at = AwareDateTime(allow_none=True, load_default=None)


class OrderCancelled(_Lenient):
    id = ExternalId(required=True)
    cancelled_at = AwareDateTime(allow_none=True, load_default=None)


class MessageReceived(_Lenient):
    sender = EmailAddress(data_key="from", required=True, validate=Length(max=320))
    name = String(validate=Length(1, 200), allow_none=True, load_default=None)
    subject = String(load_default="", validate=Length(0, 998))
    text = String(required=True, validate=Length(1, 20000))
    ticket = String(allow_none=True, load_default=None, validate=Length(1, 32))


class Envelope(_Lenient):
    type = String(required=True, validate=Length(1, 64))
    timestamp = String(allow_none=True, load_default=None)
    data = Dict(required=True)


EVENT_TYPES_DOC = (
    "order.created", "order.updated", "order.shipped", "order.delivered", "order.refunded", "order.cancelled", "message.received",
)


class InboundEventDoc(Schema):
    """The request body, for the OpenAPI document (validated per type in the view)."""

    type = String(required=True, validate=OneOf(EVENT_TYPES_DOC))
    timestamp = String(metadata={"description": "When the event happened (ISO 8601)."})
    data = Dict(
        required=True,
        metadata={
            "description": "order.created: {id, customer: {email, name}, amount, currency, ordered_at, status, number, "
            "and optionally the fulfilment fields below}; "
            "order.updated: {id, status (placed, paid, fulfilled; forward only), amount, currency, number, shipped_at, "
            "carrier, tracking_number, tracking_url, estimated_delivery (YYYY-MM-DD), delivered_at}; "
            "order.shipped: {id, shipped_at (default now), carrier, tracking_number, tracking_url, estimated_delivery}; "
            "order.delivered: {id, delivered_at (default now)}; "
            "order.refunded: {id, amount_refunded (total so far; default all), refunded_at}; "
            "order.cancelled: {id, cancelled_at}; "
            "message.received: {from, name, subject, text, ticket}. See docs/webhooks.md."
        },
    )


class InboundHeadersDoc(Schema):
    webhook_id = String(data_key="webhook-id", metadata={"description": "Unique per event; a repeat is answered without a second effect."})
    webhook_timestamp = String(data_key="webhook-timestamp", metadata={"description": "Seconds since 1970; older than 5 minutes is refused."})
    webhook_signature = String(data_key="webhook-signature", metadata={"description": "v1,<base64 HMAC-SHA256 of id.timestamp.body> with the source's secret."})


class InboundResult(Schema):
    status = String(required=True, validate=OneOf(("processed", "duplicate")))
    webhook_id = String(required=True)
    type = String(required=True)
    order_id = Integer(allow_none=True, required=True)
    ticket = String(allow_none=True, required=True, metadata={"description": "The ticket commented on or opened."})
    comment_id = Integer(allow_none=True, required=True)
