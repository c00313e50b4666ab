"""API keys: creation, verification and scope rules (plain functions)."""

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, current_app, has_app_context
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
        "handoffs:read",
        "handoffs:write",
        "handoffs:*",
        "feedback:read",
        "feedback:write",
        "feedback:*",
        "webhooks:read",
        "webhooks:write",
        "webhooks:*",
        "analytics:read",
        "orders:read",
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


@dataclass(frozen=True)
class VerifiedKey:
    """What a request needs of the key that authenticated it (no database row)."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]

    @classmethod
    def of(cls, api_key: ApiKey) -> "VerifiedKey":
        return cls(api_key.id, api_key.name, api_key.prefix, tuple(api_key.scopes))


class VerifiedKeyCache:
    """Keys verified against the database in the last ``seconds``, by SHA-256 of the key.

    Every request carries its key; looking it up costs a query and an ORM
    row, more than the rest of a lookup. A key verified within ``seconds``
    is trusted again without the database. Only keys that passed the full
    check are stored, so presenting unknown keys cannot fill the cache.
    ``revoke`` forgets a key at once in its own process; other worker
    processes notice within ``seconds``. 0 turns the cache off.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self.clock = clock
        self._entries: dict[str, tuple[float, VerifiedKey]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> VerifiedKey | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        expires_at, verified = entry
        if self.clock() >= expires_at:
            self.forget(key_hash)
            return None
        return verified

    def put(self, key_hash: str, verified: VerifiedKey) -> None:
        if self.seconds <= 0:
            return
        with self._lock:
            now = self.clock()
            # Expired keys are only ever few (one per key in use); drop them here.
            for stale in [h for h, (expires_at, _) in self._entries.items() if expires_at <= now]:
                del self._entries[stale]
            self._entries[key_hash] = (now + self.seconds, verified)

    def forget(self, key_hash: str) -> None:
        with self._lock:
            self._entries.pop(key_hash, None)


def verified_keys() -> VerifiedKeyCache:
    """The current app's cache of verified keys."""
    return current_app.extensions["crm_verified_keys"]


def init_app(app: Flask) -> None:
    # How long a worker trusts a key it verified: CRM_API_KEY_CACHE_SECONDS.
    app.extensions["crm_verified_keys"] = VerifiedKeyCache(float(app.config["API_KEY_CACHE_SECONDS"]))


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


def verify(session: Session, plain_key: str) -> VerifiedKey | None:
    """The key a request presents, checked against the cache or the database.

    On a database check the key's last use is recorded (see ``touch``).
    """
    key_hash = hash_key(plain_key)
    cache = verified_keys()
    verified = cache.get(key_hash)
    if verified is not None:
        return verified
    api_key = find_active_key(session, plain_key)
    if api_key is None:
        return None
    touch(session, api_key)
    verified = VerifiedKey.of(api_key)
    cache.put(key_hash, verified)
    return verified


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


def revoke(session: Session, api_key: ApiKey, commit: bool = True, note: dict | None = None) -> None:
    """Revoke a key: at once in this process, within the cache's seconds in the others.

    ``note`` joins the audit event's "after" (e.g. that it was the bot's key, confirmed).
    """
    before = audit.snapshot(api_key, AUDIT_FIELDS)
    api_key.revoked_at = utcnow()
    old, new = audit.changed(before, audit.snapshot(api_key, AUDIT_FIELDS))
    audit.record(session, "api_key.revoked", "api_key", api_key.id, old, {**new, **(note or {})})
    if commit:
        session.commit()
    cache = current_app.extensions.get("crm_verified_keys") if has_app_context() else None
    if cache is not None:
        cache.forget(api_key.key_hash)
