"""Whole conversations over socket.io, as the web widget holds them: the
default profile (`make run`), the scaled profile (`make run-scaled`) and a
stock `rasa init` bot, in one run (issue 11).

    .venv/bot/bin/python bench/scale_load.py [--levels 20,50,100] [--duration 60]
                                            [--only default,scaled,stock] [--quick] [--keep]

Starts the three side by side (the default profile through tests/e2e/stack.py,
the scaled profile through tests/e2e/scaled_stack.py with databases, queue and
channels of its own, the stock bot as bench/conversations.py builds it, with
its socket.io channel switched on) and keeps them running; the levels are
interleaved (level 20: stock, default, scaled; level 50: ...) so other work
on the machine weighs on all alike. The scaled profile needs PostgreSQL,
Redis, RabbitMQ and nginx; without them it is left out, with the reason.

Each simulated customer is a widget: a socket.io connection (websocket, as
the widget tries first), `session_request` for a new session (the server
issues its id and, ours, a session token; both are asked for again on a
reconnect), then `user_uttered` with the page's customData, a closed loop
(the next message as soon as the whole reply is in), a new connection and
session for each new conversation. The flows are bench/conversations.py's
(greeting, FAQ, complaint -> ticket, satisfaction score, goodbye; a known
customer's ticket status, signed in with `customData.identity_token`) and
the stock bot's own. Every widget connects from 127.0.0.1: the chat rate
limits stay at their defaults.

How many messages a turn's reply has is learnt first, one conversation at a
time with a 2 s quiet window; under load a turn is complete when that many
have arrived. Figures:

- messages/s: turns completed inside the window (the whole reply in);
- p50/p95/p99: time from sending to the turn's last reply message, every turn
  sent in the window (a lost reply counts with the 30 s it waited);
- lost: reply messages that never came (30 s); doubled: a reply message that
  came twice; late: one that came after its turn timed out; off-script:
  replies without the words the flow expects next;
- tickets: every ticket number a customer was told exists in the CRM, and no
  conversation has two tickets (API look-up per complaint conversation);
- CPU: each server process group's share of a core over the window, from
  /proc, with PostgreSQL, Redis and RabbitMQ counted for the scaled profile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

import aiohttp
import socketio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.conversations import (
    BENCH_DIR,
    OUR_SCRIPTS,
    STOCK_DIR,
    STOCK_SCRIPTS,
    Script,
    Turn,
    build_stock_bot,
    signed_metadata,
    cmdline,
    cpu_seconds,
    fmt,
    loadavg,
    log,
    percentile,
    start_stock_bot,
    stop_group,
)
from tests.e2e.stack import Stack, descendants

TURN_TIMEOUT = 30.0
QUIET_SECONDS = 2.0
# The widget's automatic resend (widget/src/connection.js): after a reconnect,
# or when no reply has come this long while connected.
RESEND_AFTER = 20.0
# A resent turn waits this long from the resend: after a Rasa crash the
# conversation's lock stays with the dead instance until it expires (60 s).
RESENT_TURN_TIMEOUT = 75.0
TICKET = re.compile(r"TCK-\d{6,}")
GOAL_SCALED_RATIO = 1.6
STOCK_CREDENTIALS = "credentials.socketio.yml"


# --- one customer's widget -------------------------------------------------


@dataclass
class TurnResult:
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


# --- the bots --------------------------------------------------------------


@dataclass
class Bot:
    name: str
    url: str
    scripts: tuple[Script, ...]
    pids: Callable[[], dict[str, list[int]]]
    note: str
    crm_url: str | None = None
    crm_key: str | None = None
    reply_counts: dict[tuple[str, int], int] = field(default_factory=dict)
    problems: dict = field(default_factory=dict)
    identity_secret: str | None = None  # what signs customers' identities (the stack's chat_identity_secret)
    tokens: dict = field(default_factory=dict)  # (email, name) -> a signed identity, made once


def classify(pid: int) -> str | None:
    command = cmdline(pid)
    if "respawn.sh" in command or command.startswith(("bash ", "/bin/sh ", "/usr/bin/bash ")):
        return None  # wrappers: their children are counted
    for words, role in (
        ("actions.server", "actions"),
        ("rasa run", "rasa"),
        ("gunicorn", "crm"),
        ("nginx", "lb"),
        ("handoffs follow", "follower"),
        ("webhooks worker", "webhooks"),
        ("multiprocessing.spawn", "nlu"),  # a Rasa instance's NLU worker (bot/nlu_worker.py)
    ):
        if words in command:
            return role
    return None


def stack_roles(stack: Stack, services: bool = False) -> dict[str, list[int]]:
    roles: dict[str, list[int]] = defaultdict(list)
    if stack.process is None:
        return roles
    for pid in descendants(stack.process.pid):
        role = classify(pid)
        if role:
            roles[role].append(pid)
    if services:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                name = (entry / "comm").read_text().strip()
            except OSError:
                continue
            role = {"postgres": "postgresql", "redis-server": "redis", "beam.smp": "rabbitmq"}.get(name)
            if role:
                roles[role].append(int(entry.name))
    return roles


def cpu_by_role(roles: dict[str, list[int]]) -> dict[str, float]:
    return {role: sum(cpu_seconds(pid) for pid in pids) for role, pids in roles.items()}


def write_stock_credentials() -> None:
    (STOCK_DIR / STOCK_CREDENTIALS).write_text(
        "# Written by bench/scale_load.py: the scaffold's REST channel and Rasa's socket.io channel.\n"
        "rest:\n"
        "socketio:\n"
        "  user_message_evt: user_uttered\n"
        "  bot_message_evt: bot_uttered\n"
        "  session_persistence: true\n"
    )


BACKEND_PYTHON = REPO / ".venv" / "backend" / "bin" / "python"


def in_backend(code: str) -> subprocess.CompletedProcess:
    """Runs ``code`` in the backend environment, which has PostgreSQL's and RabbitMQ's clients."""
    return subprocess.run([str(BACKEND_PYTHON), "-c", code], cwd=REPO, capture_output=True, text=True, check=False)


def missing_services() -> list[str]:
    """tests/e2e/scaled_stack.py's check of PostgreSQL, Redis, RabbitMQ and nginx."""
    result = in_backend("import json; from tests.e2e.scaled_stack import missing_services; print(json.dumps(missing_services()))")
    if result.returncode != 0:
        return [f"the backend environment could not check the services: {result.stderr.strip()[-300:]}"]
    return json.loads(result.stdout.strip().splitlines()[-1])


