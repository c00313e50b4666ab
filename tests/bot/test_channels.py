"""The socket.io channel: Rasa's own, keeping the widget's message ids,
answering a resent message once, saying when a message is handled, with its
rooms in Redis when asked.

The cross-instance delivery itself (a reply produced on one Rasa instance
reaching a socket on another) and resends against the real stores are tested
against the running stacks in tests/e2e/test_scaled.py and
tests/e2e/test_socketio.py. Here the network is a recorder in place of the
socket.io server's ``emit``; the lock and tracker stores are Rasa's in-memory
ones.
"""

import asyncio
from types import SimpleNamespace

import pytest

from rasa.core.channels.socketio import SocketIOInput
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from socketio import AsyncRedisManager
from socketio.asyncio_pubsub_manager import AsyncPubSubManager

from bot.channels import RedisSocketIOInput, replies_to
from bot.settings import DEFAULT_REDIS_CHANNEL
from bot.lock_store import QuickInMemoryLockStore

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


# --- message ids and resends ---------------------------------------------

SESSION = "0123456789abcdef0123456789abcde5"
SECRET = "test-chat-identity-secret-0123456789abcdef"
MESSAGE_ID = "0123456789abcdef0123456789abcdef"


class FakeProcessor:
    """Answers like Rasa's processor: the user event and a reply, saved at the end."""

    def __init__(self, tracker_store, hold=None):
        self.tracker_store = tracker_store
        self.handled = []
        self.hold = hold  # an asyncio.Event the answer waits for, if given

    async def handle_message(self, message):
        self.handled.append(message)
        tracker = await self.tracker_store.get_or_create_tracker(message.sender_id)
        tracker.update(UserUttered(message.text, message_id=message.message_id))
        if self.hold is not None:
            await self.hold.wait()
        reply = BotUttered(f"answer to {message.text}")
        await message.output_channel.send_response(message.sender_id, reply.message())
        tracker.update(reply)
        tracker.update(ActionExecuted("action_listen"))
        await self.tracker_store.save(tracker)


class CountingRetrievals:
    """The agent's tracker store as the channel sees it, counting the channel's retrievals."""

    def __init__(self, store):
        self.store = store
        self.retrievals = 0

    async def retrieve(self, sender_id):
        self.retrievals += 1
        return await self.store.retrieve(sender_id)


class Rig:
    """The channel with its blueprint built, a fake agent and a recorder for what goes to sockets.

    Sockets ``sid-1`` and ``sid-2`` hold the session ``SESSION`` (they asked
    for it with its token, as a reconnecting widget does)."""

    def __init__(self, monkeypatch, hold=None):
        monkeypatch.delenv("SOCKETIO_REDIS_URL", raising=False)
        monkeypatch.setenv("CHAT_IDENTITY_SECRET", SECRET)
        self.channel = RedisSocketIOInput.from_credentials(CREDENTIALS)
        self.tracker_store = InMemoryTrackerStore(Domain.empty())
        self.processor = FakeProcessor(self.tracker_store, hold)
        self.agent = SimpleNamespace(
            lock_store=QuickInMemoryLockStore(),
            tracker_store=CountingRetrievals(self.tracker_store),
            processor=self.processor,
            is_ready=lambda: True,
        )
        self.passed_on = []  # what the channel handed to Rasa's Agent.handle_message

        async def on_new_message(message):
            self.passed_on.append(message)
            async with self.agent.lock_store.lock(message.sender_id):
                await self.processor.handle_message(message)

        self.channel.blueprint(on_new_message)
        self.channel.app = SimpleNamespace(ctx=SimpleNamespace(agent=self.agent))
        self.emitted = []
        self.rooms = {}  # sid -> the room it is in

        async def emit(event, data=None, room=None, **kwargs):
            self.emitted.append((event, data, room))

        self.channel.sio.emit = emit
        self.channel.sio.enter_room = lambda sid, room, namespace=None: self.rooms.__setitem__(sid, room)
        self.channel.sio.leave_room = lambda sid, room, namespace=None: self.rooms.pop(sid, None)
        # The handlers socket.io calls.
        self.handler = self.channel.sio.handlers["/"]["user_uttered"]
        self.session_request = self.channel.sio.handlers["/"]["session_request"]
        token = self.channel.sessions.token_for(SESSION)
        for sid in ("sid-1", "sid-2"):
            asyncio.run(self.session_request(sid, {"session_id": SESSION, "session_token": token}))
        self.emitted.clear()

    def send(self, text, **fields):
        payload = {"message": text, "session_id": SESSION, "customData": {"channel": "web_widget"}, **fields}
        asyncio.run(self.handler("sid-1", payload))

    async def user_events(self):
        tracker = await self.tracker_store.retrieve(SESSION)
        return [(e.text, e.message_id) for e in tracker.events if isinstance(e, UserUttered)]


