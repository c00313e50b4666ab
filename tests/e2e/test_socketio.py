"""The socket.io channel with session persistence, as a web widget uses it.

Guards the python-socketio==5.8.0 pin: with newer releases Rasa 3.6.21 never
joins the session's room and replies to a persistent session go nowhere.
Also the widget's resends (issue 11, bot/channels.py): a message sent again
with its message_id is answered once, and Rasa says when it has handled one.
"""

import queue
import uuid

import requests
import socketio


class WidgetClient:
    """A socket.io client that behaves like a chat widget with a stored session id."""

    def __init__(self, url: str, session_id: str):
        self.session_id = session_id
        self.replies: queue.Queue = queue.Queue()
        self.confirmed: queue.Queue = queue.Queue()
        self.handled: queue.Queue = queue.Queue()  # message_handled events
        self.arrivals: list[str] = []  # every event's name, in order
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", lambda event, *_: self.arrivals.append(event))
        self.sio.on("bot_uttered", lambda data: (self.arrivals.append("bot_uttered"), self.replies.put(data)))
        self.sio.on("session_confirm", lambda data: (self.arrivals.append("session_confirm"), self.confirmed.put(data)))
        self.sio.on("message_handled", lambda data: (self.arrivals.append("message_handled"), self.handled.put(data)))
        self.sio.connect(url, transports=["websocket"], socketio_path="socket.io", wait_timeout=10)
        self.sio.emit("session_request", {"session_id": session_id})
        self.confirmed.get(timeout=10)

    def say(self, text: str) -> dict:
        self.sio.emit("user_uttered", {"message": text, "session_id": self.session_id})
        return self.replies.get(timeout=30)

    def send(self, text: str, **fields) -> None:
        """A message as the widget sends it, e.g. with ``message_id`` and ``resend``."""
        self.sio.emit(
            "user_uttered",
            {"message": text, "session_id": self.session_id, "customData": {"channel": "web_widget"}, **fields},
        )

    def replies_until_quiet(self, first_timeout: float = 30, quiet: float = 3) -> list[dict]:
        """Every bot message until the bot has been silent for ``quiet`` seconds."""
        messages = []
        timeout = first_timeout
        while True:
            try:
                messages.append(self.replies.get(timeout=timeout))
            except queue.Empty:
                return messages
            timeout = quiet

    def close(self) -> None:
        self.sio.disconnect()


def test_a_persistent_session_gets_its_reply(stack):
    client = WidgetClient(stack.rasa_url, session_id=uuid.uuid4().hex)
    try:
        reply = client.say("hi")
    finally:
        client.close()

    assert reply["text"].startswith("Hi")


def test_the_session_survives_a_reconnect(stack):
    session_id = uuid.uuid4().hex
    first = WidgetClient(stack.rasa_url, session_id)
    first.say("hi")
    first.close()

    second = WidgetClient(stack.rasa_url, session_id)
    try:
        reply = second.say("bye")
    finally:
        second.close()

    assert "ye" in reply["text"]  # "Goodbye…" or "Bye for now…"
    # Both turns are one conversation in the tracker store.
    import requests

    tracker = requests.get(
        f"{stack.rasa_url}/conversations/{session_id}/tracker",
        params={"token": stack.rasa_token},
        timeout=10,
    ).json()
    said = [e["text"] for e in tracker["events"] if e.get("event") == "user"]
    assert said == ["hi", "bye"]


def test_the_customers_email_from_the_host_page_personalises_the_greeting(stack):
    session_id = uuid.uuid4().hex
    client = WidgetClient(stack.rasa_url, session_id)
    try:
        client.sio.emit(
            "user_uttered",
            {"message": "hello", "session_id": session_id, "customData": {"email": "ada@example.com"}},
        )
        reply = client.replies.get(timeout=30)
    finally:
        client.close()

    assert reply["text"].startswith("Hi Ada")


