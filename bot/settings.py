"""Every setting the bot's code reads from the environment, with its default and meaning.

The Rasa process reads these (``${...}`` values in endpoints.yml and
credentials.yml are Rasa's own business). ``from_env()`` reads them all at
once; each part reads them when it starts, not at import: the patches when
``bot`` is first imported (bot/patches/__init__.py), the chat limits and the
identity secret when a channel is built, the socket.io rooms when the
socket.io channel is built, the NLU worker's switch when the server has
loaded its model.

``BOT_PATCHES`` (``all``)
    runtime patches of Rasa: ``all``, ``off``, or names separated by commas
    (the registry in bot/patches/__init__.py lists them).
``BOT_NLU_WORKER`` (``1``)
    ``0`` parses every message in the server's process, even where the
    ``nlu_worker`` patch is on (the scaled profile: its instances fill the cores).
``BOT_NLU_WORKER_TIMEOUT`` (``5``)
    seconds one parse in the NLU worker may take before the server parses the
    message itself.
``CHAT_IDENTITY_SECRET`` (unset)
    key of the host site's signed identity tokens and of the socket.io session
    tokens; unset, every chat customer is anonymous (docs/security.md).
``SOCKETIO_REDIS_URL`` (unset)
    socket.io rooms shared by the Rasa instances through this Redis; unset, the
    rooms are in the process.
``SOCKETIO_REDIS_CHANNEL`` (``helpdesk-socketio``)
    the Redis pub/sub channel those instances share.
``CHAT_MAX_MESSAGE_CHARS`` (``2000``)
    longest message text, in characters.
``CHAT_MAX_METADATA_BYTES`` (``4096``)
    largest metadata, UTF-8 JSON bytes.
``CHAT_SENDER_BURST`` (``20``), ``CHAT_SENDER_PER_MINUTE`` (``60``)
    messages a conversation may send at once, and its steady rate after that
    (0: no limit).
``CHAT_IP_BURST`` (``600``), ``CHAT_IP_PER_MINUTE`` (``3600``)
    the same for one client address.
``CHAT_RATE_LIMIT_REDIS_URL`` (unset)
    rate-limit counters in this Redis, shared by the instances; unset, in the
    process.
``CHAT_RATE_LIMIT_REDIS_PREFIX`` (``helpdesk:chat-rate:``)
    key prefix of those counters (deployments sharing one Redis).

A value that is not what its setting needs (a word where a number goes) is
said in the log and the default used instead, so a typo does not stop
the assistant; ``BOT_PATCHES`` names are checked by the patch registry.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Text, TypeVar

logger = logging.getLogger(__name__)

N = TypeVar("N", int, float)

DEFAULT_REDIS_CHANNEL = "helpdesk-socketio"
REDIS_KEY_PREFIX = "helpdesk:chat-rate:"


@dataclass(frozen=True)
class ChatLimits:
    """The chat limits (bot/chat_limits.py): sizes of a message and rates of conversations and addresses."""

    max_message_chars: int = 2000
    max_metadata_bytes: int = 4096
    sender_burst: int = 20
    sender_per_minute: int = 60
    ip_burst: int = 600
    ip_per_minute: int = 3600
    redis_url: Optional[Text] = None
    # Deployments (or test stacks) sharing one Redis keep their counts apart.
    redis_prefix: Text = REDIS_KEY_PREFIX


@dataclass(frozen=True)
class BotSettings:
    """The settings of the module's table, typed."""

    patches: Text = "all"
    nlu_worker: bool = True
    nlu_worker_timeout: float = 5.0
    identity_secret: Optional[Text] = None
    socketio_redis_url: Optional[Text] = None
    socketio_redis_channel: Text = DEFAULT_REDIS_CHANNEL
    chat_limits: ChatLimits = field(default_factory=ChatLimits)


def _text(environ: Mapping[Text, Text], name: Text) -> Optional[Text]:
    return environ.get(name, "").strip() or None


def _number(environ: Mapping[Text, Text], name: Text, default: N, parse: Callable[[Text], N], what: Text) -> N:
    """``parse`` of the value of ``name``; ``default`` if unset, or (said in the log) if ``parse`` refuses it."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError:
        logger.warning("%s=%r is not %s; using %s.", name, raw, what, default)
        return default


def _whole_number(raw: Text) -> int:
    return max(0, int(raw))


def _seconds(raw: Text) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError(raw)
    return value


def _switch(environ: Mapping[Text, Text], name: Text, default: bool) -> bool:
    if name not in environ:
        return default
    return environ[name].strip().lower() not in ("0", "false", "no", "off", "")


def from_env(environ: Optional[Mapping[Text, Text]] = None) -> BotSettings:
    """The settings in ``environ`` (the process's environment by default)."""
    env = os.environ if environ is None else environ
    limits = ChatLimits()

    def whole(name: Text, default: int) -> int:
        return _number(env, name, default, _whole_number, "a whole number")

    return BotSettings(
        patches=env.get("BOT_PATCHES", "").strip() or BotSettings.patches,
        nlu_worker=_switch(env, "BOT_NLU_WORKER", BotSettings.nlu_worker),
        nlu_worker_timeout=_number(
            env, "BOT_NLU_WORKER_TIMEOUT", BotSettings.nlu_worker_timeout, _seconds, "a number of seconds above 0"
        ),
        # The secret is used as written: spaces may be part of it.
        identity_secret=env.get("CHAT_IDENTITY_SECRET") or None,
        socketio_redis_url=_text(env, "SOCKETIO_REDIS_URL"),
        socketio_redis_channel=_text(env, "SOCKETIO_REDIS_CHANNEL") or DEFAULT_REDIS_CHANNEL,
        chat_limits=ChatLimits(
            max_message_chars=whole("CHAT_MAX_MESSAGE_CHARS", limits.max_message_chars),
            max_metadata_bytes=whole("CHAT_MAX_METADATA_BYTES", limits.max_metadata_bytes),
            sender_burst=whole("CHAT_SENDER_BURST", limits.sender_burst),
            sender_per_minute=whole("CHAT_SENDER_PER_MINUTE", limits.sender_per_minute),
            ip_burst=whole("CHAT_IP_BURST", limits.ip_burst),
            ip_per_minute=whole("CHAT_IP_PER_MINUTE", limits.ip_per_minute),
            redis_url=_text(env, "CHAT_RATE_LIMIT_REDIS_URL"),
            redis_prefix=_text(env, "CHAT_RATE_LIMIT_REDIS_PREFIX") or REDIS_KEY_PREFIX,
        ),
    )
