"""The rules an order's fulfilment details obey, wherever they come from
(inbound order events, the CSV import): one place, so both say the same."""

from urllib.parse import urlsplit

from marshmallow import ValidationError
from marshmallow.validate import URL

# Set by order.shipped (and order.created / order.updated, with delivered_at and the number).
SHIPPING_FIELDS = ("shipped_at", "carrier", "tracking_number", "tracking_url", "estimated_delivery")
FULFILMENT_FIELDS = ("number", *SHIPPING_FIELDS, "delivered_at")
MAX_LABEL_LENGTH = 64  # carrier, tracking number
MAX_URL_LENGTH = 2000
# Customers are sent to it: http(s) with a host name that has a dot only,
# never javascript:, data:, localhost or another bare host.
_TRACKING_URL = URL(schemes={"http", "https"}, require_tld=True)


def check_label(value: str, what: str) -> str:
    """A carrier's name or a tracking number: printable text on one line, spaces around removed."""
    text = value.strip()
    if not text or len(text) > MAX_LABEL_LENGTH or not text.isprintable():
        raise ValueError(f"{what} must be 1-{MAX_LABEL_LENGTH} printable characters on one line")
    return text


def check_tracking_url(value: str) -> str:
    text = value.strip()
    if len(text) > MAX_URL_LENGTH:
        raise ValueError(f"tracking URL longer than {MAX_URL_LENGTH} characters")
    try:
        url = _TRACKING_URL(text)
        if "." not in (urlsplit(url).hostname or "").strip("."):
            raise ValidationError("no public host name")
    except (ValidationError, ValueError):
        raise ValueError(f"tracking URL {text[:80]!r} is not an http(s) address such as https://track.example.com/123") from None
    return url
