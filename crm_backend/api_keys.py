"""API keys: creation, verification and scope rules (plain functions)."""

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .db import utcnow
from .models import ApiKey

KNOWN_SCOPES = frozenset(
    {
        "tickets:read",
        "tickets:write",
        "customers:read",
        "customers:write",
        "customers:*",
        "tickets:*",
        "handoffs:write",
        "admin",
    }
)
KEY_PREFIX = "crm"
# Writing last_used_at on every request would turn each read into a write;
# minute resolution is plenty to spot unused keys.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class UnknownScopeError(ValueError):
    pass


def validate_scopes(scopes: list[str]) -> list[str]:
    """Return the scopes de-duplicated in order, or raise for unknown ones."""
    unknown = sorted(set(scopes) - KNOWN_SCOPES)
    if unknown:
        raise UnknownScopeError(
            f"unknown scope(s) {', '.join(unknown)}; known scopes are {', '.join(sorted(KNOWN_SCOPES))}"
        )
    return list(dict.fromkeys(scopes))


def grants(granted: list[str], required: str) -> bool:
    """Whether a key holding ``granted`` may act with scope ``required``."""
    if "admin" in granted or required in granted:
        return True
    area = required.split(":", 1)[0]
    return f"{area}:*" in granted


def hash_key(plain_key: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash cannot be brute-forced;
    # a slow password hash would only cost time on every request.
    return hashlib.sha256(plain_key.encode()).hexdigest()


def parse_prefix(plain_key: str) -> str | None:
    parts = plain_key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


AUDIT_FIELDS = ("name", "prefix", "scopes", "revoked_at")


def create_api_key(session: Session, name: str, scopes: list[str], commit: bool = True) -> tuple[ApiKey, str]:
    """Store a new key and return it with its plain text, which is never stored."""
    scopes = validate_scopes(scopes)
    prefix = secrets.token_hex(4)
    plain_key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey(name=name, prefix=prefix, key_hash=hash_key(plain_key), scopes=scopes)
    session.add(api_key)
    session.flush()
    audit.record(session, "api_key.created", "api_key", api_key.id, None, audit.snapshot(api_key, AUDIT_FIELDS))
    if commit:
        session.commit()
    return api_key, plain_key


def find_active_key(session: Session, plain_key: str) -> ApiKey | None:
    """The unrevoked key matching ``plain_key``, or None."""
    prefix = parse_prefix(plain_key)
    if prefix is None:
        return None
    api_key = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).one_or_none()
    if api_key is None or api_key.revoked_at is not None:
        return None
    if not hmac.compare_digest(api_key.key_hash, hash_key(plain_key)):
        return None
    return api_key


def touch(session: Session, api_key: ApiKey) -> None:
    """Record use of a key, at most once per LAST_USED_RESOLUTION."""
    now = utcnow()
    if api_key.last_used_at is not None and now - api_key.last_used_at < LAST_USED_RESOLUTION:
        return
    api_key.last_used_at = now
    session.commit()


def revoke(session: Session, api_key: ApiKey, commit: bool = True) -> None:
    before = audit.snapshot(api_key, AUDIT_FIELDS)
    api_key.revoked_at = utcnow()
    audit.record(session, "api_key.revoked", "api_key", api_key.id, *audit.changed(before, audit.snapshot(api_key, AUDIT_FIELDS)))
    if commit:
        session.commit()
