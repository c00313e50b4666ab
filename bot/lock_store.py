"""Rasa's lock stores, letting a waiting message in as soon as the lock is free.

Configured in endpoints.yml (``type: bot.lock_store.QuickInMemoryLockStore``)
and, for the scaled profile, endpoints.scaled.yml
(``type: bot.lock_store.QuickRedisLockStore``, Rasa's ``redis`` settings).
Rasa lets one message of a conversation in at a time; a message that finds
its conversation's lock taken sleeps and looks again — every second
(``LockStore.lock``'s ``wait_time_in_seconds=1``). Over socket.io the widget
has a turn's whole reply while Rasa still holds the lock (it saves the
tracker after sending the reply), so a message sent right after a reply — a
quick customer, the widget's queue of messages typed while offline, a load
test — waited up to a second for nothing. The in-memory store looks again
every ``POLL_SECONDS`` (a dictionary read); the Redis one every
``REDIS_POLL_SECONDS`` (a GET on Rasa's event loop, so less often).
Everything else (tickets, lifetimes, order) is Rasa's own.
"""

from __future__ import annotations

from typing import Any, Optional, Text

from rasa.core.lock_store import LOCK_LIFETIME, InMemoryLockStore, RedisLockStore

POLL_SECONDS = 0.02
REDIS_POLL_SECONDS = 0.05


class QuickInMemoryLockStore(InMemoryLockStore):
    def __init__(self, endpoint_config: Optional[Any] = None) -> None:
        # Rasa passes the endpoint's settings to a custom store; this one has none.
        super().__init__()

    def lock(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME,
             wait_time_in_seconds: float = POLL_SECONDS):
        return super().lock(conversation_id, lock_lifetime, wait_time_in_seconds)


class QuickRedisLockStore(RedisLockStore):
    def __init__(self, endpoint_config: Any) -> None:
        # What Rasa does for `type: redis`: the url is the host, the rest its settings.
        super().__init__(host=endpoint_config.url, **endpoint_config.kwargs)

    def lock(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME,
             wait_time_in_seconds: float = REDIS_POLL_SECONDS):
        return super().lock(conversation_id, lock_lifetime, wait_time_in_seconds)
