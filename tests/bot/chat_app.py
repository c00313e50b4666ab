"""A real Sanic app with our socket.io and REST channels, registered as Rasa
registers them, on a free port of this machine; a small agent in place of
Rasa's (records what reaches it, answers "answer to <text>", keeps its
trackers in Rasa's in-memory store, and treats ``/session_start`` as Rasa's
``action_session_start`` does).

    async with ChatApp(monkeypatch) as app:
        async with app.http() as http: ...
        client = await app.socket()
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any, Dict, List, Optional

import aiohttp
import rasa.core.channels.channel
import socketio
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
from sanic import Sanic

from bot.channels import RedisSocketIOInput
from bot.lock_store import QuickInMemoryLockStore
from bot.rest_channel import HelpdeskRestInput
from harness.ports import free_port

REPO = Path(__file__).resolve().parents[2]
SECRET = "test-chat-identity-secret-0123456789abcdef"
INTEGRATION_TOKEN = "test-integration-token-0123456789"
SOCKET_CREDENTIALS = {
    "user_message_evt": "user_uttered",
    "bot_message_evt": "bot_uttered",
    "session_persistence": True,
    "metadata_key": "customData",
}
_DOMAIN: Optional[Domain] = None
_names = itertools.count()


def domain() -> Domain:
    """The project's own domain.yml (the limits' replies are its responses)."""
    global _DOMAIN
    if _DOMAIN is None:
        _DOMAIN = Domain.load(str(REPO / "domain.yml"))
    return _DOMAIN


class Processor:
    def __init__(self, tracker_store: InMemoryTrackerStore) -> None:
        self.tracker_store = tracker_store
        self.handled: List[Any] = []

    async def handle_message(self, message: Any) -> None:
        self.handled.append(message)
        tracker = await self.tracker_store.get_or_create_tracker(message.sender_id)
        tracker.update(UserUttered(message.text, message_id=message.message_id, metadata=message.metadata))
        if message.text == "/session_start":
            for event in (ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")):
                tracker.update(event)
        else:
            reply = BotUttered(f"answer to {message.text}")
            await message.output_channel.send_response(message.sender_id, reply.message())
            tracker.update(reply)
            tracker.update(ActionExecuted("action_listen"))
        await self.tracker_store.save(tracker)


class CountingTrackerStore:
    """The agent's tracker store as the channels see it, counting their retrievals."""

    def __init__(self, store: InMemoryTrackerStore) -> None:
        self.store = store
        self.retrievals = 0

    async def retrieve(self, sender_id: str) -> Any:
        self.retrievals += 1
        return await self.store.retrieve(sender_id)


class Agent:
    def __init__(self) -> None:
        self.domain = domain()
        self.store = InMemoryTrackerStore(self.domain)
        self.tracker_store = CountingTrackerStore(self.store)
        self.lock_store = QuickInMemoryLockStore()
        self.processor = Processor(self.store)

    def is_ready(self) -> bool:
        return True

    @property
    def handled(self) -> List[Any]:
        return self.processor.handled

    async def handle_message(self, message: Any) -> None:  # what Rasa's Agent.handle_message does
        async with self.lock_store.lock(message.sender_id):
            await self.processor.handle_message(message)


class Client:
    """A socket.io client as the widget is one, recording what it receives."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: List[tuple] = []
        self.confirmed: asyncio.Queue = asyncio.Queue()
        for event in ("bot_uttered", "session_features", "message_handled"):
            self.sio.on(event, self._recorder(event))
        self.sio.on("session_confirm", self._on_confirm)

    def _recorder(self, event: str):
        async def record(data: Any) -> None:
            self.received.append((event, data))

        return record

    async def _on_confirm(self, data: Any) -> None:
        self.received.append(("session_confirm", data))
        await self.confirmed.put(data)

    async def connect(self, headers: Optional[Dict[str, str]] = None) -> "Client":
        await self.sio.connect(self.url, transports=["websocket"], socketio_path="socket.io", headers=headers or {})
        return self

    async def session(self, **request: Any) -> Dict[str, str]:
        await self.sio.emit("session_request", request)
        return await asyncio.wait_for(self.confirmed.get(), 5)

    async def say(self, session_id: str, text: Any, **fields: Any) -> None:
        await self.sio.emit("user_uttered", {"session_id": session_id, "message": text, **fields})

    def bot_messages(self) -> List[Dict[str, Any]]:
        return [data for event, data in self.received if event == "bot_uttered"]


class ChatApp:
    """Both channels on a real Sanic server; settings from ``env`` (monkeypatched)."""

    def __init__(self, monkeypatch: Any, integration_token: Optional[str] = INTEGRATION_TOKEN, **env: str) -> None:
        monkeypatch.setenv("BOT_NLU_WORKER", "0")
        monkeypatch.delenv("SOCKETIO_REDIS_URL", raising=False)
        for name in (
            "CHAT_MAX_MESSAGE_CHARS",
            "CHAT_MAX_METADATA_BYTES",
            "CHAT_SENDER_BURST",
            "CHAT_SENDER_PER_MINUTE",
            "CHAT_IP_BURST",
            "CHAT_IP_PER_MINUTE",
            "CHAT_RATE_LIMIT_REDIS_URL",
        ):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("CHAT_IDENTITY_SECRET", SECRET)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        self.agent = Agent()
        self.socket_channel = RedisSocketIOInput.from_credentials(SOCKET_CREDENTIALS)
        self.rest_channel = HelpdeskRestInput.from_credentials({"integration_token": integration_token})
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.rest_url = f"{self.url}/webhooks/rest/webhook"
        self.clients: List[Client] = []

    async def __aenter__(self) -> "ChatApp":
        Sanic.test_mode = True
        app = Sanic(f"chat_app_{next(_names)}")
        app.ctx.agent = self.agent
        rasa.core.channels.channel.register([self.socket_channel, self.rest_channel], app, route="/webhooks/")
        self.server = await app.create_server(host="127.0.0.1", port=self.port, return_asyncio_server=True)
        await self.server.startup()
        await self.server.before_start()
        await self.server.after_start()
        return self

    async def __aexit__(self, *_: Any) -> None:
        for client in self.clients:
            if client.sio.connected:
                await client.sio.disconnect()
        await self.server.before_stop()
        self.server.close()
        await self.server.wait_closed()
        await self.server.after_stop()

    def http(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    async def socket(self, headers: Optional[Dict[str, str]] = None) -> Client:
        client = Client(self.url)
        self.clients.append(client)
        return await client.connect(headers)

    async def post(self, http: aiohttp.ClientSession, body: Any, headers: Optional[Dict[str, str]] = None, raw: Optional[bytes] = None):
        """(status, content type, parsed JSON body, headers)."""
        kwargs: Dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
        async with http.post(self.rest_url, headers=headers or {}, **kwargs) as response:
            return response.status, response.content_type, await response.json(content_type=None), response.headers


async def settle(seconds: float = 0.2) -> None:
    """Lets emitted events arrive."""
    await asyncio.sleep(seconds)


async def until(condition, timeout: float = 15.0) -> None:
    """Waits until ``condition()`` holds (a loaded machine answers late), then lets stragglers arrive."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return  # the test's own assertion says what is missing
        await asyncio.sleep(0.05)
    await settle(0.1)