def test_the_clients_message_id_reaches_rasa_with_the_message(monkeypatch):
    rig = Rig(monkeypatch)

    rig.send("where is my order", message_id=MESSAGE_ID)

    [message] = rig.passed_on
    assert (message.text, message.sender_id, message.message_id) == ("where is my order", SESSION, MESSAGE_ID)
    assert message.metadata == {"channel": "web_widget"} and message.input_channel == "socketio"
    assert asyncio.run(rig.user_events()) == [("where is my order", MESSAGE_ID)]


def test_a_message_id_that_is_not_an_id_is_replaced_by_rasas_own(monkeypatch):
    rig = Rig(monkeypatch)

    rig.send("hi", message_id="<script>")
    rig.send("hello", message_id=12345678)

    ids = [message.message_id for message in rig.passed_on]
    assert all(len(i) == 32 and i not in ("<script>", "12345678") for i in ids) and ids[0] != ids[1]


def test_a_message_sent_the_first_time_reads_no_tracker_in_the_channel(monkeypatch):
    rig = Rig(monkeypatch)

    rig.send("hi", message_id=MESSAGE_ID)

    assert rig.agent.tracker_store.retrievals == 0
    assert len(rig.processor.handled) == 1


def test_a_resend_of_a_message_already_answered_is_not_processed_again_and_its_answer_is_replayed(monkeypatch):
    rig = Rig(monkeypatch)
    rig.send("where is my order", message_id=MESSAGE_ID)
    rig.emitted.clear()

    rig.send("where is my order", message_id=MESSAGE_ID, resend=True)

    assert len(rig.processor.handled) == 1
    assert asyncio.run(rig.user_events()) == [("where is my order", MESSAGE_ID)]
    assert rig.emitted == [
        ("bot_uttered", {"text": "answer to where is my order", "replay_of": MESSAGE_ID}, SESSION),
        ("message_handled", {"message_id": MESSAGE_ID}, SESSION),
    ]


def test_a_resend_of_a_message_never_processed_is_processed_once_its_answer_marked_as_a_replay(monkeypatch):
    rig = Rig(monkeypatch)
    rig.send("hi", message_id="a" * 32)
    rig.emitted.clear()

    rig.send("where is my order", message_id=MESSAGE_ID, resend=True)

    assert [m.message_id for m in rig.processor.handled] == ["a" * 32, MESSAGE_ID]
    assert asyncio.run(rig.user_events()) == [("hi", "a" * 32), ("where is my order", MESSAGE_ID)]
    # Perhaps its first copy was cut off half-way through the answer: the
    # widget shows, of the replay, what it does not have yet.
    assert rig.emitted == [
        ("bot_uttered", {"text": "answer to where is my order", "replay_of": MESSAGE_ID}, SESSION),
        ("message_handled", {"message_id": MESSAGE_ID}, SESSION),
    ]


