"""Schema helpers shared by the API blueprints."""

import base64
import binascii

import phonenumbers
from apiflask import Schema
from apiflask.fields import String
from email_validator import EmailNotValidError, validate_email
from marshmallow import ValidationError, fields, validates_schema

from .db import MAX_ID
from .models import normalise_email


class QuerySchema(Schema):
    """Query-string schema that rejects parameters it does not declare.

    webargs excludes unknown query keys on purpose (pages often carry
    tracking parameters); for an API a typo should fail loudly instead.
    """

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _reject_unknown(self, data, original, **kwargs):
        declared = {field.data_key or name for name, field in self.fields.items()}
        unknown = sorted(set(original.keys()) - declared)
        if unknown:
            raise ValidationError({key: ["Unknown parameter."] for key in unknown})


class Cursor(fields.Field):
    """An opaque page cursor; clients pass back what they were given."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return base64.urlsafe_b64encode(f"after:{value}".encode()).decode().rstrip("=")

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            label, _, after_id = raw.partition(":")
            if label != "after" or not after_id.isascii() or not after_id.isdigit() or len(after_id) > 18:
                raise ValueError(raw)
            if int(after_id) > MAX_ID:
                raise ValueError(raw)
        except (ValueError, binascii.Error, UnicodeDecodeError) as error:
            raise ValidationError("Invalid cursor; pass back a next_cursor from a previous page.") from error
        return int(after_id)


def cursor_field() -> Cursor:
    return Cursor(metadata={"description": "next_cursor of the previous page.", "type": "string"})


class EmailAddress(String):
    """An e-mail address checked by email-validator and stored lower-case."""

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {}).setdefault("format", "email")
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            # No DNS lookups: a request must not wait on the network.
            checked = validate_email(text, check_deliverability=False)
        except EmailNotValidError as error:
            raise ValidationError(str(error)) from error
        return normalise_email(checked.normalized)


class PhoneNumber(String):
    """A phone number in international form, stored as E.164 (+442071234567)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {}).setdefault("example", "+442071234567")
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > 40:
            raise ValidationError("Not a phone number: too long.")
        try:
            number = phonenumbers.parse(text, None)
        except phonenumbers.NumberParseException as error:
            raise ValidationError(
                "Not a phone number in international form; start with + and the country code."
            ) from error
        if not phonenumbers.is_valid_number(number):
            raise ValidationError("Not a valid phone number for its country code.")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class IdempotencyHeaders(Schema):
    idempotency_key = String(
        data_key="Idempotency-Key",
        validate=lambda value: _check_idempotency_key(value),
        metadata={
            "description": "Any unique string (a UUID is best), 1-255 printable ASCII characters. "
            "Retrying with the same key and body replays the first response instead of creating again.",
            "minLength": 1,
            "maxLength": 255,
            "pattern": "^[\\x21-\\x7e]{1,255}$",
        },
    )


def _check_idempotency_key(value: str) -> bool:
    if not 1 <= len(value) <= 255 or not all("\x21" <= char <= "\x7e" for char in value):
        raise ValidationError("Must be 1-255 printable ASCII characters without spaces.")
    return True
