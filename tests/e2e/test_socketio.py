"""The socket.io channel with session persistence, as a web widget uses it.

Guards the python-socketio==5.8.0 pin: with newer releases Rasa 3.6.21 never
joins the session's room and replies to a persistent session go nowhere.
"""

import queue
import uuid

import socketio


class WidgetClient:
    """A socket.io client that behaves like a chat widget with a stored session id."""

    def __init__(self, url: str, session_id: str):
        self.session_id = session_id
        self.replies: queue.Queue = queue.Queue()
        self.confirmed: queue.Queue = queue.Queue()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("bot_uttered", self.replies.put)
        self.sio.on("session_confirm", self.confirmed.put)
        self.sio.connect(url, transports=["websocket"], socketio_path="socket.io", wait_timeout=10)
        self.sio.emit("session_request", {"session_id": session_id})
        self.confirmed.get(timeout=10)

    def say(self, text: str) -> dict:
        self.sio.emit("user_uttered", {"message": text, "session_id": self.session_id})
        return self.replies.get(timeout=30)

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
