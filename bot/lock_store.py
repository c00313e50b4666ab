"""Rasa's lock stores, letting a waiting message in as soon as the lock is free,
and letting a bounded number of conversations work at once, in arrival order.

Configured in endpoints.yml (``type: bot.lock_store.QuickInMemoryLockStore``)
and, for the scaled profile, endpoints.scaled.yml
(``type: bot.lock_store.QuickRedisLockStore``, Rasa's ``redis`` settings).

**Looking again sooner.** Rasa lets one message of a conversation in at a
time; a message that finds its conversation's lock taken sleeps and looks
again — every second (``LockStore.lock``'s ``wait_time_in_seconds=1``). Over
socket.io the widget has a turn's whole reply while Rasa still holds the lock
(it saves the tracker after sending the reply), so a message sent right after
a reply — a quick customer, the widget's queue of messages typed while
offline, a load test — waited up to a second for nothing. The in-memory store
looks again every ``POLL_SECONDS`` (a dictionary read); the Redis one every
``REDIS_POLL_SECONDS`` (a GET on Rasa's event loop, so less often).

**Oldest message first** (``max_concurrent``, default
``DEFAULT_MAX_CONCURRENT``). Rasa otherwise starts every message the moment
it arrives, and all of them then take turns on its one event loop at each
``await``. When more messages arrive than the process can answer, each
one's latency grows with the number of steps it needs: a turn with a form,
its validation and a CRM look-up waits its turn three or four times while
an FAQ answer waits once, and the slowest turns of a busy minute took twice
the median (docs/benchmarks.md, "Conversations"). Here, once a message holds
its conversation's lock, it takes one of ``max_concurrent`` slots, numbered
in the order messages got there; a message waiting for a slot gets the
first one freed, oldest message first. With the ``action_call_slot`` patch
(bot/patches/action_call_slot.py), while a message waits for the action
server it gives its slot up, and gets the next one freed after that — before
any newer message — so the CPU goes to finishing the oldest messages, and a
slow or hanging action server holds no slot that an FAQ answer needs. The slots
are per Rasa process (another instance of the scaled profile has its own);
``max_concurrent: 0`` turns the limit off. A message waiting for its
conversation's lock holds no slot, so a conversation's second message never
keeps a slot from another conversation.

Everything else (tickets, lifetimes, order within a conversation) is Rasa's.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
from contextlib import asynccontextmanager
from typing import Any, AsyncGenerator, List, Optional, Text, Tuple

from rasa.core.lock_store import LOCK_LIFETIME, InMemoryLockStore, RedisLockStore, TicketLock

POLL_SECONDS = 0.02
REDIS_POLL_SECONDS = 0.05
DEFAULT_MAX_CONCURRENT = 4


class ArrivalOrderSlots:
    """At most ``limit`` holders at once; a freed slot goes to the waiter with the lowest ticket.

    Tickets come from ``ticket()`` in the order messages get here; a message
    that gave its slot up keeps its ticket, so it is served again before
    every newer one. (``asyncio.Semaphore`` serves in the order of asking, and
    in Python 3.10 lets a newcomer take a slot freed while earlier waiters
    have not run yet; here a freed slot is handed to its waiter directly.)
    ``limit`` 0 or less: no limit.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        # A heap by ticket; a cancelled waiter stays in it until popped.
        self._waiters: List[Tuple[int, asyncio.Future]] = []
        self._live = 0  # waiters in the heap that still wait (neither served nor cancelled)
        self._tickets = itertools.count()

    def ticket(self) -> int:
        return next(self._tickets)

    @property
    def waiting(self) -> int:
        return self._live

    async def acquire(self, ticket: int) -> None:
        if self.limit <= 0:
            return
        if self.active < self.limit and not self.waiting:
            self.active += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (ticket, waiter))
        self._live += 1
        try:
            await waiter  # release() passes its slot on by setting the result
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # The slot was handed over just as this waiter was cancelled.
                self.release()
            else:
                self._live -= 1  # cancelled while waiting; release() skips its entry
            raise

    def release(self) -> None:
        if self.limit <= 0:
            return
        while self._waiters:
            _, waiter = heapq.heappop(self._waiters)
            if not waiter.done():
                self._live -= 1
                waiter.set_result(None)  # the slot moves on; ``active`` stays
                return
        self.active -= 1


class SlotHolder:
    """One message's place: its ticket, and whether it holds a slot right now."""

    def __init__(self, slots: ArrivalOrderSlots) -> None:
        self.slots = slots
        self.ticket = slots.ticket()
        self.held = False

    async def acquire(self) -> None:
        await self.slots.acquire(self.ticket)
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.slots.release()


# The slot holder of the message the current asyncio task is handling
# (for bot/patches/action_call_slot.py).
current_holder: contextvars.ContextVar[Optional[SlotHolder]] = contextvars.ContextVar(
    "helpdesk_lock_store_slot", default=None
)


def _max_concurrent(endpoint_config: Optional[Any]) -> int:
    kwargs = getattr(endpoint_config, "kwargs", None) or {}
    value = kwargs.pop("max_concurrent", DEFAULT_MAX_CONCURRENT)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"lock_store max_concurrent must be a whole number, not {value!r}") from None


class ArrivalOrderMixin:
    """A lock store whose ``lock`` also holds one of a bounded number of slots."""

    _slots: ArrivalOrderSlots
    _poll_seconds: float

    def _init_slots(self, limit: int) -> None:
        self._slots = ArrivalOrderSlots(limit)

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: Text,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: Optional[float] = None,
    ) -> AsyncGenerator[TicketLock, None]:
        wait = self._poll_seconds if wait_time_in_seconds is None else wait_time_in_seconds
        async with super().lock(conversation_id, lock_lifetime, wait) as ticket_lock:  # type: ignore[misc]
            holder = SlotHolder(self._slots)
            await holder.acquire()
            token = current_holder.set(holder)
            try:
                yield ticket_lock
            finally:
                current_holder.reset(token)
                holder.release()


class QuickInMemoryLockStore(ArrivalOrderMixin, InMemoryLockStore):
    _poll_seconds = POLL_SECONDS

    def __init__(self, endpoint_config: Optional[Any] = None) -> None:
        # Rasa passes the endpoint's settings to a custom store.
        super().__init__()
        self._init_slots(_max_concurrent(endpoint_config))


class QuickRedisLockStore(ArrivalOrderMixin, RedisLockStore):
    _poll_seconds = REDIS_POLL_SECONDS

    def __init__(self, endpoint_config: Any) -> None:
        limit = _max_concurrent(endpoint_config)
        # What Rasa does for `type: redis`: the url is the host, the rest its settings.
        super().__init__(host=endpoint_config.url, **endpoint_config.kwargs)
        self._init_slots(limit)
