"""The lock store lets a waiting message in without Rasa's one-second sleeps."""

import asyncio

from rasa.core.lock_store import InMemoryLockStore, LockStore
from rasa.utils.endpoints import EndpointConfig

from bot import lock_store as quick


def test_endpoints_yml_type_builds_the_quick_store():
    store = LockStore.create(EndpointConfig(type="bot.lock_store.QuickInMemoryLockStore"))

    assert isinstance(store, quick.QuickInMemoryLockStore)
    assert isinstance(store, InMemoryLockStore)


def test_a_second_message_waits_for_the_first_and_looks_again_every_poll(monkeypatch):
    store = quick.QuickInMemoryLockStore()
    order, sleeps = [], []
    real_sleep = asyncio.sleep

    async def recorded_sleep(seconds, *args, **kwargs):
        sleeps.append(seconds)
        await real_sleep(0)

    async def handle(name, hold):
        async with store.lock("conversation-1"):
            order.append(f"{name} in")
            for _ in range(hold):
                await real_sleep(0)
            order.append(f"{name} out")

    async def both():
        first = asyncio.create_task(handle("first", hold=5))
        await real_sleep(0)
        await handle("second", hold=0)
        await first

    monkeypatch.setattr(asyncio, "sleep", recorded_sleep)
    asyncio.run(both())

    assert order == ["first in", "first out", "second in", "second out"]
    assert sleeps and set(sleeps) == {quick.POLL_SECONDS}
    assert store.conversation_locks == {}
