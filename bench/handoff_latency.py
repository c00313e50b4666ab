"""Handoff latency (issue #8): an agent's reply to the customer's socket, and a
customer's message to where the agent console reads it, on the real stack.

    .venv/backend/bin/python -m bench.handoff_latency [--replies 100] [--messages 100]

Starts the stack like the end-to-end tests (harness/stack.py: free ports,
temporary var/). A socket.io customer (ada@example.com) asks for a person,
the handoff is claimed for agent@example.com through the API, then:

(a) agent reply -> customer socket: ``POST /api/v1/handoffs/{id}/messages``,
    timed from just before the POST until the customer's socket gets the
    ``bot_uttered`` with that text (one reply at a time);
(b) customer message -> console: emit ``user_uttered`` on the customer's
    socket, timed until the message is visible where the console reads it,
    both at once: polling ``GET /api/v1/handoffs/{id}`` every 20 ms, and the
    console's live stream ``/console/events?handoff={id}`` of a signed-in
    agent (Server-Sent Events; the console is signed in like a browser:
    login form with its CSRF token, session cookie). One message at a time,
    after a random 0.05-1.05 s pause, so that the message is not in step with
    the follower's and the stream's 0.5 s polls.

Prints p50/p95/max and whether the goals are met (agent reply p95 < 500 ms,
customer message p95 < 2 s); the last line is one JSON object.
Needs `make setup train`.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

from harness.stack import Stack
from harness.stats import percentile
from harness.widget_client import WidgetClient

AGENT = ("agent@example.com", "northwind-demo")
REPLY_GOAL_MS = 500
CONSOLE_GOAL_MS = 2000
POLL_SECONDS = 0.02


def figures(samples: list[float]) -> dict:
    if not samples:
        return {"n": 0}
    return {
        "n": len(samples),
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(percentile(samples, 95), 1),
        "max_ms": round(max(samples), 1),
    }


def line(name: str, stats: dict, goal_ms: float | None = None) -> str:
    if not stats.get("n"):
        return f"{name:<44} no samples"
    text = (
        f"{name:<44} n={stats['n']:<3} p50 {stats['p50_ms']:7.1f} ms   p95 {stats['p95_ms']:7.1f} ms"
        f"   max {stats['max_ms']:7.1f} ms"
    )
    if goal_ms is not None:
        text += f"   goal p95 < {goal_ms:.0f} ms: {'met' if stats['p95_ms'] < goal_ms else 'NOT met'}"
    return text


def drain(client: WidgetClient, quiet: float) -> list[dict]:
    messages = []
    while True:
        try:
            messages.append(client.replies.get(timeout=quiet))
        except queue.Empty:
            return messages


class ConsoleStream:
    """The console's live stream for one handoff, as a signed-in agent's
    browser holds it; records when each customer message arrives."""

    def __init__(self, crm_url: str, handoff_id: int):
        self.crm_url = crm_url
        self.handoff_id = handoff_id
        self.session = requests.Session()
        login = self.session.get(f"{crm_url}/console/login", timeout=10)
        login.raise_for_status()
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
        signed_in = self.session.post(
            f"{crm_url}/console/login",
            data={"email": AGENT[0], "password": AGENT[1], "csrf_token": token, "next": ""},
            timeout=10,
        )
        signed_in.raise_for_status()
        assert "/console/login" not in signed_in.url, "could not sign in to the console"
        self.arrivals: dict[str, float] = {}
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.closed = False
        self.last_id = 0
        self.response = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.connected.wait(15):
            raise RuntimeError("the console's event stream did not open")

    def _run(self) -> None:
        while not self.closed:
            try:
                self.response = self.session.get(
                    f"{self.crm_url}/console/events",
                    params={"handoff": self.handoff_id, "after": self.last_id},
                    headers={"Accept": "text/event-stream"},
                    stream=True,
                    timeout=(10, 60),
                )
                self.response.raise_for_status()
                self.connected.set()
                name = None
                for raw in self.response.iter_lines(chunk_size=1, decode_unicode=True):
                    now = time.perf_counter()
                    if raw.startswith("event: "):
                        name = raw[7:]
                    elif raw.startswith("data: ") and name == "message":
                        data = json.loads(raw[6:])
                        self.last_id = max(self.last_id, data["id"])
                        if data["sender"] == "customer":
                            with self.lock:
                                for marker in re.findall(r"cm-[0-9a-f]{12}", data["html"]):
                                    self.arrivals.setdefault(marker, now)
                    elif raw == "":
                        name = None
            except (requests.RequestException, AttributeError, ValueError):
                if self.closed:
                    return
                time.sleep(0.5)

    def arrival(self, marker: str) -> float | None:
        with self.lock:
            return self.arrivals.get(marker)

    def close(self) -> None:
        self.closed = True
        if self.response is not None:
            self.response.close()
        self.session.close()


def queue_handoff(stack: Stack, api: dict, client: WidgetClient) -> int:
    client.sio.emit(
        "user_uttered",
        {
            "message": "I need to talk to a person about my refund for the kettle",
            "session_id": client.session_id,
            "customData": {"email": "ada@example.com"},
        },
    )
    first = client.replies.get(timeout=60)
    said = " ".join(m.get("text", "") for m in [first, *drain(client, 3)])
    if "A person will reply right here" not in said:
        raise RuntimeError(f"the handoff was not queued; the bot said: {said!r}")
    response = requests.get(
        f"{stack.crm_url}/api/v1/handoffs", params={"conversation_id": client.session_id}, headers=api, timeout=10
    )
    response.raise_for_status()
    [handoff] = response.json()["items"]
    claimed = requests.post(
        f"{stack.crm_url}/api/v1/handoffs/{handoff['id']}/claim",
        json={"agent_email": AGENT[0]},
        headers=api,
        timeout=10,
    )
    claimed.raise_for_status()
    return handoff["id"]


def agent_replies(stack: Stack, api: dict, client: WidgetClient, handoff_id: int, count: int) -> tuple[list, int]:
    url = f"{stack.crm_url}/api/v1/handoffs/{handoff_id}/messages"
    samples, failures = [], 0
    for i in range(count):
        text = f"Agent reply {i + 1}, ref {uuid.uuid4().hex[:8]}."
        start = time.perf_counter()
        response = requests.post(url, json={"agent_email": AGENT[0], "text": text}, headers=api, timeout=30)
        if response.status_code != 201:
            failures += 1
            print(f"reply {i + 1}: HTTP {response.status_code} {response.text[:200]}", file=sys.stderr)
            continue
        deadline = start + 30
        while True:
            left = deadline - time.perf_counter()
            try:
                message = client.replies.get(timeout=max(0.001, left))
            except queue.Empty:
                failures += 1
                print(f"reply {i + 1}: never reached the socket", file=sys.stderr)
                break
            if message.get("text") == text:
                samples.append((time.perf_counter() - start) * 1000)
                break
        time.sleep(0.05)
    return samples, failures


def customer_messages(
    stack: Stack, api: dict, client: WidgetClient, handoff_id: int, count: int, stream: ConsoleStream | None
) -> tuple[list, list, int]:
    url = f"{stack.crm_url}/api/v1/handoffs/{handoff_id}"
    polled, streamed, failures = [], [], 0
    http = requests.Session()
    for i in range(count):
        marker = f"cm-{uuid.uuid4().hex[:12]}"
        text = f"Customer message {i + 1} ({marker})"
        start = time.perf_counter()
        client.sio.emit("user_uttered", {"message": text, "session_id": client.session_id})
        seen_poll = seen_stream = None
        deadline = start + 15
        while time.perf_counter() < deadline:
            if seen_poll is None:
                response = http.get(url, headers=api, timeout=10)
                now = time.perf_counter()
                if response.ok and any(marker in m["text"] for m in response.json()["messages"]):
                    seen_poll = now
            if stream is not None and seen_stream is None:
                seen_stream = stream.arrival(marker)
            if seen_poll is not None and (stream is None or seen_stream is not None):
                break
            time.sleep(POLL_SECONDS)
        if seen_poll is None:
            failures += 1
            print(f"message {i + 1}: not in the handoff after 15 s", file=sys.stderr)
        else:
            polled.append((seen_poll - start) * 1000)
        if stream is not None:
            if seen_stream is None:
                print(f"message {i + 1}: not on the console's stream after 15 s", file=sys.stderr)
            else:
                streamed.append((seen_stream - start) * 1000)
        # The follower and the console's stream both look every 0.5 s: a
        # random pause keeps the next message from falling in step with them.
        time.sleep(random.uniform(0.05, 1.05))
    http.close()
    return polled, streamed, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=100)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--no-sse", action="store_true", help="only poll the API for customer messages")
    args = parser.parse_args()
    load_before = os.getloadavg()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(var_dir=Path(tmp) / "var").start()
        client = stream = None
        try:
            print(f"stack ready in {time.monotonic() - started:.1f} s", flush=True)
            stack.sign_in_agent()  # an agent online, so the handoff goes to a person
            key = stack.api_key("bench-handoff-latency", "handoffs:read", "handoffs:write")
            api = {"Authorization": f"Bearer {key}"}
            client = WidgetClient(stack.rasa_url)  # the server issues the session (issue 19)
            handoff_id = queue_handoff(stack, api, client)
            drain(client, 1)
            replies, reply_failures = agent_replies(stack, api, client, handoff_id, args.replies)
            sse_error = None
            if not args.no_sse:
                try:
                    stream = ConsoleStream(stack.crm_url, handoff_id)
                except Exception as error:  # noqa: BLE001 (reported, polling still runs)
                    sse_error = f"{type(error).__name__}: {error}"
                    print(f"console stream unavailable: {sse_error}", file=sys.stderr)
            polled, streamed, message_failures = customer_messages(
                stack, api, client, handoff_id, args.messages, stream
            )
        finally:
            if stream is not None:
                stream.close()
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001
                    pass
            stack.stop()
    load_after = os.getloadavg()
    result = {
        "agent_reply_to_socket": {**figures(replies), "failures": reply_failures, "goal_p95_ms": REPLY_GOAL_MS},
        "customer_to_console_api_poll": {
            **figures(polled),
            "failures": message_failures,
            "poll_ms": POLL_SECONDS * 1000,
            "goal_p95_ms": CONSOLE_GOAL_MS,
        },
        "customer_to_console_sse": {**figures(streamed), "goal_p95_ms": CONSOLE_GOAL_MS, "error": sse_error},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
    }
    for name in result:
        if name.startswith(("agent", "customer")):
            stats = result[name]
            stats["goal_met"] = bool(stats.get("n")) and stats["p95_ms"] < stats["goal_p95_ms"] and not stats.get(
                "failures"
            )
    print(line("agent reply -> customer socket", result["agent_reply_to_socket"], REPLY_GOAL_MS))
    print(line("customer message -> console (API poll 20 ms)", result["customer_to_console_api_poll"], CONSOLE_GOAL_MS))
    print(line("customer message -> console (SSE stream)", result["customer_to_console_sse"], CONSOLE_GOAL_MS))
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)")
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
