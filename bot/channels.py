"""Rasa's socket.io channel, with the widget's resends answered once, and its
rooms shared by several Rasa instances when asked (``credentials.yml`` and
``credentials.scaled.yml``).

**Resends (issue 11).** The widget gives every customer message an id of
its own and sends it as ``message_id``; this channel passes it to Rasa
(``UserMessage(message_id=...)``), which stores it on the ``user`` event. A
message that got no reply — the Rasa instance died while answering it, or
the reply went to a socket that had just dropped — is sent again by the
widget once, with the same id and ``resend: true``. Such a resend is handled
under the conversation's lock (the lock ``Agent.handle_message`` takes, so it
waits for a first copy still being answered): if the tracker already has a
``user`` event with that id, the message is not processed again and the bot
messages that followed it are emitted once more, each marked
``replay_of: <message_id>``; the widget shows them only if it has had no
reply since it sent that message (widget/src/connection.js), so a reply that
was merely slow is not shown twice. Otherwise the resend is processed like
any message, its replies marked ``replay_of`` too. A message without
``resend`` costs nothing extra: no tracker is read for it here. (A first copy
that reaches Rasa only *after* its resend was processed would be processed
twice; the widget resends only after a reconnect or 20 s of silence, and
Rasa handles a socket's messages in order.)

**Done, not just begun.** A reply can be cut off half-way: Rasa sends each
bot message as its action runs and saves the tracker only at the end, so an
instance killed between a reply's first and second message leaves the
customer with half an answer and no saved turn. A first reply therefore does
not prove a message was handled. After Rasa has finished (and saved) a
message that came with a ``message_id``, this channel emits
``message_handled`` ``{"message_id": ...}`` to the conversation's room;
before each ``session_confirm`` it tells the client so with
``session_features`` ``{"message_handled": true}``. A client that knows this
(the widget, bench/scale_load.py) keeps a message awaiting until it is
handled and resends it otherwise, however many replies came; it shows, of a
replayed answer, only the messages after the ones it already has. A stock
Rasa server sends neither event, and the widget then takes the first reply
as the answer, as before.

**Rooms in Redis.** Rasa's stock channel keeps its socket.io rooms in the
process: a reply can only reach a customer whose socket is connected to the
instance that produces it. Behind a load balancer the customer's socket is
on instance A while the agent's reply (Rasa's HTTP API,
``output_channel=socketio``) or the answer to a REST-triggered intent may be
produced on instance B. With ``SOCKETIO_REDIS_URL`` set, this channel's
socket.io server uses python-socketio's ``AsyncRedisManager``: every emit is
published on a Redis channel, and each instance delivers it to the sockets of
that room it holds (the room is the session id, as the channel runs with
session persistence). Without the setting the rooms are in the process, as
in the stock channel.

**The loaded model out of full garbage collections** (bot/gc_freeze.py):
the channel registers the listener that freezes it once the server has
started.

**Messages parsed on the other core** (bot/nlu_worker.py): the channel's
listeners start the NLU worker process once the model is loaded and end it
when the server stops.

Everything else (events, options, session persistence, metadata) is Rasa's.
The channel keeps the stock name, ``socketio``: Rasa's HTTP API finds the
output channel of ``output_channel=socketio`` by that name, and the CRM
(crm_backend/rasa.py) asks for it.

Redis carries the emitted messages pickled: keep it private to the Rasa
instances (docs/operations.md).
"""

from __future__ import annotations

import json
import logging
import os
import re
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

import rasa.shared.utils.io
from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from rasa.shared.core.events import BotUttered, UserUttered
from sanic import Blueprint
from socketio import AsyncRedisManager, AsyncServer

from bot import gc_freeze, nlu_worker

logger = logging.getLogger(__name__)

REDIS_URL_SETTING = "SOCKETIO_REDIS_URL"
# Every instance must publish and listen on the same Redis pub/sub channel.
REDIS_CHANNEL_SETTING = "SOCKETIO_REDIS_CHANNEL"
DEFAULT_REDIS_CHANNEL = "helpdesk-socketio"

# What a client may choose as a message id: Rasa's own are 32 hex digits, the
# widget's too; anything else is ignored and Rasa makes one up.
MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
# The key of a replayed bot message that names the message it answered.
REPLAY_KEY = "replay_of"
# Emitted to the conversation's room once Rasa has finished with a message.
HANDLED_EVENT = "message_handled"
# Emitted to a socket before its `session_confirm`: what this channel does beyond the stock one.
FEATURES_EVENT = "session_features"
FEATURES = {HANDLED_EVENT: True}

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


def use_client_manager(server: AsyncServer, manager: Any) -> None:
    """Give ``server`` another client manager, as ``AsyncServer(client_manager=...)`` would.

    Rasa builds its AsyncServer inside ``blueprint()``; this runs right after,
    before any client has connected (the manager is initialised on the first
    connection).
    """
    server.manager = manager
    manager.set_server(server)


def client_message_id(data: Dict[Text, Any]) -> Optional[Text]:
    """The ``message_id`` a client sent, if it is one we can keep."""
    message_id = data.get("message_id")
    if isinstance(message_id, str) and MESSAGE_ID.fullmatch(message_id):
        return message_id
    return None


def replies_to(events: List[Any], message_id: Text) -> Optional[List[BotUttered]]:
    """The bot messages that followed the ``user`` event with ``message_id``;
    None if the events hold no such ``user`` event (the message was never processed)."""
    replies: Optional[List[BotUttered]] = None
    for event in events:
        if isinstance(event, UserUttered):
            if replies is not None:
                break  # the next message of the customer's
            if event.message_id == message_id:
                replies = []
        elif replies is not None and isinstance(event, BotUttered):
            replies.append(event)
    return replies