def remove_scaled_state(name: str) -> None:
    """Drops the scaled profile's databases, queue and exchange (ScaledStack.remove_state)."""
    result = in_backend(
        "import sys; from pathlib import Path; from tests.e2e.scaled_stack import ScaledStack; "
        f"ScaledStack(var_dir=Path('.'), name={name!r}).remove_state()"
    )
    if result.returncode != 0:
        log(f"could not remove the scaled profile's databases and queue {name}: {result.stderr.strip()[-300:]}")


# --- driving ---------------------------------------------------------------


def custom_data(bot: "Bot", script: Script, sender: str) -> dict:
    """What the shop's page passes with each message: the signed-in customer's
    identity (signed by the shop's backend), or the email a visitor gave (a claim)."""
    data = {"channel": "web_widget"}
    data.update(signed_metadata(script, bot.identity_secret, bot.tokens) or {})
    if "@" in sender and "email" not in data:
        data["email"] = sender
    return data


async def learn_reply_counts(bot: Bot) -> None:
    """How many messages each turn's reply has, one conversation at a time."""
    for script in bot.scripts:
        widget = Widget(bot.url, custom_data(bot, script, script.sender.format(tag=uuid.uuid4().hex[:8])))
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
            data = custom_data(bot, script, sender)
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


async def check_tickets(bot: Bot, conversations: list[tuple[str, list[TurnResult]]]) -> dict:
    """Every ticket number told exists; no complaint conversation has two tickets."""
    told = {number for _, turns in conversations for t in turns if t.kind == "confirm_ticket" for number in t.tickets}
    emails = [email for email, turns in conversations if email and any(t.kind == "confirm_ticket" for t in turns)]
    if not bot.crm_url or not bot.crm_key:
        return {}
    in_crm: dict[str, list[str]] = {}
    headers = {"Authorization": f"Bearer {bot.crm_key}"}
    semaphore = asyncio.Semaphore(8)
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def look_up(email: str) -> None:
            async with semaphore:
                async with session.get(f"{bot.crm_url}/api/v1/tickets", params={"customer_email": email}) as response:
                    body = await response.json()
                    in_crm[email] = [item["number"] for item in body.get("items", body.get("data", []))]

        await asyncio.gather(*(look_up(email) for email in emails))
    numbers = {number for found in in_crm.values() for number in found}
    return {
        "complaint_conversations_confirmed": len(emails),
        "tickets_in_crm": len(numbers),
        "ticket_numbers_told": len(told),
        "told_but_missing": len(told - numbers),
        "conversations_with_two_tickets": sum(len(found) > 1 for found in in_crm.values()),
    }


