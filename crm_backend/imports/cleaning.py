"""Cleaning single values of an imported row: each function returns the clean
value or raises ``BadValue`` with the reason a person reads in the report."""

import functools
import re
import unicodedata
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from ..models import ORDER_STATUSES, normalise_email

MAX_NAME_LENGTH = 200
MAX_PHONE_LENGTH = 40
MAX_AMOUNT = Decimal("1e12")
CURRENCY = re.compile(r"^[A-Z]{3}$")
# Lower-case ASCII local part of dot-separated atoms, and a host name with a dot.
SIMPLE_ADDRESS = re.compile(r"([a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*)@([a-z0-9-]+(?:\.[a-z0-9-]+)+)")
MAX_LOCAL_PART_LENGTH = 64
MAX_ADDRESS_LENGTH = 254
# Lower-case inside a name written in one case ("LUDWIG VAN BEETHOVEN").
NAME_PARTICLES = frozenset({"van", "von", "der", "den", "de", "del", "della", "di", "da", "das", "do", "dos", "du", "la", "le", "ten", "ter", "bin", "binti"})
ROMAN_NUMERALS = frozenset({"ii", "iii", "iv", "vi", "vii", "viii"})
APOSTROPHES = "'’"


class BadValue(ValueError):
    """A value that cannot be cleaned; ``str()`` is the reason."""


def clean_text(value: str) -> str:
    """Trimmed, NFC-normalised, with runs of whitespace (tabs, no-break spaces) as one space."""
    return " ".join(unicodedata.normalize("NFC", value).split())


def clean_name(value: str) -> str:
    """Trimmed; title-cased only when written all in capitals or all in small letters."""
    name = clean_text(value)
    if len(name) > MAX_NAME_LENGTH:
        raise BadValue(f"name longer than {MAX_NAME_LENGTH} characters")
    single_case = name in (name.lower(), name.upper()) and name.lower() != name.upper()
    return title_case_name(name) if single_case else name


def title_case_name(name: str) -> str:
    """"o'brien" -> "O'Brien", "MCDONALD" -> "McDonald", "ludwig van beethoven" -> "Ludwig van Beethoven"."""
    words = name.lower().split(" ")
    return " ".join(_title_word(word, inside=0 < index < len(words) - 1) for index, word in enumerate(words))


def _title_word(word: str, inside: bool) -> str:
    # Only between other words: "ANNA DO" is Anna Do, "JOÃO DA SILVA" João da Silva.
    if inside and word in NAME_PARTICLES:
        return word
    if word.rstrip(".") in ROMAN_NUMERALS:
        return word.upper()
    return "-".join(_title_part(part) for part in word.split("-"))


def _title_part(part: str) -> str:
    if len(part) > 2 and part[1] in APOSTROPHES:  # O'Brien, D'Angelo
        return part[0].upper() + part[1] + part[2:].capitalize()
    if len(part) > 3 and part.startswith("mc"):
        return "Mc" + part[2:].capitalize()
    return part.capitalize()


def clean_email(value: str) -> str:
    """Syntax-checked by email-validator (no DNS look-up) and lower-case, as the API stores it."""
    text = value.strip().strip("<>").strip()
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:"):]
    if not text:
        raise BadValue("no e-mail address")
    simple = _simple_address(text.lower())
    if simple is not None:
        return simple
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as error:
        raise BadValue(f"bad e-mail address {text!r}: {error}") from error
    return normalise_email(checked.normalized)


def _simple_address(address: str) -> str | None:
    """The address, if it is plain ASCII dot-atoms and email-validator accepts its domain.

    Such an address is valid exactly when its domain is, and checking the
    domain is most of email-validator's work; customer lists use few
    domains, so each is checked once. Anything else (None) gets the full check.
    """
    match = SIMPLE_ADDRESS.fullmatch(address)
    if match is None or len(match[1]) > MAX_LOCAL_PART_LENGTH or len(address) > MAX_ADDRESS_LENGTH:
        return None
    try:
        return f"{match[1]}@{_checked_domain(match[2])}"
    except EmailNotValidError:
        return None


@functools.lru_cache(maxsize=4096)
def _checked_domain(domain: str) -> str:
    return validate_email(f"x@{domain}", check_deliverability=False).domain


def clean_phone(value: str, default_region: str | None) -> str | None:
    """E.164 (+442071234567), or None when empty. Numbers without a country
    code are read as numbers of ``default_region`` (e.g. "GB")."""
    text = clean_text(value)
    if not text:
        return None
    if len(text) > MAX_PHONE_LENGTH:
        raise BadValue(f"phone number longer than {MAX_PHONE_LENGTH} characters")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as error:
        if error.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE and default_region is None:
            raise BadValue(f"phone number {text!r} has no country code (start it with +, or give a default region)") from error
        raise BadValue(f"{text!r} is not a phone number") from error
    if not phonenumbers.is_valid_number(number):
        raise BadValue(f"phone number {text!r} is not valid for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def check_region(region: str | None) -> str | None:
    """The region upper-cased if phonenumbers knows it (GB, US, DE, ...)."""
    if region is None or not region.strip():
        return None
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise BadValue(f"{region!r} is not a region code such as GB, US or DE")
    return code


def clean_amount(value: str, what: str = "amount") -> Decimal:
    """A non-negative decimal in major units with at most 3 decimal places ("19.99")."""
    text = value.strip()
    try:
        amount = Decimal(text)
    except InvalidOperation as error:
        raise BadValue(f"{what} {text!r} is not a number such as 19.99") from error
    if not amount.is_finite() or amount < 0 or amount >= MAX_AMOUNT:
        raise BadValue(f"{what} {text!r} is not between 0 and 999,999,999,999.999")
    if amount.as_tuple().exponent < -3:
        raise BadValue(f"{what} {text!r} has more than 3 decimal places")
    return amount


def clean_currency(value: str) -> str:
    code = value.strip().upper()
    if not CURRENCY.match(code):
        raise BadValue(f"currency {value.strip()!r} is not a 3-letter ISO 4217 code such as EUR")
    return code


def clean_timestamp(value: str, what: str = "date") -> datetime:
    """ISO 8601 date or date and time, as aware UTC; a date or a time without offset is UTC."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text) if len(text) > 10 else datetime.combine(date.fromisoformat(text), datetime.min.time())
        return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    except (ValueError, OverflowError) as error:  # OverflowError: year 1 or 9999 moved to UTC
        raise BadValue(f"{what} {text!r} is not ISO 8601 such as 2026-11-23 or 2026-11-23T10:15:00Z") from error


def clean_date(value: str, what: str = "date") -> date:
    """An ISO 8601 day (2026-11-23); a date and time gives its day."""
    text = value.strip()
    if len(text) > 10:
        return clean_timestamp(text, what).date()
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise BadValue(f"{what} {text!r} is not an ISO 8601 day such as 2026-11-23") from error


def clean_status(value: str, default: str = "paid") -> str:
    status = clean_text(value).lower().replace(" ", "_").replace("-", "_") or default
    if status not in ORDER_STATUSES:
        raise BadValue(f"status {value.strip()!r} is not one of {', '.join(ORDER_STATUSES)}")
    return status
