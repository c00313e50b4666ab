"""Closed-loop conversations over socket.io as the web widget holds them, the
load of bench.scale_load and bench.scale_faults: a connection per
conversation, a session the server issues, the widget's resends (optional),
and a turn that is over when its whole reply is in. Needs aiohttp and
python-socketio's asyncio client (the bot environment).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import socketio

from harness.load.flows import Bot, Turn
from harness.report import log

TURN_TIMEOUT = 30.0
QUIET_SECONDS = 2.0
# The widget's automatic resend (widget/src/connection.js): after a reconnect,
# or when no reply has come this long while connected.
RESEND_AFTER = 20.0
# A resent turn waits this long from the resend: after a Rasa crash the
# conversation's lock stays with the dead instance until it expires (60 s).
RESENT_TURN_TIMEOUT = 75.0
# A ticket number as the bot tells it to a customer.
TICKET = re.compile(r"TCK-\d{6,}")


@dataclass
class TurnResult:
    """One turn as a widget lived it: when it was sent and complete, how many
    reply messages it expected and got, and what went wrong."""

    kind: str
    sent: float
    done: float
    expected: int
    received: int
    doubled: int = 0
    late: int = 0
    off_script: bool = False
    tickets: tuple[str, ...] = ()
    resent: bool = False  # the widget sent the message again by itself (no reply after a reconnect or 20 s)
    handled: bool = True  # Rasa said it finished (and saved) the message, where it says so

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.received)

    @property
    def latency_ms(self) -> float:
        return (self.done - self.sent) * 1000


# Put in a Widget's inbox when the pending message is handled (not a reply).
HANDLED = object()


def message_key(message: dict) -> str:
    return json.dumps(message, sort_keys=True)


class Widget:
    """A socket.io client that behaves like the chat widget: a session the
    server issues on the first connection (its id and, from our channel, its
    session token; the stock channel confirms a bare id), asked for again with
    both on every reconnection, messages sent once, replies as they come.

    With ``resend`` it also does what the widget does about lost replies
    (widget/src/connection.js): every message carries a ``message_id``; one
    that has had no reply since it was sent is sent again once, with
    ``resend: true``, when the socket is confirmed again after a disconnect
    or when no reply has come for RESEND_AFTER seconds; Rasa's replayed
    answer (``replay_of``) is taken from where the replies that came stopped.
    A message counts as answered when our channel says it is handled
    (``message_handled``, announced by ``session_features``), not at its
    first reply, so a reply cut off half-way is resent too. Without ``resend``
    (the stock bot, whose channel would process a resend again) messages
    are sent once and that is all."""

    def __init__(self, url: str, custom_data: dict, resend: bool = False):
        self.url = url
        self.session_id: str | None = None  # issued by the server in session_confirm
        self.session_token: str | None = None
        self.custom_data = custom_data
        self.resend = resend
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.confirmed = asyncio.Event()
        self.disconnects = 0
        self.connection = 0  # which (re)connection the socket is on
        # The message last sent: {"payload", "via" (connection), "answered",
        # "resent", "replies" (that came for it), "replayed" (parts of a replay seen)}.
        self.pending: dict | None = None
        self.acks = False  # this connection's server says when it has handled a message
        self.sio = socketio.AsyncClient(reconnection=True, reconnection_delay=0.5, reconnection_delay_max=4)
        self.sio.on("connect", self._on_connect)
        self.sio.on("session_features", self._on_features)
        self.sio.on("session_confirm", self._on_confirm)
        self.sio.on("bot_uttered", self._on_reply)
        self.sio.on("message_handled", self._on_handled)
        self.sio.on("disconnect", self._on_disconnect)

    async def _on_connect(self) -> None:
        self.acks = False
        request = {}
        if self.session_id is not None:
            request["session_id"] = self.session_id
        if self.session_token is not None:
            request["session_token"] = self.session_token
        await self.sio.emit("session_request", request)

    async def _on_features(self, data=None) -> None:
        self.acks = isinstance(data, dict) and data.get("message_handled") is True

    async def _on_handled(self, data=None) -> None:
        pending = self.pending
        if pending and isinstance(data, dict) and data.get("message_id") == pending["payload"].get("message_id"):
            pending["answered"] = True
            self.inbox.put_nowait(HANDLED)  # wakes a turn that has its replies and waits for this

    async def _on_confirm(self, data=None, *_args) -> None:
        if isinstance(data, dict):  # ours: {session_id, session_token}
            self.session_id, self.session_token = data.get("session_id"), data.get("session_token")
        elif isinstance(data, str):  # the stock channel: the id
            self.session_id = data
        self.connection += 1
        self.confirmed.set()
        pending = self.pending
        if pending and pending["via"] != self.connection:
            await self._resend()

    async def _on_reply(self, data: dict) -> None:
        pending = self.pending
        if isinstance(data, dict) and "replay_of" in data:
            if not (pending and pending["resent"] and not pending["answered"]
                    and pending["payload"]["message_id"] == data["replay_of"]):
                return  # answered already: the widget does not show it again
            pending["replayed"] += 1
            if pending["replayed"] <= pending["replies"]:
                return  # this part came already, before the answer was cut off
            data = {k: v for k, v in data.items() if k != "replay_of"}
        elif pending:
            if self.acks:
                pending["replies"] += 1
            else:
                pending["answered"] = True
        self.inbox.put_nowait(data)

    async def _on_disconnect(self) -> None:
        self.confirmed.clear()
        self.disconnects += 1

    async def _resend(self) -> None:
        """Sends the pending message again if it is unanswered and was not resent yet."""
        pending = self.pending
        if not self.resend or not pending or pending["answered"] or pending["resent"] or not self.confirmed.is_set():
            return
        pending["resent"] = True
        try:
            await self.sio.emit("user_uttered", {**pending["payload"], "resend": True})
        except socketio.exceptions.SocketIOError:
            pending["resent"] = False  # not out: the next confirm tries again

    async def open(self) -> None:
        await self.sio.connect(self.url, transports=["websocket"], socketio_path="socket.io", wait_timeout=10)
        await asyncio.wait_for(self.confirmed.wait(), 10)

    async def close(self) -> None:
        try:
            await self.sio.disconnect()
        except Exception:  # noqa: BLE001 - a broken or refused connection
            pass

    def drain(self) -> list[dict]:
        messages = []
        while not self.inbox.empty():
            message = self.inbox.get_nowait()
            if message is not HANDLED:
                messages.append(message)
        return messages

    async def send(self, text: str) -> None:
        # Like the widget's queue: wait for the connection, then send once.
        await asyncio.wait_for(self.confirmed.wait(), TURN_TIMEOUT)
        payload = {"message": text, "session_id": self.session_id, "customData": self.custom_data}
        if self.resend:
            payload["message_id"] = uuid.uuid4().hex
        self.pending = {
            "payload": payload, "via": self.connection, "answered": False, "resent": False, "replies": 0, "replayed": 0,
        }
        await self.sio.emit("user_uttered", payload)

    async def turn(self, turn: Turn, expected: int, previous: list[dict]) -> tuple[TurnResult, list[dict]]:
        stray = self.drain()
        previous_keys = {message_key(m) for m in previous}
        doubled = sum(message_key(m) in previous_keys for m in stray)
        sent = time.monotonic()
        got: list[dict] = []
        resent_at: float | None = None
        deadline = sent + TURN_TIMEOUT
        needs_ack = False
        self.pending = None  # the previous turn's message is done with
        try:
            await self.send(turn.message)
            # With a server that says so, a turn is over when its message is
            # handled too: all of its replies may have come from an instance
            # that died before saving the turn (the widget resends it then).
            needs_ack = self.resend and self.acks
            while len(got) < expected or (needs_ack and not self.pending["answered"]):
                now = time.monotonic()
                pending = self.pending
                if resent_at is None and pending["resent"]:
                    resent_at = now  # a reconnect or the 20 s sent it again: wait for that answer
                    deadline = max(deadline, resent_at + RESENT_TURN_TIMEOUT)
                if now >= deadline:
                    break
                wait = deadline - now
                if self.resend and resent_at is None:
                    if now >= sent + RESEND_AFTER:
                        await self._resend()  # nothing if a reply came or the socket is down
                        if pending["resent"]:
                            continue
                    else:
                        wait = min(wait, sent + RESEND_AFTER - now)
                    wait = min(wait, 1.0)  # look again soon: a reconnect may resend it meanwhile
                try:
                    message = await asyncio.wait_for(self.inbox.get(), wait)
                except asyncio.TimeoutError:
                    continue
                if message is not HANDLED:
                    got.append(message)
        except (asyncio.TimeoutError, socketio.exceptions.SocketIOError):
            pass
        resent = bool(self.pending and self.pending["resent"])
        handled = not needs_ack or bool(self.pending and self.pending["answered"])
        done = time.monotonic() if len(got) >= expected and handled else deadline
        keys = [message_key(m) for m in got]
        doubled += len(keys) - len(set(keys))
        text = " ".join(str(m.get("text", "")) for m in got)
        result = TurnResult(
            kind=turn.kind,
            sent=sent,
            done=done,
            expected=expected,
            received=len(got),
            doubled=doubled,
            late=len(stray) - sum(message_key(m) in previous_keys for m in stray),
            off_script=bool(got) and not turn.on_script(text),
            tickets=tuple(sorted(set(TICKET.findall(text)))),
            resent=resent,
            handled=handled,
        )
        return result, got


async def learn_reply_counts(bot: Bot) -> None:
    """How many messages each turn's reply has, one conversation at a time."""
    for script in bot.scripts:
        widget = Widget(bot.url, bot.custom_data(script, script.sender.format(tag=uuid.uuid4().hex[:8])))
        await widget.open()
        try:
            for index, turn in enumerate(script.turns):
                await widget.send(turn.message)
                got = [await asyncio.wait_for(widget.inbox.get(), TURN_TIMEOUT)]
                while True:
                    try:
                        got.append(await asyncio.wait_for(widget.inbox.get(), QUIET_SECONDS))
                    except asyncio.TimeoutError:
                        break
                bot.reply_counts[(script.name, index)] = len(got)
                text = " ".join(str(m.get("text", "")) for m in got)
                if not turn.on_script(text):
                    log(f"{bot.name}: WARNING while learning, {turn.kind} off script: {text[:160]!r}")
        finally:
            await widget.close()
    counts = ", ".join(
        f"{script.name} " + "/".join(str(bot.reply_counts[(script.name, i)]) for i in range(len(script.turns)))
        for script in bot.scripts
    )
    log(f"{bot.name}: reply messages per turn: {counts}")


