"""Every chat message's size, shape and rate, checked by both channels before NLU.

One sender must not be able to stop, slow or flood the assistant for the
others (docs/security.md). Before a message reaches Rasa (before
``on_new_message``, so before NLU, the tracker and the actions) the socket.io
and REST channels:

- **clean its text**: NUL bytes removed, lone UTF-16 surrogates (``"\\ud800"``,
  which JSON allows and every UTF-8 encoder refuses) replaced by U+FFFD;
- **clean its metadata**: anything but a JSON object (or, for socket.io's
  ``customData``, a string holding one) becomes ``{}``; the same characters
  cleaned in keys and strings; an object nested deeper than
  ``MAX_METADATA_DEPTH`` or larger than ``CHAT_MAX_METADATA_BYTES`` (as
  UTF-8 JSON) is dropped to ``{}`` with a log line;
- **count it** against a token bucket for its conversation (sender id) and
  one for its client's IP address, and refuse it when either is empty;
- **measure it**: longer than ``CHAT_MAX_MESSAGE_CHARS`` characters (after
  cleaning) gets one polite reply instead of an answer.

Settings: ``CHAT_MAX_MESSAGE_CHARS``, ``CHAT_MAX_METADATA_BYTES``, the
``CHAT_SENDER_*`` and ``CHAT_IP_*`` rates (0 turns a rate limit off) and
``CHAT_RATE_LIMIT_REDIS_URL``, read when the channel is built (bot/settings.py,
``ChatLimits``, with their defaults).

**Client address.** The socket's peer address (Sanic's ``request.ip``; the
socket.io environ's ``REMOTE_ADDR`` is always ``127.0.0.1`` under Sanic).
When the peer is the machine itself (``127.0.0.1`` or ``::1``: nginx of the
scaled profile, or a local proxy) and the request has ``X-Forwarded-For``,
the *last* address of that header is taken: the one the local proxy itself
appended, which a client cannot forge (earlier entries can be). A proxy on
another machine is not trusted: its clients share its address.

**Redis.** With ``CHAT_RATE_LIMIT_REDIS_URL`` both buckets of a message are
taken in one Lua script (one round trip), so several Rasa instances count
together. If Redis fails, counting goes on in the process (said once in the
log) and Redis is tried again 30 s later.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from typing import Any, Dict, List, Optional, Sequence, Text, Tuple

from bot.settings import ChatLimits

logger = logging.getLogger(__name__)

MAX_METADATA_DEPTH = 8
# Nothing honest is larger; parsed neither by the REST channel nor by
# engine.io (whose own limit, max_http_buffer_size, is 1,000,000 bytes).
MAX_BODY_BYTES = 1_000_000
REDIS_RETRY_SECONDS = 30.0
REDIS_TIMEOUT_SECONDS = 0.5
# In-process buckets: past this many, the full ones (idle long enough to be
# back at their burst) are forgotten.
MAX_LOCAL_BUCKETS = 20_000
LOCAL_ADDRESSES = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})

UNSAFE_CHARS = re.compile("[\x00\ud800-\udfff]")


# --- text and metadata -----------------------------------------------------


def _replace_unsafe(match: "re.Match[str]") -> Text:
    return "" if match.group() == "\x00" else "\ufffd"


def clean_text(text: Text) -> Text:
    """``text`` without NUL bytes, its lone surrogates replaced by U+FFFD."""
    if UNSAFE_CHARS.search(text) is None:
        return text  # the common case: no copy
    return UNSAFE_CHARS.sub(_replace_unsafe, text)


class _Unfit(Exception):
    """Metadata too deep, too large or not JSON."""


def _clean_value(value: Any, depth: int, budget: List[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise _Unfit("too large")
    if isinstance(value, str):
        budget[0] -= len(value)
        if budget[0] < 0:
            raise _Unfit("too large")
        return clean_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise _Unfit("not JSON")
        return value
    if depth > MAX_METADATA_DEPTH:
        raise _Unfit("too deep")
    if isinstance(value, dict):
        cleaned = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Unfit("not JSON")
            budget[0] -= len(key)
            cleaned[clean_text(key)] = _clean_value(item, depth + 1, budget)
        return cleaned
    if isinstance(value, list):
        return [_clean_value(item, depth + 1, budget) for item in value]
    raise _Unfit("not JSON")  # bytes (socket.io binary), tuples, ...


def clean_metadata(raw: Any, max_bytes: int) -> Dict[Text, Any]:
    """A message's metadata as a clean JSON object, or ``{}`` when it is not fit to keep.

    A string is parsed as JSON (socket.io's ``customData`` may be one). The
    top-level object counts as depth 1.
    """
    if raw is None:
        return {}
    if isinstance(raw, str):
        if len(raw) > max_bytes:
            logger.info("Metadata dropped: %d characters of JSON text, over %d bytes.", len(raw), max_bytes)
            return {}
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            logger.info("Metadata dropped: a string that is not JSON.")
            return {}
    if not isinstance(raw, dict):
        return {}
    try:
        cleaned = _clean_value(raw, 1, [max_bytes])
        size = len(json.dumps(cleaned, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    except _Unfit as unfit:
        logger.info("Metadata dropped: %s (limits: %d bytes, depth %d).", unfit, max_bytes, MAX_METADATA_DEPTH)
        return {}
    if size > max_bytes:
        logger.info("Metadata dropped: %d bytes, over %d.", size, max_bytes)
        return {}
    return cleaned


def client_ip(peer: Optional[Text], forwarded_for: Optional[Text]) -> Text:
    """The address a message counts against (module docstring, "Client address")."""
    peer = peer or ""
    if peer in LOCAL_ADDRESSES and forwarded_for:
        last_hop = forwarded_for.rsplit(",", 1)[-1].strip()
        if last_hop:
            return last_hop[:64]
    return peer or "unknown"


# --- rates ---------------------------------------------------------------

Bucket = Tuple[Text, int, float]  # key, burst, tokens per second

# KEYS: the buckets; ARGV: now, then burst and rate per bucket. Takes one
# token from every bucket if each has one; else takes none and returns how
# long until all would have one. A number as text: Redis would cut a Lua
# number to an integer.
TAKE_SCRIPT = """
local now = tonumber(ARGV[1])
local wait = 0
local tokens = {}
for i, key in ipairs(KEYS) do
  local burst = tonumber(ARGV[2 * i])
  local rate = tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local level = tonumber(state[1])
  local at = tonumber(state[2])
  if level == nil or at == nil then
    level = burst
  else
    level = math.min(burst, level + math.max(0, now - at) * rate)
  end
  tokens[i] = level
  if level < 1 then
    wait = math.max(wait, (1 - level) / rate)
  end
end
if wait == 0 then
  for i, key in ipairs(KEYS) do
    local burst = tonumber(ARGV[2 * i])
    local rate = tonumber(ARGV[2 * i + 1])
    redis.call('HSET', key, 'tokens', tokens[i] - 1, 'at', now)
    redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
  end
end
return tostring(wait)
"""


class LocalBuckets:
    """Token buckets in this process's memory."""

    def __init__(self) -> None:
        # key -> (tokens, when counted, when it will be full again)
        self._buckets: Dict[Text, Tuple[float, float, float]] = {}

    def take(self, buckets: Sequence[Bucket], now: Optional[float] = None) -> float:
        now = time.monotonic() if now is None else now
        levels = []
        wait = 0.0
        for key, burst, rate in buckets:
            level, at, _ = self._buckets.get(key, (float(burst), now, now))
            level = min(float(burst), level + max(0.0, now - at) * rate)
            levels.append(level)
            if level < 1:
                wait = max(wait, (1 - level) / rate)
        if wait:
            return wait
        if len(self._buckets) > MAX_LOCAL_BUCKETS:
            self._forget_full(now)
        for (key, burst, rate), level in zip(buckets, levels):
            self._buckets[key] = (level - 1, now, now + (burst - level + 1) / rate)
        return 0.0

    def _forget_full(self, now: float) -> None:
        # A bucket idle long enough to be full again is the same as none.
        self._buckets = {key: state for key, state in self._buckets.items() if state[2] > now}
        if len(self._buckets) > MAX_LOCAL_BUCKETS:
            self._buckets.clear()  # an address-spraying flood: start over rather than grow


class RateLimiter:
    """Per-conversation and per-address token buckets, in Redis when configured."""

    def __init__(self, limits: ChatLimits) -> None:
        self.limits = limits
        self.local = LocalBuckets()
        self._redis: Any = None
        self._script: Any = None
        self._redis_down_until = 0.0
        self._redis_failed = False

    def buckets(self, sender_id: Text, ip: Optional[Text]) -> List[Bucket]:
        limits = self.limits
        buckets: List[Bucket] = []
        if limits.sender_burst and limits.sender_per_minute:
            buckets.append((f"sender:{sender_id}", limits.sender_burst, limits.sender_per_minute / 60.0))
        if ip is not None and limits.ip_burst and limits.ip_per_minute:
            buckets.append((f"ip:{ip}", limits.ip_burst, limits.ip_per_minute / 60.0))
        return buckets

    async def take(self, sender_id: Text, ip: Optional[Text]) -> float:
        """0 if the message may go on (one token taken from each bucket), else seconds to wait.

        ``ip`` None: no per-address limit (a trusted integration).
        """
        buckets = self.buckets(sender_id, ip)
        if not buckets:
            return 0.0
        if self.limits.redis_url and time.monotonic() >= self._redis_down_until:
            try:
                return await self._take_in_redis(buckets)
            except Exception as error:  # noqa: BLE001 - any Redis trouble: count here instead
                self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
                if not self._redis_failed:
                    self._redis_failed = True
                    logger.warning(
                        "Chat rate limits: Redis failed (%s); counting in this process until it answers again.",
                        type(error).__name__,
                    )
        return self.local.take(buckets)

    async def _take_in_redis(self, buckets: Sequence[Bucket]) -> float:
        if self._redis is None:
            from redis import asyncio as redis_asyncio

            self._redis = redis_asyncio.from_url(
                self.limits.redis_url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            self._script = self._redis.register_script(TAKE_SCRIPT)
        keys = [self.limits.redis_prefix + key for key, _, _ in buckets]
        args: List[Any] = [repr(time.time())]
        for _key, burst, rate in buckets:
            args += [burst, repr(rate)]
        wait = float(await self._script(keys=keys, args=args))
        if self._redis_failed:
            self._redis_failed = False
            logger.info("Chat rate limits: Redis answers again; counting there.")
        return wait


def retry_after_seconds(wait: float) -> int:
    return max(1, math.ceil(wait))
