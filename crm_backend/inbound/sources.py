"""Inbound sources and their secrets (plain functions)."""

import re
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..models import INBOUND_SOURCE_KINDS, InboundSource
from ..webhooks import signing
from ..webhooks.secrets import SecretBox

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class SourceError(ValueError):
    pass


def find(session: Session, name: str) -> InboundSource | None:
    if not NAME.match(name):
        return None
    return session.scalars(select(InboundSource).where(InboundSource.name == name)).one_or_none()


def add(session: Session, box: SecretBox, name: str, kind: str) -> tuple[InboundSource, str]:
    if not NAME.match(name):
        raise SourceError("a source name is 1-64 lower-case letters, digits, - or _, starting with a letter or digit")
    if kind not in INBOUND_SOURCE_KINDS:
        raise SourceError(f"unknown kind {kind!r}; known kinds: {', '.join(INBOUND_SOURCE_KINDS)}")
    if find(session, name) is not None:
        raise SourceError(f"there is already a source named {name!r}; use `crm inbound rotate-secret {name}` for a new secret")
    secret = signing.new_secret()
    source = InboundSource(name=name, kind=kind, secret_encrypted=box.encrypt(secret))
    session.add(source)
    session.flush()
    return source, secret


def rotate(session: Session, box: SecretBox, source: InboundSource, keep_previous_hours: float) -> str:
    """A new secret; the old one is still accepted for ``keep_previous_hours``."""
    secret = signing.new_secret()
    if keep_previous_hours > 0:
        source.previous_secret_encrypted = source.secret_encrypted
        source.previous_secret_expires_at = utcnow() + timedelta(hours=keep_previous_hours)
    else:
        source.previous_secret_encrypted = None
        source.previous_secret_expires_at = None
    source.secret_encrypted = box.encrypt(secret)
    session.flush()
    return secret


def current_secrets(box: SecretBox, source: InboundSource, now: datetime) -> list[str]:
    secrets = [box.decrypt(source.secret_encrypted)]
    if source.previous_secret_encrypted and source.previous_secret_expires_at and source.previous_secret_expires_at > now:
        secrets.append(box.decrypt(source.previous_secret_encrypted))
    return secrets