async def drive(bot: Bot, concurrency: int, duration: float, tag: str) -> dict:
    """`concurrency` widgets in closed loops for `duration` seconds (after
    learn_reply_counts): every turn, each complaint conversation's customer
    email and turns, the window, connection errors and disconnects."""
    results: list[TurnResult] = []
    conversations: list[tuple[str, list[TurnResult]]] = []  # (customer email or "", its turns)
    connect_errors: Counter = Counter()
    disconnects = 0
    start = time.monotonic()
    deadline = start + duration

    async def customer(number: int) -> None:
        nonlocal disconnects
        conversation = 0
        while time.monotonic() < deadline:
            script = bot.scripts[(number + conversation) % len(bot.scripts)]
            conversation += 1
            sender = script.sender.format(tag=f"{tag}-{number}-{conversation}")
            data = bot.custom_data(script, sender)
            widget = Widget(bot.url, data)
            try:
                await widget.open()
            except Exception as error:  # noqa: BLE001 - reported
                connect_errors[type(error).__name__] += 1
                await widget.close()
                await asyncio.sleep(1)
                continue
            turns: list[TurnResult] = []
            previous: list[dict] = []
            try:
                for index, turn in enumerate(script.turns):
                    if time.monotonic() >= deadline:
                        break
                    result, previous = await widget.turn(turn, bot.reply_counts[(script.name, index)], previous)
                    turns.append(result)
                    if (result.lost or result.off_script) and turn.kind not in bot.problems:
                        bot.problems[turn.kind] = (
                            f"{'lost' if result.lost else 'off-script'} ({result.received}/{result.expected} messages) "
                            f"to {turn.message!r}"
                        )
                    if result.lost:
                        break  # the conversation's state is unknown: a new customer
                # Anything still coming for this conversation is late or doubled.
                await asyncio.sleep(0.5)
                stray = widget.drain()
                if stray and turns:
                    keys = {message_key(m) for m in previous}
                    turns[-1].doubled += sum(message_key(m) in keys for m in stray)
                    turns[-1].late += sum(message_key(m) not in keys for m in stray)
            finally:
                disconnects += widget.disconnects
                await widget.close()
            results.extend(turns)
            conversations.append((data.get("email", "") if script.name == "complaint" else "", turns))

    await asyncio.gather(*(customer(n) for n in range(concurrency)))
    return {
        "results": results,
        "conversations": conversations,
        "start": start,
        "end": deadline,
        "connect_errors": dict(connect_errors),
        "disconnects": disconnects,
    }