def user_events(stack, session_id: str) -> list[dict]:
    tracker = requests.get(
        f"{stack.rasa_url}/conversations/{session_id}/tracker",
        params={"token": stack.rasa_token},
        timeout=10,
    ).json()
    return [e for e in tracker["events"] if e.get("event") == "user"]


def test_a_message_resent_after_its_answer_is_not_processed_again_and_its_answer_is_replayed(stack):
    session_id, message_id = uuid.uuid4().hex, uuid.uuid4().hex
    client = WidgetClient(stack.rasa_url, session_id)
    try:
        client.send("hi", message_id=message_id)
        answer = client.replies_until_quiet()
        # The widget got no reply (say its socket dropped) and sends the message again.
        client.send("hi", message_id=message_id, resend=True)
        replayed = client.replies_until_quiet(first_timeout=15)
    finally:
        client.close()

    assert answer and answer[0]["text"].startswith("Hi")
    assert replayed == [{**message, "replay_of": message_id} for message in answer]
    assert [(e["text"], e["message_id"]) for e in user_events(stack, session_id)] == [("hi", message_id)]


def test_a_resent_message_rasa_never_got_is_answered_once(stack):
    session_id, lost_id = uuid.uuid4().hex, uuid.uuid4().hex
    client = WidgetClient(stack.rasa_url, session_id)
    try:
        # The first copy never arrived (the socket died under it): only the resend does.
        client.send("hi", message_id=lost_id, resend=True)
        answer = client.replies_until_quiet()
    finally:
        client.close()

    # Marked as a replay: the widget shows what it does not have yet (all of it here).
    assert answer and answer[0]["text"].startswith("Hi") and answer[0]["replay_of"] == lost_id
    assert [(e["text"], e["message_id"]) for e in user_events(stack, session_id)] == [("hi", lost_id)]


def test_rasa_says_when_it_has_handled_a_message_after_its_last_reply(stack):
    session_id, message_id = uuid.uuid4().hex, uuid.uuid4().hex
    client = WidgetClient(stack.rasa_url, session_id)
    try:
        client.send("hi", message_id=message_id)
        handled = client.handled.get(timeout=30)
        answer = client.replies_until_quiet(first_timeout=1, quiet=1)
        client.say("how long does shipping take")  # no message_id: nothing to say about it
        client.replies_until_quiet(first_timeout=1, quiet=1)
    finally:
        client.close()

    assert handled == {"message_id": message_id}
    assert answer and answer[0]["text"].startswith("Hi")
    # Announced before the session was confirmed; handled only after every reply.
    assert client.arrivals[:2] == ["session_features", "session_confirm"]
    assert client.arrivals.count("message_handled") == 1
    first_turn = client.arrivals[2 : client.arrivals.index("message_handled") + 1]
    assert first_turn[-1] == "message_handled" and set(first_turn[:-1]) == {"bot_uttered"}


def test_a_handoff_request_resent_makes_one_handoff_in_the_crm(stack):
    session_id, message_id = uuid.uuid4().hex, uuid.uuid4().hex
    key = stack.api_key("e2e-resend", "handoffs:read")
    request = "I need to talk to a person about my refund for the kettle"
    client = WidgetClient(stack.rasa_url, session_id)
    try:
        client.send(request, message_id=message_id, customData={"email": "ada@example.com"})
        answer = client.replies_until_quiet()
        client.send(request, message_id=message_id, resend=True, customData={"email": "ada@example.com"})
        replayed = client.replies_until_quiet(first_timeout=15)
    finally:
        client.close()

    handoffs = requests.get(
        f"{stack.crm_url}/api/v1/handoffs",
        params={"conversation_id": session_id},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    ).json()["items"]
    assert "A person will reply right here" in " ".join(m.get("text", "") for m in answer)
    assert [m["text"] for m in replayed] == [m["text"] for m in answer]
    assert len(handoffs) == 1
    assert [e["message_id"] for e in user_events(stack, session_id)] == [message_id]
