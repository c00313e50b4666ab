"""The lock store lets a waiting message in without Rasa's one-second sleeps."""

import asyncio

from rasa.core.lock_store import InMemoryLockStore, LockStore
from rasa.utils.endpoints import EndpointConfig

from bot import lock_store as quick
from bot.patches import action_call_slot


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


def test_endpoints_yml_sets_how_many_conversations_work_at_once():
    store = LockStore.create(EndpointConfig(type="bot.lock_store.QuickInMemoryLockStore", max_concurrent=3))
    default = LockStore.create(EndpointConfig(type="bot.lock_store.QuickInMemoryLockStore"))

    assert store._slots.limit == 3
    assert default._slots.limit == quick.DEFAULT_MAX_CONCURRENT


def test_a_limit_that_is_not_a_number_is_refused_with_its_name():
    import pytest

    with pytest.raises(ValueError, match="max_concurrent"):
        quick.QuickInMemoryLockStore(EndpointConfig(type="x", max_concurrent="many"))


def _run_conversations(store, names, steps):
    """Each conversation takes its lock and then needs ``steps[name]`` turns of the loop."""
    inside, most_inside, finished = set(), [0], []

    async def handle(name):
        async with store.lock(name):
            inside.add(name)
            most_inside[0] = max(most_inside[0], len(inside))
            for _ in range(steps[name]):
                await asyncio.sleep(0)
            inside.discard(name)
            finished.append(name)

    async def everyone():
        await asyncio.gather(*(handle(name) for name in names))

    asyncio.run(everyone())
    return most_inside[0], finished


# Six conversations, the first two slow, the others quick: without a limit
# the quick ones all finish first; with one they wait for a slot, in order.
NAMES = [f"c{number}" for number in range(6)]
STEPS = {name: (20 if name in ("c0", "c1") else 1) for name in NAMES}


def test_at_most_max_concurrent_conversations_work_at_once_and_the_rest_go_in_arrival_order():
    store = quick.QuickInMemoryLockStore(EndpointConfig(type="x", max_concurrent=2))

    most_inside, finished = _run_conversations(store, NAMES, STEPS)

    assert most_inside == 2
    assert finished == ["c0", "c1", "c2", "c3", "c4", "c5"]
    assert store._slots.active == 0 and store._slots.waiting == 0
    assert store.conversation_locks == {}


def test_zero_means_no_limit():
    store = quick.QuickInMemoryLockStore(EndpointConfig(type="x", max_concurrent=0))

    most_inside, finished = _run_conversations(store, NAMES, STEPS)

    assert most_inside == 6
    assert finished[:4] == ["c2", "c3", "c4", "c5"]


def test_a_freed_slot_goes_to_the_oldest_waiter_not_to_a_newcomer():
    slots = quick.ArrivalOrderSlots(1)

    async def scenario():
        first, older, newer = slots.ticket(), slots.ticket(), slots.ticket()
        await slots.acquire(first)  # the first message holds the only slot
        newer_task = asyncio.create_task(slots.acquire(newer))
        await asyncio.sleep(0)
        older_task = asyncio.create_task(slots.acquire(older))  # asks later, but is older
        await asyncio.sleep(0)
        slots.release()  # handed to the older waiter, which has not run yet
        newcomer = asyncio.create_task(slots.acquire(slots.ticket()))
        await asyncio.sleep(0)
        assert older_task.done() and not newer_task.done() and not newcomer.done()
        slots.release()
        await newer_task
        assert not newcomer.done()
        slots.release()
        await newcomer
        slots.release()
        assert slots.active == 0 and slots.waiting == 0

    asyncio.run(scenario())


def test_an_address_with_one_message_waiting_goes_before_another_address_s_queue():
    """One slot: a flood from one address queues five messages (under five conversation ids);
    a bystander's message from another address is served after the flood's first, not its last."""
    slots = quick.ArrivalOrderSlots(1)
    served = []

    async def message(name, client):
        ticket = slots.ticket(client)
        await slots.acquire(ticket)
        served.append(name)
        await asyncio.sleep(0)
        slots.release()

    async def scenario():
        await slots.acquire(slots.ticket("10.0.0.1"))  # the flood's message in progress
        tasks = [asyncio.create_task(message(f"flood{n}", "10.0.0.1")) for n in range(5)]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(message("bystander", "10.0.0.2")))
        await asyncio.sleep(0)
        slots.release()
        await asyncio.gather(*tasks)

    asyncio.run(scenario())
    assert served == ["flood0", "bystander", "flood1", "flood2", "flood3", "flood4"]


