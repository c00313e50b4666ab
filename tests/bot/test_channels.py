"""The scaled profile's socket.io channel: Rasa's own, with its rooms in Redis when asked.

The cross-instance delivery itself (a reply produced on one Rasa instance
reaching a socket on another) is tested against the running scaled stack in
tests/e2e/test_scaled.py.
"""

from rasa.core.channels.socketio import SocketIOInput
from socketio import AsyncRedisManager
from socketio.asyncio_pubsub_manager import AsyncPubSubManager

from bot.channels import DEFAULT_REDIS_CHANNEL, RedisSocketIOInput

CREDENTIALS = {
    "user_message_evt": "user_uttered",
    "bot_message_evt": "bot_uttered",
    "session_persistence": True,
    "metadata_key": "customData",
}


async def _on_new_message(message):  # pragma: no cover - never called here
    return None


def test_keeps_the_stock_name_the_http_api_and_the_crm_ask_for():
    assert RedisSocketIOInput.name() == SocketIOInput.name() == "socketio"


def test_reads_the_same_options_as_the_stock_channel():
    channel = RedisSocketIOInput.from_credentials(CREDENTIALS)

    assert (channel.session_persistence, channel.metadata_key, channel.bot_message_evt) == (True, "customData", "bot_uttered")


def test_without_a_redis_url_it_is_the_stock_in_process_server(monkeypatch):
    monkeypatch.delenv("SOCKETIO_REDIS_URL", raising=False)
    channel = RedisSocketIOInput.from_credentials(CREDENTIALS)

    channel.blueprint(_on_new_message)

    assert not isinstance(channel.sio.manager, AsyncPubSubManager)


def test_with_a_redis_url_rooms_are_shared_through_redis(monkeypatch):
    monkeypatch.setenv("SOCKETIO_REDIS_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.delenv("SOCKETIO_REDIS_CHANNEL", raising=False)
    channel = RedisSocketIOInput.from_credentials(CREDENTIALS)

    channel.blueprint(_on_new_message)

    manager = channel.sio.manager
    assert isinstance(manager, AsyncRedisManager)
    assert manager.server is channel.sio
    assert (manager.redis_url, manager.channel) == ("redis://127.0.0.1:6379/3", DEFAULT_REDIS_CHANNEL)
    # The output channel the HTTP API uses emits through the same server.
    assert channel.get_output_channel().sio is channel.sio
