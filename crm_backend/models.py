"""ORM models. Schema changes go through Alembic (crm_backend/migrations)."""

import re
from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column, validates

from .db import Base, UTCDateTime, utcnow

E164 = re.compile(r"^\+[1-9]\d{1,14}$")


def normalise_email(email: str) -> str:
    # Stored lower-case so that the unique constraint is case-insensitive on
    # every backend without functional indexes.
    return email.strip().lower()


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    phone: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @validates("email")
    def _normalise_email(self, key: str, email: str) -> str:
        return normalise_email(email)

    @validates("phone")
    def _check_phone(self, key: str, phone: str | None) -> str | None:
        if phone is not None and not E164.match(phone):
            raise ValueError(f"phone {phone!r} is not in E.164 form (+ and up to 15 digits)")
        return phone

    def __repr__(self) -> str:
        return f"<Customer {self.id} {self.email}>"


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # The public part of the key, used to find the row without scanning hashes.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<ApiKey {self.prefix} {self.name}>"