def test_messages_of_one_address_keep_their_arrival_order():
    slots = quick.ArrivalOrderSlots(2)
    tickets = [slots.ticket("127.0.0.1") for _ in range(5)]
    assert tickets == sorted(tickets)
    # A message with no address named is a client of its own: behind the one served last only.
    assert slots.ticket(None) < tickets[1]


def test_the_fair_queue_forgets_addresses_with_nothing_waiting(monkeypatch):
    monkeypatch.setattr(quick, "MAX_CLIENTS_REMEMBERED", 3)
    slots = quick.ArrivalOrderSlots(0)
    for n in range(10):
        slots._serve(slots.ticket(f"10.0.0.{n}"))
    assert len(slots._latest) <= 3


def test_the_channels_name_the_message_s_address_for_the_queue():
    store = quick.QuickInMemoryLockStore(EndpointConfig(type="x", max_concurrent=1))
    seen = []

    async def scenario():
        quick.current_client.set("203.0.113.9")
        async with store.lock("c1"):
            seen.append(store._slots._latest.get("203.0.113.9"))

    asyncio.run(scenario())
    assert seen == [1]


def test_a_waiter_cancelled_while_queued_or_just_handed_a_slot_gives_it_back():
    slots = quick.ArrivalOrderSlots(1)

    async def scenario():
        await slots.acquire(slots.ticket())
        queued = asyncio.create_task(slots.acquire(slots.ticket()))
        await asyncio.sleep(0)
        assert slots.waiting == 1
        queued.cancel()
        await asyncio.gather(queued, return_exceptions=True)
        assert slots.waiting == 0

        handed = asyncio.create_task(slots.acquire(slots.ticket()))
        await asyncio.sleep(0)
        slots.release()  # hands the slot to ``handed``...
        handed.cancel()  # ...which is cancelled before it runs
        await asyncio.gather(handed, return_exceptions=True)
        assert slots.active == 0 and slots.waiting == 0

    asyncio.run(scenario())


def test_a_message_waiting_for_the_action_server_holds_no_slot_and_is_served_before_newer_ones(monkeypatch):
    """One slot: A calls the action server; meanwhile B and C run; A goes on before C though C waited first."""
    store = quick.QuickInMemoryLockStore(EndpointConfig(type="x", max_concurrent=1))
    action_server = EndpointConfig(url="http://actions.invalid/webhook")
    order = []
    replied = {}

    async def fake_request(self, *args, **kwargs):
        order.append("A waits for the action server")
        await replied["event"].wait()
        return {"events": []}

    monkeypatch.setattr(action_call_slot, "_original_request", fake_request)
    monkeypatch.setattr(EndpointConfig, "request", action_call_slot.request_without_slot)

    async def message_a():
        async with store.lock("a"):
            order.append("A in")
            await action_server.request(json={}, method="post")
            order.append("A after the action server")

    async def message(name, steps):
        async with store.lock(name):
            order.append(f"{name} in")
            if name == "B":
                replied["event"].set()  # the action server answers A while B holds the slot
            for _ in range(steps):
                await asyncio.sleep(0)
            order.append(f"{name} out")

    async def scenario():
        replied["event"] = asyncio.Event()
        task_a = asyncio.create_task(message_a())
        await asyncio.sleep(0)
        task_b = asyncio.create_task(message("B", 3))
        task_c = asyncio.create_task(message("C", 0))
        await asyncio.gather(task_a, task_b, task_c)

    # Were A to keep its slot while it waits, B could never run: a time limit, not a hang.
    asyncio.run(asyncio.wait_for(scenario(), timeout=5))

    assert order == [
        "A in", "A waits for the action server",
        "B in", "B out",  # B had the slot A gave up
        "A after the action server",  # A is older than C, which waited all along
        "C in", "C out",
    ]
    assert store._slots.active == 0 and store._slots.waiting == 0


def test_importing_bot_installs_the_request_that_gives_up_the_slot():
    assert EndpointConfig.request is action_call_slot.request_without_slot
