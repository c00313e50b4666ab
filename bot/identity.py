"""Who the customer is: a host site's signed identity, checked by the channel.

The host site's backend signs who is logged in as a JWT (HS256, key
``CHAT_IDENTITY_SECRET``'s text as written) with the claims ``email``
(required), ``name``, ``external_id``, ``iat`` and ``exp`` (required, at most
24 hours ahead). The socket.io channel reads it from
``customData.identity_token``, the REST channel from
``metadata.identity_token`` (docs/security.md).

The channels decide who the customer is, here, before Rasa sees the
message: any ``identity`` or ``identity_token`` a client put in the metadata
is removed (a token is never stored in the tracker), and a verified identity
is added as ``metadata["identity"]`` (``verified: True``, ``via: "token"``, or
``"integration"`` for a REST integration holding the channel token). The
actions only ask actions/customer_identity.py whether the conversation's newest
message carries one. An unsigned ``metadata.email`` stays a mere claim.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Optional, Text

import jwt

logger = logging.getLogger(__name__)

SECRET_SETTING = "CHAT_IDENTITY_SECRET"
TOKEN_KEY = "identity_token"
IDENTITY_KEY = "identity"

ALGORITHM = "HS256"
MAX_TOKEN_CHARS = 4096
MAX_LIFETIME_SECONDS = 24 * 3600
# Clocks of the host site and of this server may disagree a little.
LEEWAY_SECONDS = 60
MAX_NAME_CHARS = 200
MAX_EXTERNAL_ID_CHARS = 200
MAX_EMAIL_CHARS = 254

# A practical address check (no library in the bot environment does it):
# one "@", a local part without spaces or separators, a domain of dotted
# labels (letters of any script, digits, hyphens) with at least one dot.
EMAIL = re.compile(
    r"[^@\s<>()\[\],;:\"\\\x00-\x1f\x7f]{1,64}@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_](?:[\w-]{0,61}[^\W_])?",
)
# Lone UTF-16 surrogates and NUL bytes: valid in a Python string, refused by
# PostgreSQL, UTF-8 encoders and most JSON consumers downstream.
UNSAFE_CHARS = re.compile("[\x00\ud800-\udfff]")

_warned_no_secret = False


@dataclass(frozen=True)
class Identity:
    """A customer whose identity someone we trust vouched for."""

    email: Text
    name: Optional[Text] = None
    external_id: Optional[Text] = None
    via: Text = "token"  # "token" (the host site signed it) or "integration" (REST channel token)

    def as_metadata(self) -> Dict[Text, Any]:
        return {"email": self.email, "name": self.name, "external_id": self.external_id, "verified": True, "via": self.via}


def usable_secret(secret: Optional[Text]) -> Optional[Text]:
    """``CHAT_IDENTITY_SECRET`` as read (bot/settings.py), or None (then no identity token verifies; said once in the log)."""
    global _warned_no_secret
    if secret:
        return secret
    if not _warned_no_secret:
        _warned_no_secret = True
        logger.warning(
            "%s is not set: no customer identity token can be verified, every chat customer is anonymous.",
            SECRET_SETTING,
        )
    return None


def normal_email(value: Any) -> Optional[Text]:
    """``value`` lowercased if it is a usable email address, else None."""
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    if len(email) > MAX_EMAIL_CHARS or not EMAIL.fullmatch(email):
        return None
    return email


def _optional_text(value: Any, max_chars: int) -> Optional[Text]:
    """A short, clean optional string claim; raises ValueError for any other type."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("not a string")
    value = UNSAFE_CHARS.sub("", value).strip()[:max_chars]
    return value or None


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


@functools.lru_cache(maxsize=4096)
def _signed_claims(token: Text, secret: Text) -> Optional[Dict[Text, Any]]:
    """The claims of a token with a valid HS256 signature, else None.

    Kept for the next messages: the widget sends the same token with every
    message, and checking it is most of the channel's own work per message.
    Times are checked by the caller, against its ``now``; the dict is shared,
    read it only.
    """
    try:
        claims = jwt.decode(
            token,
            secret.encode("utf-8"),
            algorithms=[ALGORITHM],
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False, "verify_iss": False},
        )
    except Exception:  # noqa: BLE001 - forged, malformed, wrong algorithm: all mean "no identity"
        return None
    return claims if isinstance(claims, dict) else None


def verify_identity_token(token: Any, secret: Optional[Text], now: Optional[float] = None) -> Optional[Identity]:
    """The identity a host site signed in ``token``; None for anything not right.

    HS256 only (``alg: none`` and every other algorithm are refused); ``exp``
    required, in the future and at most 24 h (+60 s) ahead; ``iat``, if
    given, not more than 60 s in the future; ``email`` required and a valid
    address (lowercased); ``name`` and ``external_id`` optional strings.
    """
    if not secret or not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        return None
    now = time.time() if now is None else now
    claims = _signed_claims(token, secret)
    if claims is None:
        return None
    expires = _number(claims.get("exp"))
    if expires is None or expires <= now or expires > now + MAX_LIFETIME_SECONDS + LEEWAY_SECONDS:
        return None
    for claim in ("iat", "nbf"):
        if claim in claims:
            issued = _number(claims[claim])
            if issued is None or issued > now + LEEWAY_SECONDS:
                return None
    email = normal_email(claims.get("email"))
    if email is None:
        return None
    try:
        name = _optional_text(claims.get("name"), MAX_NAME_CHARS)
        external_id = _optional_text(claims.get("external_id"), MAX_EXTERNAL_ID_CHARS)
    except ValueError:
        return None
    return Identity(email=email, name=name, external_id=external_id, via="token")


def integration_identity(metadata: Dict[Text, Any]) -> Optional[Identity]:
    """What a trusted integration asserts in ``metadata.email`` / ``metadata.name``."""
    email = normal_email(metadata.get("email"))
    if email is None:
        return None
    try:
        name = _optional_text(metadata.get("name"), MAX_NAME_CHARS)
    except ValueError:
        name = None
    return Identity(email=email, name=name, via="integration")


def identify(
    metadata: Dict[Text, Any], secret: Optional[Text], integration: bool = False, now: Optional[float] = None
) -> tuple[Dict[Text, Any], Optional[Identity]]:
    """``metadata`` without what the client said about its identity, with the identity verified, if any.

    Returns the new metadata (``metadata`` is not changed) and the identity.
    A valid identity token wins; otherwise an integration's ``email``.
    """
    cleaned = {key: value for key, value in metadata.items() if key not in (IDENTITY_KEY, TOKEN_KEY)}
    identity = verify_identity_token(metadata.get(TOKEN_KEY), secret, now)
    if identity is None and integration:
        identity = integration_identity(metadata)
    if identity is not None:
        cleaned[IDENTITY_KEY] = identity.as_metadata()
    return cleaned, identity


def verified_email_of_session(events: Iterable[Any]) -> Optional[Text]:
    """The email of the newest verified identity since the conversation's last session start.

    ``events`` are a tracker's (Rasa's ``retrieve`` gives the latest session);
    the same rule as actions/customer_identity.py's ``verified_identity``.
    """
    from rasa.shared.core.events import SessionStarted, UserUttered

    for event in reversed(list(events)):
        if isinstance(event, SessionStarted):
            return None
        if isinstance(event, UserUttered):
            identity = (event.metadata or {}).get(IDENTITY_KEY)
            if isinstance(identity, dict) and identity.get("verified") is True and isinstance(identity.get("email"), str):
                return identity["email"]
    return None
