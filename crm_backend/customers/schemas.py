import base64
import binascii

from apiflask import Schema
from apiflask.fields import DateTime, Integer, List, Nested, String
from apiflask.validators import Length, Range
from marshmallow import ValidationError, fields

from ..schemas import QuerySchema


class Cursor(fields.Field):
    """An opaque page cursor; clients pass back what they were given."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return base64.urlsafe_b64encode(f"after:{value}".encode()).decode().rstrip("=")

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            label, _, after_id = raw.partition(":")
            if label != "after" or not after_id.isdigit():
                raise ValueError(raw)
        except (ValueError, binascii.Error, UnicodeDecodeError) as error:
            raise ValidationError("Invalid cursor; pass back a next_cursor from a previous page.") from error
        return int(after_id)


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
