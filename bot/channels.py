"""Rasa's socket.io channel, with private server-issued sessions, the chat
limits and the customer's identity checked before Rasa acts on a message, the
widget's resends answered once, and its rooms shared by several Rasa
instances when asked (``credentials.yml`` and ``credentials.scaled.yml``).

**Private sessions (issue 19).** Rasa's stock channel joined a socket to
whatever session id it named. Here ``session_request {session_id?,
session_token?}`` keeps the id only with its signed token (bot/sessions.py)
and otherwise issues a new one; ``session_confirm`` is an object
``{session_id, session_token}`` (rasa-webchat and our widget read
``.session_id``). The socket is bound to that one session (in this process,
forgotten on disconnect): its room is the only one it enters, and a
``user_uttered`` is taken only if its ``session_id`` is the bound one;
anything else is ignored.

**Limits and identity** (bot/chat_guard.py): before ``on_new_message`` the
text is cleaned, the conversation's and the address's rates counted, its
length measured, the metadata (``customData``) cleaned and the identity token
in ``customData.identity_token`` checked. A message over
``CHAT_MAX_MESSAGE_CHARS`` gets one ``bot_uttered`` with the text of
``utter_message_too_long`` and ``"error": "message_too_long"``; a throttled
conversation gets one ``utter_slow_down`` (``"error": "rate_limited"``) per
throttled stretch, its other messages dropped. Either way the message counts
as handled (``message_handled``), so the widget does not send it again. A
message verified as a different customer than the session's starts a new
session first.

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
``session_features`` ``{"message_handled": true, "session_tokens": true,
"max_message_chars": <CHAT_MAX_MESSAGE_CHARS>}``. A client that knows this
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

**The patches' server listeners**: the channel is where Rasa hands the bot
its Sanic server, so it registers the start and stop listeners of the active
patches (``bot.patches.listeners()``): ``gc_freeze`` keeps the loaded model
out of full garbage collections, ``nlu_worker`` starts the NLU worker process
once the model is loaded and ends it when the server stops.

Everything else (events, options, session persistence) is Rasa's.
The channel keeps the stock name, ``socketio``: Rasa's HTTP API finds the
output channel of ``output_channel=socketio`` by that name, and the CRM
(crm_backend/rasa.py) asks for it.

Redis carries the emitted messages pickled: keep it private to the Rasa
instances (docs/operations.md).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Optional, Set, Text

import rasa.shared.utils.io
from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from rasa.shared.core.events import BotUttered, UserUttered
from sanic import Blueprint
from socketio import AsyncRedisManager, AsyncServer

from bot import patches, settings
from bot.chat_guard import (
    RATE_LIMITED_ERROR,
    SLOW_DOWN_RESPONSE,
    TOO_LONG_ERROR,
    TOO_LONG_RESPONSE,
    OnNewMessage,
    guard_for,
    log_id,
)
from bot.chat_limits import clean_text, client_ip
from bot.sessions import SessionSigner

logger = logging.getLogger(__name__)

# What a client may choose as a message id: Rasa's own are 32 hex digits, the
# widget's too; anything else is ignored and Rasa makes one up.
MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
# The key of a replayed bot message that names the message it answered.
REPLAY_KEY = "replay_of"
# Emitted to the conversation's room once Rasa has finished with a message.
HANDLED_EVENT = "message_handled"
# Emitted to a socket before its `session_confirm`: what this channel does beyond the stock one.
FEATURES_EVENT = "session_features"
# With ``max_message_chars`` (CHAT_MAX_MESSAGE_CHARS) added when the channel is built.
FEATURES = {HANDLED_EVENT: True, "session_tokens": True}
CONFIRM_EVENT = "session_confirm"
# How many throttled conversations a process remembers having told to slow down.
MAX_THROTTLED_REMEMBERED = 10_000


def use_client_manager(server: AsyncServer, manager: Any) -> None:
    """Give ``server`` another client manager, as ``AsyncServer(client_manager=...)`` would.

    Rasa builds its AsyncServer inside ``blueprint()``; this runs right after,
    before any client has connected (the manager is initialised on the first
    connection).
    """
    server.manager = manager
    manager.set_server(server)


def socket_client_ip(environ: Dict[Text, Any]) -> Text:
    """The address a socket's messages count against (bot/chat_limits.py, "Client address")."""
    request = environ.get("sanic.request")
    peer = getattr(request, "ip", None) or environ.get("REMOTE_ADDR")
    return client_ip(peer, environ.get("HTTP_X_FORWARDED_FOR"))


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
    """Rasa's socket.io input channel: server-issued sessions, the chat limits,
    the customer's identity checked, client message ids kept, resends
    answered once, its rooms shared by every instance through Redis when asked."""

    app: Any = None  # the Sanic app the blueprint is registered on (its ``ctx.agent``)

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        socketio_blueprint = super().blueprint(on_new_message)
        sio = self.sio
        assert sio is not None
        current = settings.from_env()
        if current.socketio_redis_url:
            # Every instance must publish and listen on the same Redis pub/sub channel.
            channel = current.socketio_redis_channel
            use_client_manager(sio, AsyncRedisManager(current.socketio_redis_url, channel=channel))
            logger.info("socket.io rooms are shared with the other Rasa instances through Redis (channel %s).", channel)

        self.guard = guard_for(on_new_message)
        self.sessions = SessionSigner(self.guard.secret)
        self.features = {**FEATURES, "max_message_chars": self.guard.limits.max_message_chars}
        # Per socket of this process: the session it holds, the address it counts against.
        self.bound_sessions: Dict[Text, Text] = {}
        self.addresses: Dict[Text, Text] = {}
        # Conversations told to slow down and not yet let through again.
        self.throttled: Set[Text] = set()
        namespace = self.namespace or "/"

        # ``data=None``: a client may emit the event with no payload at all,
        # which python-socketio then calls the handler without.
        async def handle_message(sid: Text, data: Any = None) -> None:
            await self.handle_user_message(sid, data, on_new_message)

        # Each takes the place of the stock handler registered by super().blueprint().
        sio.on(self.user_message_evt, handler=handle_message, namespace=self.namespace)

        stock_connect = sio.handlers[namespace]["connect"]

        async def connect(sid: Text, environ: Dict, auth: Optional[Dict] = None) -> bool:
            accepted = await stock_connect(sid, environ, auth)
            if accepted is not False:
                self.addresses[sid] = socket_client_ip(environ)
            return accepted

        sio.on("connect", handler=connect, namespace=self.namespace)

        async def disconnect(sid: Text) -> None:
            self.bound_sessions.pop(sid, None)
            self.addresses.pop(sid, None)
            logger.debug("User %s disconnected from socketIO endpoint.", sid)

        sio.on("disconnect", handler=disconnect, namespace=self.namespace)

        async def session_request(sid: Text, data: Any = None) -> None:
            await self.handle_session_request(sid, data)

        sio.on("session_request", handler=session_request, namespace=self.namespace)

        async def remember_app(app: Any, _loop: Any) -> None:
            self.app = app

        socketio_blueprint.listener(remember_app, "before_server_start")
        # The after_server_start ones run after Rasa's own before_server_start
        # listener has loaded the model.
        for event, listener in patches.listeners():
            socketio_blueprint.listener(listener, event)
        return socketio_blueprint

    async def handle_session_request(self, sid: Text, data: Any) -> None:
        """Binds the socket to the session it holds the token of, or to a new one."""
        data = data if isinstance(data, dict) else {}
        session_id, session_token, kept = self.sessions.session_for(data.get("session_id"), data.get("session_token"))
        if not kept and data.get("session_id"):
            logger.debug("Socket %s named a session without its token: it gets a new session.", sid)
        previous = self.bound_sessions.get(sid)
        if self.session_persistence and previous is not None and previous != session_id:
            self.sio.leave_room(sid, previous)
        self.bound_sessions[sid] = session_id
        # Before the confirm: a client sends its queue as soon as it is confirmed.
        await self.sio.emit(FEATURES_EVENT, self.features, room=sid)
        if self.session_persistence:
            self.sio.enter_room(sid, session_id)
        await self.sio.emit(CONFIRM_EVENT, {"session_id": session_id, "session_token": session_token}, room=sid)
        logger.debug("User %s connected to socketIO endpoint.", sid)

    async def handle_user_message(self, sid: Text, data: Any, on_new_message: OnNewMessage) -> None:
        """The stock handler, for the socket's own session only, with the chat
        limits and identity checked first, the client's message id kept, and
        resends looked up."""
        if not isinstance(data, dict):
            return
        if self.session_persistence:
            if not data.get("session_id"):
                rasa.shared.utils.io.raise_warning(
                    "A message without a valid session_id was received. This message will be ignored. "
                    "Make sure to set a proper session id using the `session_request` socketIO event."
                )
                return
            sender_id = self.bound_sessions.get(sid)
            if sender_id is None or data["session_id"] != sender_id:
                logger.debug("Socket %s sent a message for a session it does not hold: ignored.", sid)
                return
        else:
            sender_id = sid
        text = data.get("message")
        if not isinstance(text, str):
            logger.debug("Socket %s sent a message without text: ignored.", sid)
            return
        text = clean_text(text)
        message_id = client_message_id(data)

        address = self.addresses.get(sid, "unknown")
        wait = await self.guard.wait_needed(sender_id, address)
        if wait:
            await self.refuse_throttled(sender_id, message_id)
            return
        self.guard.queue_as(address)
        self.throttled.discard(sender_id)
        if self.guard.too_long(text):
            await self.refuse(sender_id, message_id, TOO_LONG_RESPONSE, TOO_LONG_ERROR)
            return

        checked = self.guard.check_metadata(data.get(self.metadata_key))
        output_channel = SocketIOOutput(self.sio, self.bot_message_evt)
        message = UserMessage(
            text,
            output_channel,
            sender_id,
            input_channel=self.name(),
            message_id=message_id,
            metadata=checked.metadata,
        )
        agent = self.agent()
        await self.guard.start_session_if_identity_changed(agent, message, checked.identity, on_new_message)
        if data.get("resend") is True and message_id:
            await self.handle_resend(message, on_new_message)
        else:
            await on_new_message(message)
        if message_id and agent is not None and agent.is_ready():
            # Only now: had Rasa failed or died on the way, the client would
            # resend it. (Without a ready agent Rasa ignored the message.)
            await self.sio.emit(HANDLED_EVENT, {"message_id": message_id}, room=sender_id)

    async def refuse(self, sender_id: Text, message_id: Optional[Text], response: Text, error: Text) -> None:
        """One bot message saying why a message was not taken; the message counts as handled
        (the client shows the reply and does not send it again)."""
        text = self.guard.text(self.agent(), response)
        await self.sio.emit(self.bot_message_evt, {"text": text, "error": error}, room=sender_id)
        await self.say_handled(sender_id, message_id)

    async def refuse_throttled(self, sender_id: Text, message_id: Optional[Text]) -> None:
        """The first message of a throttled stretch is told to slow down; the rest are dropped."""
        if sender_id in self.throttled:
            await self.say_handled(sender_id, message_id)
            return
        if len(self.throttled) > MAX_THROTTLED_REMEMBERED:
            self.throttled.clear()
        self.throttled.add(sender_id)
        logger.info("Conversation %s is sending too fast: throttled.", log_id(sender_id))
        await self.refuse(sender_id, message_id, SLOW_DOWN_RESPONSE, RATE_LIMITED_ERROR)

    async def say_handled(self, sender_id: Text, message_id: Optional[Text]) -> None:
        if message_id:
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