def measure(bot: Bot, concurrency: int, duration: float, tag: str) -> dict:
    roles = bot.pids()
    load_before = loadavg()
    cpu_before, client_before = cpu_by_role(roles), time.process_time()
    run = asyncio.run(drive(bot, concurrency, duration, tag))
    window = run["end"] - run["start"]
    cpu_after, client_after = cpu_by_role(roles), time.process_time()
    results: list[TurnResult] = run["results"]
    tickets = asyncio.run(check_tickets(bot, run["conversations"]))
    completed = [r for r in results if not r.lost and r.done <= run["end"]]
    latencies = [r.latency_ms for r in results]
    by_kind: dict[str, list[TurnResult]] = defaultdict(list)
    for r in results:
        by_kind[r.kind].append(r)
    cpu_ms = {role: (cpu_after[role] - cpu_before[role]) * 1000 for role in cpu_before}
    rounded = lambda v: None if v is None else round(v, 1)
    return {
        "concurrency": concurrency,
        "duration_s": round(window, 1),
        "messages": len(completed),
        "messages_per_s": round(len(completed) / window, 2),
        "turns_sent": len(results),
        "p50_ms": rounded(percentile(latencies, 50)),
        "p95_ms": rounded(percentile(latencies, 95)),
        "p99_ms": rounded(percentile(latencies, 99)),
        "lost": sum(r.lost for r in results),
        "turns_with_lost_replies": sum(bool(r.lost) for r in results),
        "doubled": sum(r.doubled for r in results),
        "late": sum(r.late for r in results),
        "off_script": sum(r.off_script for r in results),
        "connect_errors": run["connect_errors"],
        "disconnects": run["disconnects"],
        "tickets": tickets,
        "per_kind_p50_ms": {kind: rounded(percentile([r.latency_ms for r in group], 50)) for kind, group in sorted(by_kind.items())},
        "cpu_core_share": {role: round(ms / 1000 / window, 2) for role, ms in sorted(cpu_ms.items())},
        "cpu_core_share_total": round(sum(cpu_ms.values()) / 1000 / window, 2),
        "cpu_ms_per_message": {role: round(ms / max(1, len(completed)), 1) for role, ms in sorted(cpu_ms.items())},
        "client_cpu_core_share": round((client_after - client_before) / window, 2),
        "loadavg_before": load_before,
    }


