"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

Outbound: ``signed_headers`` signs with the ``standardwebhooks`` library.
Inbound: ``verify`` checks a request the way that library does, but with
the clock passed in, strict base64 and no exception other than
``SignatureError`` for any malformed header (the library raises ValueError
or binascii.Error on some). tests/backend/test_webhooks_signing.py checks
with hypothesis that both accept exactly the same well-formed requests.
"""

import base64
import binascii
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
# Receivers reject older or newer signatures (the spec's default, and the
# library's); inbound requests are held to the same.
TOLERANCE_SECONDS = 5 * 60
_MESSAGE_ID = re.compile(r"^[\x21-\x7e]{1,255}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


class SignatureError(Exception):
    """The request is not signed by a known secret, or too old or too new."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def is_secret(value: str) -> bool:
    if not value.startswith(SECRET_PREFIX):
        return False
    try:
        return len(base64.b64decode(value[len(SECRET_PREFIX):], validate=True)) >= 16
    except (binascii.Error, ValueError):
        return False


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return Webhook(secret).sign(message_id, moment, body.decode("utf-8"))


def signed_headers(secrets_: Iterable[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers; one signature per secret (rotation)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(secret, message_id, timestamp, body) for secret in secrets_),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise SignatureError(f"the {name} header is missing")
    return value.strip()


def verify(secrets_: Iterable[str], body: bytes, headers: Mapping[str, str], *, now: float) -> str:
    """The request's webhook-id if one of ``secrets_`` signed it within the tolerance.

    ``headers`` must look names up case-insensitively (werkzeug's do).
    """
    message_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if not _MESSAGE_ID.match(message_id):
        raise SignatureError("the webhook-id header must be 1-255 printable ASCII characters")
    if not _TIMESTAMP.match(timestamp):
        raise SignatureError("the webhook-timestamp header must be whole seconds since 1970")
    age = now - int(timestamp)
    if age > TOLERANCE_SECONDS:
        raise SignatureError("the webhook-timestamp is more than 5 minutes old; replays are refused")
    if age < -TOLERANCE_SECONDS:
        raise SignatureError("the webhook-timestamp is more than 5 minutes in the future")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SignatureError("the body is not UTF-8, so it cannot carry a valid signature") from error
    offered = []
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version != "v1":
            continue
        try:
            offered.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    for secret in secrets_:
        expected = base64.b64decode(sign(secret, message_id, int(timestamp), body).split(",", 1)[1])
        if any(hmac.compare_digest(expected, signature) for signature in offered):
            return message_id
    raise SignatureError("no webhook-signature matches the body and a current secret of this source")
