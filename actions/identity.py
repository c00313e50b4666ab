"""Who is writing: the one place actions ask (docs/security.md, DESIGN "Customer identity").

The channel (``bot/``) decides who the customer is. When the host site signed
the visitor's identity (or a trusted integration asserted it) the channel
puts ``{"email", "name", "external_id", "verified": True, "via"}`` in the
message's metadata as ``identity``; it removes any ``identity`` a client sent
itself. Everything else a conversation says about an email address (an
address typed in the chat, an unsigned ``metadata.email``, a sender id that
looks like an address) is only a *claim*: enough to open a ticket whose
replies go to that address, never enough to be shown anything personal.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from rasa_sdk import Tracker

# Deliberately loose: the CRM does the real validation; this only decides
# whether a value is worth treating as an address at all.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: Any) -> Optional[str]:
    email = value.strip().lower() if isinstance(value, str) else ""
    return email if EMAIL_PATTERN.match(email) else None


def verified_identity(tracker: Tracker) -> Optional[dict[str, Any]]:
    """The identity the channel verified in this session, or ``None``.

    The ``identity`` of the newest user message since the session started
    whose metadata says ``verified: True``; its ``email`` lower-cased.
    """
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "session_started":
            return None
        if kind != "user":
            continue
        identity = (event.get("metadata") or {}).get("identity")
        if not isinstance(identity, dict) or identity.get("verified") is not True:
            continue
        email = _email(identity.get("email"))
        if email:
            return {**identity, "email": email}
    return None


def verified_email(tracker: Tracker) -> Optional[str]:
    identity = verified_identity(tracker)
    return identity["email"] if identity else None


def claimed_email(tracker: Tracker) -> Optional[str]:
    """An address the conversation *claims*: the ``customer_email`` slot, the
    unsigned ``email`` of the latest message's metadata, or an email-shaped
    sender id, in that order. It may open a ticket, nothing more."""
    user_event = tracker.get_last_event_for("user") or {}
    candidates = (
        tracker.get_slot("customer_email"),
        (user_event.get("metadata") or {}).get("email"),
        tracker.sender_id,
    )
    for candidate in candidates:
        email = _email(candidate)
        if email:
            return email
    return None
