"""Signed customer identities, as a host site's backend makes them (docs/security.md)."""

from __future__ import annotations

import time

import jwt  # PyJWT, in both environments


def sign_identity(secret: str, email: str, name: str | None = None, seconds: float = 3600, **claims) -> str:
    """A signed customer identity (JWT HS256) for ``email``, valid ``seconds``."""
    now = int(time.time())
    payload = {"email": email, "iat": now, "exp": now + int(seconds), **claims}
    if name is not None:
        payload["name"] = name
    return jwt.encode(payload, secret, algorithm="HS256")
