"""Who is writing: the one place actions ask (docs/security.md, "customer identity" in docs/architecture.md).

The channel (``bot/``) decides who the customer is. When the host site signed
the visitor's identity (or a trusted integration asserted it) the channel
puts ``{"email", "name", "external_id", "verified": True, "via"}`` in the
message's metadata as ``identity``; it removes any ``identity`` a client sent
itself. Everything else a conversation says about an email address (an
address typed in the chat, an unsigned ``metadata.email``, a sender id that
looks like an address) is only a *claim*: enough to open a ticket whose
replies go to that address, never enough to be shown anything personal.

Every flow asks here (greeting, tickets, handoffs, ticket status, feedback);
forms that ask for ``customer_email`` share ``KnownEmailMixin``.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

NAME_LENGTH = 60

# Deliberately loose: the CRM does the real validation; this only decides
# whether a value is worth treating as an address at all.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def clean_name(name: Any) -> str:
    """One line, not too long, and never an email address dressed up as a name."""
    text = " ".join(str(name or "").split())[:NAME_LENGTH]
    return "" if "@" in text else text


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


def name_for(tracker: Tracker, email: Optional[str]) -> Optional[str]:
    """The customer's name to send with ``email``: only the verified
    customer's own, never a name paired with someone else's address."""
    identity = verified_identity(tracker)
    if not email or not identity or email != identity["email"]:
        return None
    return tracker.get_slot("customer_name") or clean_name(identity.get("name")) or None


def proves_email(tracker: Tracker, email: Optional[str]) -> bool:
    """Whether this conversation proved ``email``: a verified identity with
    that very address. A typed or otherwise claimed address never does; the
    CRM records the difference and the console warns the agent."""
    identity = verified_identity(tracker)
    address = email.strip().lower() if isinstance(email, str) else ""
    return bool(identity and address and address == identity["email"])


class KnownEmailMixin:
    """Email handling every form that needs ``customer_email`` shares."""

    async def extract_customer_email(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Don't ask for an email the conversation already gave us: the
        verified customer's, else a claimed one (the sender id or the host
        page's unsigned metadata). A claim is enough for replies to go to
        that address, which is all these forms do with it."""
        if tracker.get_slot("customer_email"):
            return {}
        email = verified_email(tracker) or claimed_email(tracker)
        return {"customer_email": email} if email else {}

    def validate_customer_email(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        email = str(value or "").strip().lower()
        if EMAIL_PATTERN.match(email):
            return {"customer_email": email}
        dispatcher.utter_message(response="utter_invalid_email", customer_email=str(value or ""))
        return {"customer_email": None}