class ReplayOutput(SocketIOOutput):
    """Rasa's socket.io output, every message marked as a replay of the answer to ``message_id``."""

    def __init__(self, sio: AsyncServer, bot_message_evt: Text, message_id: Text) -> None:
        super().__init__(sio, bot_message_evt)
        self.message_id = message_id

    async def _send_message(self, socket_id: Text, response: Any) -> None:
        await super()._send_message(socket_id, {**response, REPLAY_KEY: self.message_id})

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        # Rasa emits a custom message's ``data`` as the payload (an agent's reply, crm_backend/rasa.py).
        message = dict(json_message)
        if isinstance(message.get("data"), dict):
            message["data"] = {**message["data"], REPLAY_KEY: self.message_id}
        await super().send_custom_json(recipient_id, message, **kwargs)


class RedisSocketIOInput(SocketIOInput):
    """Rasa's socket.io input channel: client message ids kept, resends answered
    once, its rooms shared by every instance through Redis when asked."""

    app: Any = None  # the Sanic app the blueprint is registered on (its ``ctx.agent``)

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        socketio_blueprint = super().blueprint(on_new_message)
        sio = self.sio
        assert sio is not None
        redis_url = os.environ.get(REDIS_URL_SETTING, "").strip()
        if redis_url:
            channel = os.environ.get(REDIS_CHANNEL_SETTING, "").strip() or DEFAULT_REDIS_CHANNEL
            use_client_manager(sio, AsyncRedisManager(redis_url, channel=channel))
            logger.info("socket.io rooms are shared with the other Rasa instances through Redis (channel %s).", channel)

        async def handle_message(sid: Text, data: Dict) -> None:
            await self.handle_user_message(sid, data, on_new_message)

        # Takes the place of the stock handler registered by super().blueprint().
        sio.on(self.user_message_evt, handler=handle_message, namespace=self.namespace)

        stock_session_request = sio.handlers[self.namespace or "/"]["session_request"]

        async def session_request(sid: Text, data: Optional[Dict]) -> None:
            # Before the confirm: a client sends its queue as soon as it is confirmed.
            await sio.emit(FEATURES_EVENT, FEATURES, room=sid)
            await stock_session_request(sid, data)

        sio.on("session_request", handler=session_request, namespace=self.namespace)

        async def remember_app(app: Any, _loop: Any) -> None:
            self.app = app

        socketio_blueprint.listener(remember_app, "before_server_start")
        # After Rasa's own before_server_start listener has loaded the model.
        socketio_blueprint.listener(gc_freeze.after_server_start, "after_server_start")
        socketio_blueprint.listener(nlu_worker.after_server_start, "after_server_start")
        socketio_blueprint.listener(nlu_worker.after_server_stop, "after_server_stop")
        return socketio_blueprint

    async def handle_user_message(self, sid: Text, data: Dict, on_new_message: OnNewMessage) -> None:
        """The stock handler, with the client's message id, and resends looked up first."""
        data = data if isinstance(data, dict) else {}
        output_channel = SocketIOOutput(self.sio, self.bot_message_evt)
        if self.session_persistence:
            if not data.get("session_id"):
                rasa.shared.utils.io.raise_warning(
                    "A message without a valid session_id was received. This message will be ignored. "
                    "Make sure to set a proper session id using the `session_request` socketIO event."
                )
                return
            sender_id = data["session_id"]
        else:
            sender_id = sid

        metadata = data.get(self.metadata_key, {})
        if isinstance(metadata, Text):
            metadata = json.loads(metadata)
        message_id = client_message_id(data)
        message = UserMessage(
            data.get("message", ""),
            output_channel,
            sender_id,
            input_channel=self.name(),
            message_id=message_id,
            metadata=metadata,
        )
        if data.get("resend") is True and message_id:
            await self.handle_resend(message, on_new_message)
        else:
            await on_new_message(message)
        agent = self.agent()
        if message_id and agent is not None and agent.is_ready():
            # Only now: had Rasa failed or died on the way, the client would
            # resend it. (Without a ready agent Rasa ignored the message.)
            await self.sio.emit(HANDLED_EVENT, {"message_id": message_id}, room=sender_id)

    def agent(self) -> Any:
        return getattr(getattr(self.app, "ctx", None), "agent", None)

    async def handle_resend(self, message: UserMessage, on_new_message: OnNewMessage) -> None:
        """Processes a resent message unless its first copy already was; then replays that answer."""
        agent = self.agent()
        if agent is None or not agent.is_ready():
            await on_new_message(message)  # Rasa logs that there is no agent to handle it
            return
        # What Agent.handle_message does, with the look-up inside the same lock.
        async with agent.lock_store.lock(message.sender_id):
            tracker = await agent.tracker_store.retrieve(message.sender_id)
            replies = replies_to(tracker.events if tracker else [], message.message_id)
            if replies is None:
                # Never saved: perhaps never seen, perhaps cut off half-way
                # through its answer. Answered now, marked as a replay, of
                # which the client shows what it does not have yet.
                logger.debug("Resent message %s is new: processing it.", message.message_id)
                message.output_channel = ReplayOutput(self.sio, self.bot_message_evt, message.message_id)
                await agent.processor.handle_message(message)
                return
        logger.debug("Resent message %s was processed already: replaying %d replies.", message.message_id, len(replies))
        replay = ReplayOutput(self.sio, self.bot_message_evt, message.message_id)
        for reply in replies:
            await replay.send_response(message.sender_id, reply.message())
