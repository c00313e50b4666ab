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


def test_the_scaled_profiles_redis_store_takes_rasas_redis_settings_and_locks():
    import os
    import uuid

    import pytest
    import redis

    host, port = os.environ.get("REDIS_TEST_HOST", "127.0.0.1"), int(os.environ.get("REDIS_TEST_PORT", "6379"))
    try:
        redis.Redis(host=host, port=port, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        pytest.skip(f"no Redis answers at {host}:{port} ({type(error).__name__}); set REDIS_TEST_HOST/PORT to run this test")
    prefix = f"helpdesktest{uuid.uuid4().hex[:10]}"
    store = LockStore.create(EndpointConfig(
        url=host, type="bot.lock_store.QuickRedisLockStore", port=port, db=4, key_prefix=prefix))
    conversation = "conversation-1"

    async def hold_and_release():
        async with store.lock(conversation):
            assert store.get_lock(conversation).is_locked(ticket_number=99)
        return store.get_lock(conversation)

    assert isinstance(store, quick.QuickRedisLockStore)
    assert asyncio.run(hold_and_release()) is None  # released and removed
    assert store.key_prefix == f"{prefix}:lock:"
    assert not list(store.red.scan_iter(f"{prefix}:*"))
