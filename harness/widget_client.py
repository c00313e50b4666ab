"""A socket.io client that behaves like the chat widget with a stored session,
one blocking call per step: what the end-to-end tests and the handoff
benchmark talk to Rasa's socket.io channel with. (bench.scale_load's many
concurrent widgets are harness/load/widget.py's asyncio client.)
"""

import queue
import time

import socketio


class WidgetClient:
    """A socket.io client that behaves like a chat widget with a stored session.

    The server issues the session id (issue 19): a client that asks for an id
    without that session's token gets a new one. ``session_id`` and
    ``session_token`` are what the server confirmed; pass both back to resume
    the session (a reload, another tab). ``custom_data`` goes with every
    message, as the widget sends its ``customData`` (say an identity token).
    """

    def __init__(
        self,
        url: str,
        session_id: str | None = None,
        session_token: str | None = None,
        custom_data: dict | None = None,
    ):
        self.replies: queue.Queue = queue.Queue()
        self.confirmed: queue.Queue = queue.Queue()
        self.handled: queue.Queue = queue.Queue()  # message_handled events
        self.features: queue.Queue = queue.Queue()  # session_features events
        self.arrivals: list[str] = []  # every event's name, in order
        self.custom_data = {"channel": "web_widget", **(custom_data or {})}
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", lambda event, *_: self.arrivals.append(event))
        self.sio.on("bot_uttered", lambda data: (self.arrivals.append("bot_uttered"), self.replies.put(data)))
        self.sio.on("session_confirm", lambda data: (self.arrivals.append("session_confirm"), self.confirmed.put(data)))
        self.sio.on("message_handled", lambda data: (self.arrivals.append("message_handled"), self.handled.put(data)))
        self.sio.on("session_features", lambda data: (self.arrivals.append("session_features"), self.features.put(data)))
        self.sio.connect(url, transports=["websocket"], socketio_path="socket.io", wait_timeout=10)
        request = {"session_id": session_id} if session_id else {}
        if session_token:
            request["session_token"] = session_token
        self.sio.emit("session_request", request)
        confirmation = self.confirmed.get(timeout=10)
        # {"session_id", "session_token"}; Rasa's stock channel sent the id alone.
        if isinstance(confirmation, dict):
            self.session_id, self.session_token = confirmation["session_id"], confirmation.get("session_token")
        else:
            self.session_id, self.session_token = confirmation, None

    def say(self, text: str) -> dict:
        self.send(text)
        return self.replies.get(timeout=30)

    def send(self, text: str, **fields) -> None:
        """A message as the widget sends it, e.g. with ``message_id`` and ``resend``."""
        self.sio.emit(
            "user_uttered", {"message": text, "session_id": self.session_id, "customData": self.custom_data, **fields}
        )

    def next_words(self, timeout: float = 15) -> dict:
        """The next bot message with words: a presence signal (a person joined, types, left;
        docs/widget.md "A person in the chat") is skipped. ``queue.Empty`` if none comes in time."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.replies.get(timeout=max(0.001, deadline - time.monotonic()))
            if "presence" not in message:
                return message

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