def test_every_message_with_an_id_is_said_to_be_handled_once_rasa_has_finished_with_it(monkeypatch):
    rig = Rig(monkeypatch)

    rig.send("where is my order", message_id=MESSAGE_ID)
    rig.send("no id")

    assert rig.emitted == [
        ("bot_uttered", {"text": "answer to where is my order"}, SESSION),
        ("message_handled", {"message_id": MESSAGE_ID}, SESSION),
        ("bot_uttered", {"text": "answer to no id"}, SESSION),
    ]


def test_a_message_rasa_failed_on_is_not_said_to_be_handled(monkeypatch):
    rig = Rig(monkeypatch)

    async def fails(message):
        raise RuntimeError("the tracker store is down")

    rig.processor.handle_message = fails
    with pytest.raises(RuntimeError):
        rig.send("where is my order", message_id=MESSAGE_ID)

    assert [event for event, _, _ in rig.emitted] == []


def test_a_message_rasa_ignored_for_want_of_a_model_is_not_said_to_be_handled(monkeypatch):
    rig = Rig(monkeypatch)
    rig.agent.is_ready = lambda: False  # Agent.handle_message ignores messages then

    rig.send("where is my order", message_id=MESSAGE_ID)
    rig.send("where is my order", message_id=MESSAGE_ID, resend=True)

    assert [event for event, _, _ in rig.emitted if event == "message_handled"] == []


def test_each_connection_is_told_of_the_channels_features_before_its_session_is_confirmed(monkeypatch):
    rig = Rig(monkeypatch)

    asyncio.run(rig.session_request("sid-3", {"session_id": SESSION, "session_token": rig.channel.sessions.token_for(SESSION)}))

    assert rig.emitted == [
        ("session_features", {"message_handled": True, "session_tokens": True, "max_message_chars": 2000}, "sid-3"),
        ("session_confirm", {"session_id": SESSION, "session_token": rig.channel.sessions.token_for(SESSION)}, "sid-3"),
    ]
    assert rig.rooms["sid-3"] == SESSION


def test_a_resend_arriving_while_the_first_copy_is_answered_waits_for_it_and_is_not_processed(monkeypatch):
    rig = Rig(monkeypatch, hold=asyncio.Event())

    async def scenario():
        first = asyncio.create_task(rig.handler("sid-1", {"message": "hi", "session_id": SESSION, "message_id": MESSAGE_ID}))
        await asyncio.sleep(0.05)  # the first copy holds the lock, its answer not saved yet
        resend = asyncio.create_task(
            rig.handler("sid-2", {"message": "hi", "session_id": SESSION, "message_id": MESSAGE_ID, "resend": True})
        )
        await asyncio.sleep(0.1)
        waited = not resend.done()  # for the conversation's lock
        rig.processor.hold.set()
        await asyncio.gather(first, resend)
        return waited

    assert asyncio.run(scenario())
    assert len(rig.processor.handled) == 1
    assert [data for _, data, _ in rig.emitted] == [
        {"text": "answer to hi"},
        {"message_id": MESSAGE_ID},
        {"text": "answer to hi", "replay_of": MESSAGE_ID},
        {"message_id": MESSAGE_ID},
    ]


def test_a_resend_without_a_message_id_is_processed_like_any_message(monkeypatch):
    rig = Rig(monkeypatch)

    rig.send("hi", resend=True)
    rig.send("hi", resend=True)

    assert len(rig.processor.handled) == 2 and rig.agent.tracker_store.retrievals == 0


def test_the_replies_to_a_message_are_the_bot_messages_up_to_the_customers_next_one():
    events = [
        UserUttered("hi", message_id="m1"),
        BotUttered("hello"),
        UserUttered("order?", message_id="m2"),
        ActionExecuted("utter_order"),
        BotUttered("It ships today."),
        BotUttered("Anything else?"),
        ActionExecuted("action_listen"),
        UserUttered("no", message_id="m3"),
        BotUttered("Bye"),
    ]

    assert [e.text for e in replies_to(events, "m2")] == ["It ships today.", "Anything else?"]
    assert replies_to(events, "m4") is None
    assert replies_to(events[:3], "m2") == []  # processed, nothing said (e.g. a paused conversation)


