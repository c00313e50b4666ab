from apiflask import Schema
from apiflask.fields import DateTime, Decimal, Dict, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from ..models import LOYALTY_TIERS

from ..schemas import Cursor, EmailAddress, PhoneNumber, QuerySchema  # noqa: F401  (Cursor re-exported)


class CustomerQuery(QuerySchema):
    email = String(metadata={"description": "Exact e-mail address, case-insensitive."})
    q = String(validate=Length(1, 200), metadata={"description": "Substring of name or e-mail."})
    loyalty_tier = String(validate=OneOf(LOYALTY_TIERS))
    segment = String(validate=Length(1, 64), metadata={"description": "A segment's name, e.g. loyal high spenders."})
    min_churn_risk = Float(validate=Range(0, 1), metadata={"description": "Customers whose churn risk is at least this (0-1)."})
    limit = Integer(load_default=20, validate=Range(1, 100))
    cursor = Cursor(metadata={"description": "next_cursor of the previous page.", "type": "string"})


class CustomerOut(Schema):
    id = Integer(required=True)
    name = String(required=True)
    email = String(required=True)
    phone = String(allow_none=True, metadata={"description": "E.164, e.g. +442071234567"})
    created_at = DateTime(required=True)
    updated_at = DateTime(required=True)
    # Insights (docs/insights.md): null until first computed.
    lifetime_value = Decimal(
        as_string=True,
        places=2,
        allow_none=True,
        required=True,
        metadata={"type": "string", "example": "1520.00", "description": "Discounted value of the next years' net orders, in INSIGHTS_CURRENCY."},
    )
    loyalty_score = Integer(allow_none=True, required=True, metadata={"description": "0-100 from recency, frequency and spend."})
    loyalty_tier = String(allow_none=True, required=True, validate=OneOf(LOYALTY_TIERS), metadata={"description": "gold from 90, silver from 70."})
    churn_risk = Float(allow_none=True, required=True, metadata={"description": "0-1: chance of no order in the next CHURN_DAYS."})
    segment = String(allow_none=True, required=True, metadata={"example": "loyal high spenders"})
    insights = Dict(allow_none=True, required=True, metadata={"description": "The inputs and strongest reasons behind the figures."})
    insights_updated_at = DateTime(allow_none=True, required=True)


class CustomerPage(Schema):
    items = List(Nested(CustomerOut), required=True)
    next_cursor = Cursor(allow_none=True, metadata={"type": "string"})


class CustomerIn(Schema):
    name = String(required=True, validate=Length(1, 200))
    email = EmailAddress(required=True, validate=Length(max=320))
    phone = PhoneNumber(allow_none=True, load_default=None)


class CustomerPatch(Schema):
    name = String(validate=Length(1, 200))
    email = EmailAddress(validate=Length(max=320))
    phone = PhoneNumber(allow_none=True)