# --- main ------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", help="comma-separated concurrent conversations (default 20,50,100; --quick: 5)")
    parser.add_argument("--duration", type=float, help="seconds per bot and level (default 60; --quick: 10)")
    parser.add_argument("--only", help="comma-separated: default, scaled, stock (default all three)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--keep", action="store_true", help="keep the run's var/ and logs (kept anyway after trouble)")
    args = parser.parse_args()
    args.levels = [int(level) for level in (args.levels or ("5" if args.quick else "20,50,100")).split(",")]
    args.duration = args.duration or (10.0 if args.quick else 60.0)
    args.only = [name.strip() for name in (args.only or "stock,default,scaled").split(",")]
    unknown = set(args.only) - {"stock", "default", "scaled"}
    if unknown:
        parser.error(f"--only takes default, scaled and stock, not {', '.join(sorted(unknown))}")
    return args


def interrupted(signum, frame) -> None:
    raise KeyboardInterrupt


def print_table(results: dict[str, dict[int, dict]]) -> None:
    print()
    print(f"{'profile':8} {'conc':>4} {'turns':>6} {'msg/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'lost':>5} {'doubled':>7} {'late':>5} {'off':>4}  CPU (cores)")
    for level in sorted({level for by_level in results.values() for level in by_level}):
        for name in ("stock", "default", "scaled"):
            f = results.get(name, {}).get(level)
            if not f:
                continue
            cpu = ", ".join(f"{role} {share:.2f}" for role, share in f["cpu_core_share"].items() if share >= 0.01)
            print(f"{name:8} {level:>4} {f['messages']:>6} {f['messages_per_s']:>7} {fmt(f['p50_ms']):>8} "
                  f"{fmt(f['p95_ms']):>8} {fmt(f['p99_ms']):>8} {f['lost']:>5} {f['doubled']:>7} {f['late']:>5} "
                  f"{f['off_script']:>4}  total {f['cpu_core_share_total']:.2f}: {cpu}; client {f['client_cpu_core_share']:.2f}")
    for name, by_level in results.items():
        for level, f in sorted(by_level.items()):
            if f["tickets"]:
                print(f"{name} at {level}: tickets {json.dumps(f['tickets'])}")
            if f["connect_errors"] or f["disconnects"]:
                print(f"{name} at {level}: connect errors {f['connect_errors']}, disconnects {f['disconnects']}")


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupted)
    started_at = datetime.now()
    load_before = loadavg()
    log(f"load average before: {load_before} ({os.cpu_count()} cores)")
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=f"scale-load-{started_at:%Y%m%d-%H%M%S}-", dir=BENCH_DIR))
    names = list(args.only)
    skipped: dict[str, str] = {}
    if "scaled" in names:
        missing = missing_services()
        if missing:
            skipped["scaled"] = "; ".join(missing)
            names.remove("scaled")
            log(f"scaled profile left out: {skipped['scaled']}")
    children: list[subprocess.Popen] = []
    stacks: list[Stack] = []
    bots: dict[str, Bot] = {}
    results: dict[str, dict[int, dict]] = {name: {} for name in names}
    ok = False
    try:
        if "stock" in names:
            model = build_stock_bot(children)
            write_stock_credentials()
            url, started = start_stock_bot(model, run_dir, children, credentials=STOCK_CREDENTIALS)
            rasa_pid = started[-1].pid
            bots["stock"] = Bot("stock", url, STOCK_SCRIPTS, lambda: {"rasa": [rasa_pid]},
                                "rasa init: one Rasa process, in-memory tracker store, no action server")
            log(f"stock bot: up at {url}")
        if "default" in names:
            log("default profile: starting scripts/run_stack.sh")
            default = Stack(var_dir=run_dir / "default")
            stacks.append(default)
            default.start()
            bots["default"] = Bot(
                "default", default.rasa_url, OUR_SCRIPTS, lambda: stack_roles(default),
                "make run: one Rasa (SQLite tracker store, SQL event broker), one action server, CRM on SQLite "
                "(gunicorn, 1 worker as tests/e2e/stack.py sets it), webhook worker, follower",
                crm_url=default.crm_url, crm_key=default.api_key("bench-scale", "tickets:read"),
                identity_secret=default.identity_secret,
            )
            default.sign_in_agent()
            log(f"default profile: up at {default.rasa_url}")
        if "scaled" in names:
            log("scaled profile: starting scripts/run_scaled.sh")
            from tests.e2e.scaled_stack import ScaledStack

            scaled = ScaledStack(var_dir=run_dir / "scaled")
            stacks.append(scaled)
            scaled.start()
            bots["scaled"] = Bot(
                "scaled", scaled.lb_url, OUR_SCRIPTS, lambda: stack_roles(scaled, services=True),
                "make run-scaled: nginx, two Rasa (PostgreSQL trackers, Redis locks and socket.io rooms, "
                "events to RabbitMQ), two action servers, CRM on PostgreSQL (gunicorn, 2 workers), "
                "two webhook workers, the broker consumer",
                crm_url=scaled.lb_url, crm_key=scaled.api_key("bench-scale", "tickets:read"),
                identity_secret=scaled.identity_secret,
            )
            scaled.sign_in_agent()
            log(f"scaled profile: up at {scaled.lb_url}")
        for name in names:
            asyncio.run(learn_reply_counts(bots[name]))
        for level in args.levels:
            for name in names:
                log(f"{name}: {level} concurrent conversations for {args.duration:.0f} s")
                f = measure(bots[name], level, args.duration, f"{started_at:%H%M%S}-{name}-c{level}")
                results[name][level] = f
                log(f"{name}: {f['messages_per_s']} msg/s, p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms, "
                    f"lost {f['lost']}, doubled {f['doubled']}, late {f['late']}, off-script {f['off_script']}, "
                    f"CPU {f['cpu_core_share_total']} cores")
        ok = True
    except KeyboardInterrupt:
        log("interrupted: stopping every process this benchmark started")
        return 130
    finally:
        for stack in stacks:
            stack.stop()
            if hasattr(stack, "remove_state"):
                remove_scaled_state(stack.name)
        for child in reversed(children):
            stop_group(child)
        troubled = any(
            f["lost"] or f["doubled"] or f["off_script"] for by_level in results.values() for f in by_level.values()
        )
        if ok and not args.keep and not troubled:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            log(f"logs kept in {run_dir}")

    load_after = loadavg()
    print_table(results)
    for name, reason in skipped.items():
        print(f"{name}: not measured ({reason})")
    print(f"\nload average before: {load_before}; after: {load_after} ({os.cpu_count()} cores)")
    ratios = {
        level: round(results["scaled"][level]["messages_per_s"] / results["default"][level]["messages_per_s"], 2)
        for level in args.levels
        if results.get("scaled", {}).get(level) and results.get("default", {}).get(level, {}).get("messages_per_s")
    }
    for level, ratio in ratios.items():
        print(f"scaled / default messages/s at {level}: {ratio} (goal >= {GOAL_SCALED_RATIO})")
    top = max(args.levels)
    clean_at_top = {
        name: by_level[top]["lost"] == 0 and by_level[top]["doubled"] == 0
        for name, by_level in results.items()
        if top in by_level
    }
    print(json.dumps({
        "started": started_at.isoformat(timespec="seconds"),
        "command": ".venv/bot/bin/python bench/scale_load.py " + " ".join(sys.argv[1:]),
        "cores": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "duration_s": args.duration,
        "levels": args.levels,
        "profiles": {name: bot.note for name, bot in bots.items()},
        "skipped": skipped,
        "reply_counts": {name: {f"{s}#{i}": n for (s, i), n in bot.reply_counts.items()} for name, bot in bots.items()},
        "results": {name: {str(level): f for level, f in by_level.items()} for name, by_level in results.items()},
        "scaled_over_default": ratios,
        "goals_met": {
            f"no_lost_or_doubled_at_{top}": clean_at_top,
            f"scaled_ge_{GOAL_SCALED_RATIO}x_default": {str(level): ratio >= GOAL_SCALED_RATIO for level, ratio in ratios.items()},
        },
        "problems": {name: bot.problems for name, bot in bots.items()},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