def test_a_replayed_agent_reply_is_marked_too(monkeypatch):
    rig = Rig(monkeypatch)
    agent_reply = BotUttered(None, {"custom": {"data": {"text": "Sam here", "agent_name": "Sam"}}}, {"handoff_agent": "Sam"})

    async def scenario():
        tracker = await rig.tracker_store.get_or_create_tracker(SESSION)
        tracker.update(UserUttered("a person please", message_id=MESSAGE_ID))
        tracker.update(agent_reply)
        await rig.tracker_store.save(tracker)
        await rig.handler("sid-1", {"message": "a person please", "session_id": SESSION, "message_id": MESSAGE_ID, "resend": True})

    asyncio.run(scenario())

    assert rig.processor.handled == []
    assert rig.emitted == [
        ("bot_uttered", {"text": "Sam here", "agent_name": "Sam", "replay_of": MESSAGE_ID}, SESSION),
        ("message_handled", {"message_id": MESSAGE_ID}, SESSION),
    ]


# --- private sessions, limits and identity, through a real server ------------
#
# A Sanic server with both channels on a free port and python-socketio
# clients (tests/bot/chat_app.py); the agent is a stand-in that records what
# reaches it.

import jwt  # noqa: E402
import time  # noqa: E402

from bot.channels import socket_client_ip  # noqa: E402
from tests.bot.chat_app import SECRET as APP_SECRET, ChatApp, domain, settle, until  # noqa: E402


def identity_token(email, secret=APP_SECRET, **claims):
    return jwt.encode({"email": email, "exp": int(time.time()) + 600, **claims}, secret, algorithm="HS256")


def domain_text(name):
    return domain().responses[name][0]["text"]


def test_a_session_is_issued_by_the_server_with_its_token_and_kept_on_reconnect(monkeypatch):
    async def scenario():
        async with ChatApp(monkeypatch) as app:
            first = await app.socket()
            issued = await first.session(session_id="chosen-by-the-client")
            await first.sio.disconnect()
            again = await app.socket()
            kept = await again.session(**issued)
            return issued, kept, first.received[0]

    issued, kept, features = asyncio.run(scenario())

    assert issued["session_id"] != "chosen-by-the-client" and len(issued["session_id"]) == 32
    assert kept == issued
    assert features == ("session_features", {"message_handled": True, "session_tokens": True, "max_message_chars": 2000})


def test_a_socket_naming_another_sessions_id_gets_a_new_session_reads_nothing_and_cannot_write(monkeypatch):
    async def scenario():
        async with ChatApp(monkeypatch) as app:
            customer = await app.socket()
            session = await customer.session()
            intruder = await app.socket()
            forged = await intruder.session(session_id=session["session_id"], session_token="x" * 43)
            await intruder.session(session_id=session["session_id"])  # no token at all
            await intruder.say(session["session_id"], "let me in")  # writing into the customer's conversation
            await customer.say(session["session_id"], "where is my order")
            await until(lambda: customer.bot_messages())
            return app, session, forged, customer, intruder

    app, session, forged, customer, intruder = asyncio.run(scenario())

    assert forged["session_id"] != session["session_id"]
    assert [m.text for m in app.agent.handled] == ["where is my order"]
    assert customer.bot_messages() == [{"text": "answer to where is my order"}]
    assert intruder.bot_messages() == []


def test_a_socket_leaves_its_old_session_when_it_takes_a_new_one(monkeypatch):
    async def scenario():
        async with ChatApp(monkeypatch) as app:
            client = await app.socket()
            old = await client.session()
            new = await client.session()
            await client.say(old["session_id"], "into the old one")
            await client.say(new["session_id"], "into the new one")
            await until(lambda: client.bot_messages())
            return app, old, new

    app, old, new = asyncio.run(scenario())

    assert old != new
    assert [(m.sender_id, m.text) for m in app.agent.handled] == [(new["session_id"], "into the new one")]


