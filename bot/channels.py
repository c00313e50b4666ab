"""Rasa's socket.io channel for several Rasa instances (`credentials.scaled.yml`).

Rasa's stock channel keeps its socket.io rooms in the process: a reply can
only reach a customer whose socket is connected to the instance that
produces it. Behind a load balancer the customer's socket is on instance A
while the agent's reply (Rasa's HTTP API, `output_channel=socketio`) or the
answer to a REST-triggered intent may be produced on instance B.

With ``SOCKETIO_REDIS_URL`` set, this channel's socket.io server uses
python-socketio's ``AsyncRedisManager``: every emit is published on a Redis
channel, and each instance delivers it to the sockets of that room it holds
(the room is the session id, as the channel runs with session persistence).
Without the setting it is exactly the stock channel.

Everything else (events, options, session persistence, metadata) is Rasa's.
The channel keeps the stock name, ``socketio``: Rasa's HTTP API finds the
output channel of ``output_channel=socketio`` by that name, and the CRM
(crm_backend/rasa.py) asks for it.

Redis carries the emitted messages pickled: keep it private to the Rasa
instances (docs/operations.md).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Awaitable, Callable

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketIOInput
from sanic import Blueprint
from socketio import AsyncRedisManager, AsyncServer

logger = logging.getLogger(__name__)

REDIS_URL_SETTING = "SOCKETIO_REDIS_URL"
# Every instance must publish and listen on the same Redis pub/sub channel.
REDIS_CHANNEL_SETTING = "SOCKETIO_REDIS_CHANNEL"
DEFAULT_REDIS_CHANNEL = "helpdesk-socketio"


def use_client_manager(server: AsyncServer, manager: Any) -> None:
    """Give ``server`` another client manager, as ``AsyncServer(client_manager=...)`` would.

    Rasa builds its AsyncServer inside ``blueprint()``; this runs right after,
    before any client has connected (the manager is initialised on the first
    connection).
    """
    server.manager = manager
    manager.set_server(server)


class RedisSocketIOInput(SocketIOInput):
    """Rasa's socket.io input channel, its rooms shared by every instance through Redis."""

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        socketio_blueprint = super().blueprint(on_new_message)
        redis_url = os.environ.get(REDIS_URL_SETTING, "").strip()
        if redis_url and self.sio is not None:
            channel = os.environ.get(REDIS_CHANNEL_SETTING, "").strip() or DEFAULT_REDIS_CHANNEL
            use_client_manager(self.sio, AsyncRedisManager(redis_url, channel=channel))
            logger.info("socket.io rooms are shared with the other Rasa instances through Redis (channel %s).", channel)
        return socketio_blueprint
