"""bot.patches.gc_freeze: what is alive after the model load is frozen out of full collections, once the server has started."""

import gc

import pytest

from bot.patches import gc_freeze
from bot.channels import RedisSocketIOInput


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


class Survivor:
    """A long-lived object in a reference cycle, as the model's objects are."""

    def __init__(self):
        self.me = self


def test_freezing_keeps_what_is_alive_out_of_full_collections(unfrozen):
    survivor = Survivor()
    assert gc.get_freeze_count() == 0

    frozen = gc_freeze.freeze_long_lived()

    assert frozen == gc.get_freeze_count() > 0
    # No generation holds it any more: a full collection does not walk it.
    assert not any(o is survivor for o in gc.get_objects())
    gc.collect()
    assert gc.get_freeze_count() == frozen


def test_objects_made_after_the_freeze_are_collected_as_before(unfrozen):
    gc_freeze.freeze_long_lived()
    garbage = Survivor()
    del garbage
    assert gc.collect() >= 1


def test_the_channel_registers_the_freeze_after_the_server_has_started():
    channel = RedisSocketIOInput.from_credentials({"session_persistence": True})

    async def on_new_message(message):  # pragma: no cover - never called
        return None

    blueprint = channel.blueprint(on_new_message)

    listeners = [(entry.event, entry.listener) for entry in blueprint._future_listeners]
    assert ("after_server_start", gc_freeze.after_server_start) in listeners
