"""What both chat channels do with a message before Rasa acts on it.

The socket.io channel (bot/channels.py) and the REST channel
(bot/rest_channel.py) differ in how a message arrives and how the answer
leaves; the rules are the same and live here: the text and metadata cleaned
and measured, the rates counted (bot/chat_limits.py), the customer's
identity decided (bot/identity.py), and a new conversation session started
when a different verified customer writes into a conversation.
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import UserMessage

from bot import identity as identity_module
from bot import lock_store
from bot import settings
from bot.chat_limits import RateLimiter, clean_metadata
from bot.identity import Identity

logger = logging.getLogger(__name__)

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]

TOO_LONG_RESPONSE = "utter_message_too_long"
SLOW_DOWN_RESPONSE = "utter_slow_down"
TOO_LONG_ERROR = "message_too_long"
RATE_LIMITED_ERROR = "rate_limited"
# If the loaded model's domain lacks the responses (an older model).
FALLBACK_TEXTS = {
    TOO_LONG_RESPONSE: "Sorry, that message is too long for me. Please keep it under {max_message_chars} characters, "
    "or split it into a few shorter messages.",
    SLOW_DOWN_RESPONSE: "You're sending messages a little fast for me. Please slow down a moment, then try again.",
}
SESSION_START_TEXT = "/session_start"


def log_id(sender_id: Any) -> Text:
    """A conversation id fit for the log: an email-shaped one (REST senders may be) as a short hash."""
    text = str(sender_id)
    if "@" in text:
        return "sha256:" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:12]
    return text[:80]


def response_text(agent: Any, name: Text, limits: settings.ChatLimits) -> Text:
    """The first text of the domain response ``name`` of the loaded model, its limits filled in."""
    text = None
    domain = getattr(agent, "domain", None)
    variations = (getattr(domain, "responses", None) or {}).get(name) or []
    for variation in variations:
        if isinstance(variation, dict) and isinstance(variation.get("text"), str):
            text = variation["text"]
            break
    text = text or FALLBACK_TEXTS[name]
    return text.replace("{max_message_chars}", str(limits.max_message_chars))


@dataclass
class Checked:
    """A message's cleaned metadata and the identity the channel decided on."""

    metadata: Dict[Text, Any]
    identity: Optional[Identity]


class ChatGuard:
    """The chat rules one channel applies, with its settings and counters."""

    def __init__(self, limits: Optional[settings.ChatLimits] = None, secret: Optional[Text] = None) -> None:
        self.limits = limits or settings.from_env().chat_limits
        self.secret = secret
        self.rates = RateLimiter(self.limits)

    @classmethod
    def from_env(cls) -> "ChatGuard":
        current = settings.from_env()
        return cls(current.chat_limits, identity_module.usable_secret(current.identity_secret))

    @staticmethod
    def queue_as(ip: Optional[Text]) -> None:
        """Names the client address of the message this task hands Rasa next, for the
        lock store's queue that is fair between addresses (bot/lock_store.py)."""
        lock_store.current_client.set(ip)

    def too_long(self, text: Text) -> bool:
        return len(text) > self.limits.max_message_chars

    async def wait_needed(self, sender_id: Text, ip: Optional[Text]) -> float:
        """0 if the message may go on, else the seconds until it could (nothing counted then)."""
        return await self.rates.take(sender_id, ip)

    def check_metadata(self, raw: Any, integration: bool = False) -> Checked:
        metadata = clean_metadata(raw, self.limits.max_metadata_bytes)
        metadata, identity = identity_module.identify(metadata, self.secret, integration=integration)
        return Checked(metadata, identity)

    def text(self, agent: Any, name: Text) -> Text:
        return response_text(agent, name, self.limits)

    async def start_session_if_identity_changed(
        self, agent: Any, message: UserMessage, identity: Optional[Identity], on_new_message: OnNewMessage
    ) -> bool:
        """Hands Rasa a ``/session_start`` before ``message`` if the conversation's
        current session was verified as someone else; True if it did.

        Only a message with a verified identity costs a tracker retrieval.
        """
        if identity is None or agent is None or not agent.is_ready():
            return False
        tracker = await agent.tracker_store.retrieve(message.sender_id)
        previous = identity_module.verified_email_of_session(tracker.events) if tracker is not None else None
        if previous is None or previous == identity.email:
            return False
        logger.info("Conversation %s: a different verified customer; starting a new session.", log_id(message.sender_id))
        await on_new_message(
            UserMessage(
                SESSION_START_TEXT,
                message.output_channel,
                message.sender_id,
                input_channel=message.input_channel,
                metadata=message.metadata,
            )
        )
        return True


_guards: "weakref.WeakKeyDictionary[Any, ChatGuard]" = weakref.WeakKeyDictionary()


def guard_for(on_new_message: OnNewMessage) -> ChatGuard:
    """The one guard (settings, counters) of all channels of one Rasa server.

    Rasa hands every channel's ``blueprint`` the same message handler
    (``rasa.core.channels.channel.register``), so a conversation or an
    address counts the same whether it writes over socket.io or REST.
    """
    try:
        guard = _guards.get(on_new_message)
    except TypeError:  # not weak-referenceable: a guard of its own
        return ChatGuard.from_env()
    if guard is None:
        guard = _guards[on_new_message] = ChatGuard.from_env()
    return guard