def test_a_disconnected_socket_holds_no_session(monkeypatch):
    async def scenario():
        async with ChatApp(monkeypatch) as app:
            client = await app.socket()
            await client.session()
            await client.sio.disconnect()
            await until(lambda: not app.socket_channel.bound_sessions and not app.socket_channel.addresses)
            return app.socket_channel

    channel = asyncio.run(scenario())

    assert channel.bound_sessions == {} and channel.addresses == {}


def test_a_message_over_the_size_limit_gets_one_polite_reply_and_never_reaches_rasa(monkeypatch):
    async def scenario():
        async with ChatApp(monkeypatch) as app:
            client = await app.socket()
            session = await client.session()
            await client.say(session["session_id"], "x" * 2001, message_id=MESSAGE_ID)
            await client.say(session["session_id"], "é" * 2000)
            await until(lambda: len(client.bot_messages()) == 2)
            return app, client

    app, client = asyncio.run(scenario())

    assert [len(m.text) for m in app.agent.handled] == [2000]
    too_long, answer = client.bot_messages()
    assert too_long == {"text": domain_text("utter_message_too_long").replace("{max_message_chars}", "2000"), "error": "message_too_long"}
    assert "2000 characters" in too_long["text"]
    assert ("message_handled", {"message_id": MESSAGE_ID}) in client.received  # the widget does not send it again


def test_a_burst_of_forty_from_one_conversation_is_throttled_with_one_slow_down(monkeypatch):
    async def scenario():
        async with ChatApp(monkeypatch) as app:
            client = await app.socket()
            session = await client.session()
            for number in range(40):
                await client.say(session["session_id"], f"message {number}")
            await until(lambda: len(app.agent.handled) >= 20 and any(m.get("error") for m in client.bot_messages()))
            await settle(0.3)
            return app, client

    app, client = asyncio.run(scenario())

    assert len(app.agent.handled) == 20
    slow_down = [m for m in client.bot_messages() if m.get("error") == "rate_limited"]
    assert slow_down == [{"text": domain_text("utter_slow_down"), "error": "rate_limited"}]


def test_fifty_conversations_from_one_address_are_not_throttled(monkeypatch):
    async def scenario():
        async with ChatApp(monkeypatch) as app:
            clients = [await app.socket() for _ in range(50)]
            sessions = [await client.session() for client in clients]
            for turn in range(10):
                for client, session in zip(clients, sessions):
                    await client.say(session["session_id"], f"turn {turn}")
                await settle(0.05)
            await until(lambda: len(app.agent.handled) == 500)
            return app, clients

    app, clients = asyncio.run(scenario())

    assert len(app.agent.handled) == 500
    assert not any(m.get("error") for client in clients for m in client.bot_messages())


def test_text_and_metadata_are_cleaned_before_rasa_sees_them(monkeypatch, caplog):
    async def scenario():
        async with ChatApp(monkeypatch) as app:
            client = await app.socket()
            session = await client.session()
            sid = session["session_id"]
            await client.say(sid, "hi\ud800\x00!", customData={"na\udfffme": "x\x00y"})
            await client.say(sid, "nested", customData=nested_dict(20))
            await client.say(sid, "a list", customData=[1, 2, 3])
            await client.say(sid, "a json string", customData='{"channel": "web"}')
            await client.say(sid, "too big", customData={"note": "x" * 5000})
            await client.say(sid, ["not", "text"])
            await client.say(sid, None)
            await client.sio.emit("user_uttered", [1, 2, 3])
            # No payload at all: python-socketio calls the handler without one.
            await client.sio.emit("user_uttered")
            await client.say(sid, "last")
            await until(lambda: app.agent.handled and app.agent.handled[-1].text == "last")
            return app

    app = asyncio.run(scenario())

    assert [(m.text, m.metadata) for m in app.agent.handled] == [
        ("hi\ufffd!", {"na\ufffdme": "xy"}),
        ("nested", {}),
        ("a list", {}),
        ("a json string", {"channel": "web"}),
        ("too big", {}),
        ("last", {}),
    ]
    raised = [r for r in caplog.records if r.exc_info and r.exc_info[0] is TypeError]
    assert not raised, "a socket.io handler raised on a payload it did not expect"


