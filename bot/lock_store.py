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

**Fair between addresses.** Oldest first alone lets one address that
floods under many conversation ids (each within its own rate limit) fill the
queue, so a customer elsewhere waits behind all of it (bench.chat_abuse's
"flood-rotating": 2.5 s for a bystander's reply). So a message's place is
not its arrival alone: the channels name the client address of the message
they hand Rasa (``current_client``, bot/chat_guard.py), and each address's
messages are numbered in a virtual time of their own (start-time fair
queuing): an address's next message comes one step after the later of its
previous message and the message served last. An address with one message
waiting is thus served next, however many another address has queued;
messages of one address keep their arrival order, and with a single address
(every benchmark, a busy office behind one address) the order is arrival
order as before.

Everything else (tickets, lifetimes, order within a conversation) is Rasa's.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
from contextlib import asynccontextmanager
from typing import Any, AsyncGenerator, Dict, List, Optional, Text, Tuple

from rasa.core.lock_store import LOCK_LIFETIME, InMemoryLockStore, RedisLockStore, TicketLock

POLL_SECONDS = 0.02
REDIS_POLL_SECONDS = 0.05
DEFAULT_MAX_CONCURRENT = 4
# Addresses remembered by the fair queue before those with nothing waiting are forgotten.
MAX_CLIENTS_REMEMBERED = 1000

Ticket = Tuple[int, int]  # (the address's virtual time, arrival number)

# The client address of the message the current asyncio task hands Rasa; the
# channels set it (bot/chat_guard.py), the lock store reads it for the fair queue.
current_client: contextvars.ContextVar[Optional[Text]] = contextvars.ContextVar("helpdesk_client", default=None)


class ArrivalOrderSlots:
    """At most ``limit`` holders at once; a freed slot goes to the waiter with the lowest ticket.

    Tickets come from ``ticket(client)`` as messages get here: the client's
    virtual time (module docstring, "Fair between addresses"), then the
    arrival number; a message that gave its slot up keeps its ticket, so it is
    served again before every newer one of its address. (``asyncio.Semaphore`` serves in the order of asking, and
    in Python 3.10 lets a newcomer take a slot freed while earlier waiters
    have not run yet; here a freed slot is handed to its waiter directly.)
    ``limit`` 0 or less: no limit.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        # A heap by ticket; a cancelled waiter stays in it until popped.
        self._waiters: List[Tuple[Ticket, asyncio.Future]] = []
        self._live = 0  # waiters in the heap that still wait (neither served nor cancelled)
        self._arrivals = itertools.count()
        self._served = 0  # virtual time of the message that got a slot last
        self._latest: Dict[Text, int] = {}  # client -> virtual time of its latest message

    def ticket(self, client: Optional[Text] = None) -> Ticket:
        """The place of a message of ``client`` (None: a client of its own) arriving now."""
        start = self._served
        if client is not None:
            start = max(start, self._latest.get(client, 0))
        if len(self._latest) >= MAX_CLIENTS_REMEMBERED:
            # Behind the message served last: the same as not remembered.
            self._latest = {known: at for known, at in self._latest.items() if at > self._served}
        if client is not None:
            self._latest[client] = start + 1
        return (start + 1, next(self._arrivals))

    def _serve(self, ticket: Ticket) -> None:
        self._served = max(self._served, ticket[0])

    @property
    def waiting(self) -> int:
        return self._live

    async def acquire(self, ticket: Ticket) -> None:
        if self.limit <= 0:
            return
        if self.active < self.limit and not self.waiting:
            self.active += 1
            self._serve(ticket)
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
            ticket, waiter = heapq.heappop(self._waiters)
            if not waiter.done():
                self._live -= 1
                self._serve(ticket)
                waiter.set_result(None)  # the slot moves on; ``active`` stays
                return
        self.active -= 1


class SlotHolder:
    """One message's place: its ticket, and whether it holds a slot right now."""

    def __init__(self, slots: ArrivalOrderSlots) -> None:
        self.slots = slots
        self.ticket = slots.ticket(current_client.get())
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
