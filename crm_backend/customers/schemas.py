from apiflask import Schema
from apiflask.fields import DateTime, Integer, List, Nested, String
from apiflask.validators import Length, Range

from ..schemas import Cursor, EmailAddress, PhoneNumber, QuerySchema  # noqa: F401  (Cursor re-exported)


class CustomerQuery(QuerySchema):
    email = String(metadata={"description": "Exact e-mail address, case-insensitive."})
    q = String(validate=Length(1, 200), metadata={"description": "Substring of name or e-mail."})
    limit = Integer(load_default=20, validate=Range(1, 100))
    cursor = Cursor(metadata={"description": "next_cursor of the previous page.", "type": "string"})


class CustomerOut(Schema):
    id = Integer(required=True)
    name = String(required=True)
    email = String(required=True)
    phone = String(allow_none=True, metadata={"description": "E.164, e.g. +442071234567"})
    created_at = DateTime(required=True)
    updated_at = DateTime(required=True)


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