def nested_dict(depth):
    value = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def test_a_signed_identity_is_verified_and_a_client_sent_one_never_reaches_rasa(monkeypatch):
    forged = {"email": "ada@example.com", "verified": True, "via": "token"}

    async def scenario():
        async with ChatApp(monkeypatch) as app:
            client = await app.socket()
            sid = (await client.session())["session_id"]
            await client.say(sid, "claim", customData={"identity": forged, "email": "ada@example.com"})
            await client.say(sid, "forged", customData={"identity_token": identity_token("ada@example.com", "not-the-secret-0123456789abcdef")})
            await client.say(sid, "signed", customData={"identity_token": identity_token("Ada@Example.com", name="Ada")})
            await until(lambda: len(app.agent.handled) == 3)
            return app

    app = asyncio.run(scenario())

    claim, forged_token, signed = app.agent.handled
    assert claim.metadata == {"email": "ada@example.com"}
    assert forged_token.metadata == {}
    assert signed.metadata == {
        "identity": {"email": "ada@example.com", "name": "Ada", "external_id": None, "verified": True, "via": "token"}
    }


def test_a_different_verified_customer_in_the_same_conversation_starts_a_new_session_first(monkeypatch):
    async def scenario():
        async with ChatApp(monkeypatch) as app:
            client = await app.socket()
            sid = (await client.session())["session_id"]
            await client.say(sid, "anonymous hello")
            retrievals_for_anonymous = app.agent.tracker_store.retrievals
            await client.say(sid, "I am Ada", customData={"identity_token": identity_token("ada@example.com")})
            await client.say(sid, "still Ada", customData={"identity_token": identity_token("ada@example.com")})
            await client.say(sid, "now Bob", customData={"identity_token": identity_token("bob@example.com")})
            await until(lambda: len(app.agent.handled) == 5)
            return app, retrievals_for_anonymous

    app, retrievals_for_anonymous = asyncio.run(scenario())

    assert [m.text for m in app.agent.handled] == ["anonymous hello", "I am Ada", "still Ada", "/session_start", "now Bob"]
    assert retrievals_for_anonymous == 0  # an anonymous message costs no tracker retrieval


def test_a_socket_counts_against_the_address_a_local_proxy_forwarded():
    request = SimpleNamespace(ip="127.0.0.1")

    assert socket_client_ip({"sanic.request": request, "HTTP_X_FORWARDED_FOR": "10.0.0.1,198.51.100.7"}) == "198.51.100.7"
    assert socket_client_ip({"sanic.request": SimpleNamespace(ip="203.0.113.5"), "HTTP_X_FORWARDED_FOR": "1.2.3.4"}) == "203.0.113.5"


def test_one_address_over_its_own_limit_is_throttled_across_conversations(monkeypatch):
    async def scenario():
        async with ChatApp(monkeypatch, CHAT_IP_BURST="5", CHAT_IP_PER_MINUTE="1") as app:
            clients = [await app.socket() for _ in range(8)]
            for client in clients:
                await client.say((await client.session())["session_id"], "hi")
            await until(lambda: sum(len(c.bot_messages()) for c in clients) == 8)
            return app, clients

    app, clients = asyncio.run(scenario())

    assert len(app.agent.handled) == 5
    assert sum(1 for c in clients for m in c.bot_messages() if m.get("error") == "rate_limited") == 3
