"""Faults under load on the scaled profile (`make run-scaled`), each with what
customers saw and what was lost (issue 11).

    .venv/bot/bin/python -m bench.scale_faults [--concurrency 20] [--observe 60]
                                              [--webhook-outage 300] [--only rasa,actions,postgres,redis,webhooks]

NOT part of `make test`: it restarts this machine's PostgreSQL and stops its
Redis for 10 s (both come back, started the way the machine starts them), so
run it only when nothing else uses them.

Starts the scaled profile on free ports (harness/scaled.py, databases,
queue and channels of its own), subscribes a webhook receiver of its own to
`ticket.created`, puts `--concurrency` widget customers on it
(harness/load/widget.py's socket.io client, harness/load/flows.py's flows,
closed loops), and then, one after another, each with `--observe` seconds of
load after it:

1. `kill -9` one Rasa instance (scripts/respawn.sh starts it again);
2. `kill -9` one action server (likewise);
3. restart PostgreSQL (`pg_ctlcluster ... restart`, fast shutdown);
4. stop Redis (`redis-cli shutdown nosave`), start it again 10 s later;
5. the webhook receiver down for `--webhook-outage` seconds (default 300).

Each customer's client does what the widget does about a lost reply
(harness/load/widget.py's Widget with ``resend``, widget/src/connection.js):
a message that has had no reply is sent again by itself, once, with its
``message_id`` and ``resend: true``, when the socket is confirmed again
after a disconnect or after 20 s without a reply; Rasa answers it unless it
already had it (then it replays that answer, bot/channels.py). A resent
turn waits up to 75 s from the resend (a dead Rasa instance's lock expires
after 60 s); the conversation goes on if the answer comes. At the end: every ticket number a
customer was told exists; no conversation has two tickets; every ticket
created in the run reached the webhook receiver (waiting for the CRM's
retries, up to --drain seconds); each fault's window: turns, replies lost,
turns that needed the resend, conversations that resumed, latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp
from aiohttp import web

from harness import BENCH_DIR
from harness.load.flows import OUR_SCRIPTS, Bot
from harness.load.widget import TICKET, TurnResult, Widget, learn_reply_counts
from harness.ports import free_port
from harness.processes import cmdline, descendants, loadavg
from harness.report import log
from harness.scaled import ScaledStack, missing_services_from_backend, remove_state_from_backend
from harness.stats import percentile

REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
    "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
]


@dataclass
class Record:
    """One turn as a customer lived it."""

    conversation: str
    result: TurnResult  # the client's automatic resend, if any, is part of the turn

    @property
    def lost_first(self) -> bool:
        """The first send got no (complete) reply: the turn needed the resend, or was lost."""
        return self.result.resent or bool(self.result.lost) or not self.result.handled

    @property
    def answered(self) -> bool:
        """Every reply came and Rasa saved the turn (said so with ``message_handled``)."""
        return not self.result.lost and self.result.handled


@dataclass
class Run:
    records: list[Record] = field(default_factory=list)
    conversations: dict[str, dict] = field(default_factory=dict)  # id -> {email, complete, had_loss}
    stop: asyncio.Event = field(default_factory=asyncio.Event)


class Receiver:
    """A webhook receiver that can be taken down and brought back on the same port."""

    def __init__(self, port: int):
        self.port = port
        self.tickets: dict[str, float] = {}  # ticket number -> first delivery time
        self.deliveries = 0
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.deliveries += 1
        for number in TICKET.findall(body):
            self.tickets.setdefault(number, time.monotonic())
        return web.Response(status=204)

    async def up(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def down(self) -> None:
        if self.runner:
            await self.runner.cleanup()
            self.runner = None


async def customer(bot: Bot, run: Run, number: int, tag: str) -> None:
    conversation = 0
    while not run.stop.is_set():
        script = bot.scripts[(number + conversation) % len(bot.scripts)]
        conversation += 1
        sender = script.sender.format(tag=f"{tag}-{number}-{conversation}")
        data = bot.custom_data(script, sender)
        conversation_id = f"{number}-{conversation}"
        state = run.conversations[conversation_id] = {
            "email": data.get("email") if script.name == "complaint" else None,
            "complete": False, "had_loss": False, "confirmed": False,
        }
        widget = Widget(bot.url, data, resend=True)
        try:
            await widget.open()
        except Exception:  # noqa: BLE001 - a broken or refused connection
            await widget.close()
            run.conversations.pop(conversation_id)
            await asyncio.sleep(2)
            continue
        previous: list[dict] = []
        try:
            for index, turn in enumerate(script.turns):
                if run.stop.is_set():
                    break
                expected = bot.reply_counts[(script.name, index)]
                result, previous = await widget.turn(turn, expected, previous)
                record = Record(conversation_id, result)
                if record.lost_first:
                    state["had_loss"] = True
                run.records.append(record)
                if turn.kind == "confirm_ticket":
                    state["confirmed"] = True
                if not record.answered:
                    break
            else:
                state["complete"] = True
        finally:
            await widget.close()


def pid_of(stack: ScaledStack, words: str) -> int | None:
    for pid in sorted(descendants(stack.process.pid)):
        command = cmdline(pid)
        if words in command and "respawn.sh" not in command:
            return pid
    return None


def run_command(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    return (result.stdout + result.stderr).strip()


async def inject(name: str, stack: ScaledStack, receiver: Receiver, outage: float) -> str:
    """Does the fault; returns what was done. Returns once the fault is over
    (the thing is back, or being brought back by its supervisor)."""
    loop = asyncio.get_running_loop()
    if name == "rasa":
        pid = pid_of(stack, f"--port {stack.rasa_port} ")
        os.kill(pid, 9)
        return f"kill -9 Rasa instance 1 (pid {pid}); respawn.sh starts it again"
    if name == "actions":
        pid = pid_of(stack, f"--port {stack.actions_port} ")
        os.kill(pid, 9)
        return f"kill -9 action server 1 (pid {pid}); respawn.sh starts it again"
    if name == "postgres":
        cluster = max(os.listdir("/etc/postgresql"))
        started = time.monotonic()
        out = await loop.run_in_executor(
            None, run_command, ["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "restart"]
        )
        return f"pg_ctlcluster {cluster} main restart ({time.monotonic() - started:.1f} s) {out}".strip()
    if name == "redis":
        await loop.run_in_executor(None, run_command, ["redis-cli", "shutdown", "nosave"])
        await asyncio.sleep(10)
        out = await loop.run_in_executor(None, run_command, REDIS_START)
        return f"redis-cli shutdown nosave, 10 s, redis-server started again {out}".strip()
    if name == "webhooks":
        await receiver.down()
        await asyncio.sleep(outage)
        await receiver.up()
        return f"webhook receiver down for {outage:.0f} s, then up again"
    raise ValueError(name)


# A turn sent at most this long before a fault began, and not finished by
# then, was in flight when it struck: it counts in that fault's window, not
# the one before (p99 is about 2 s here, the windows are --observe apart).
IN_FLIGHT_GRACE = 5.0


def window_of(record: Record, starts: list[tuple[str, float]]) -> str | None:
    """The window a turn counts in: the last one begun before it was sent, or
    the last one begun while it was in flight (at most IN_FLIGHT_GRACE s after sending)."""
    chosen = None
    for name, start in starts:  # in order
        if start <= record.result.sent or (start < record.result.done and start - record.result.sent < IN_FLIGHT_GRACE):
            chosen = name
    return chosen


def window_figures(run: Run, start: float, end: float, records: list[Record] | None = None) -> dict:
    if records is None:
        records = [r for r in run.records if start <= r.result.sent < end]
    lost = [r for r in records if r.lost_first]
    latencies = [r.result.latency_ms for r in records]
    touched = {r.conversation for r in lost}
    return {
        "turns": len(records),
        "turns_without_reply": len(lost),
        "answered_after_resend": sum(1 for r in lost if r.answered),
        "not_answered_even_after_resend": sum(1 for r in lost if not r.answered),
        "conversations_hit": len(touched),
        "conversations_resumed": sum(1 for c in touched if run.conversations.get(c, {}).get("complete")),
        "doubled": sum(r.result.doubled for r in records),
        "late": sum(r.result.late for r in records),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "last_loss_after_s": round(max(r.result.sent for r in lost) - start, 1) if lost else None,
        # Each turn that stayed unanswered, as its customer lived it: what it
        # was, how many of its replies came, whether the client resent it.
        "never_answered": [
            {
                "conversation": r.conversation,
                "kind": r.result.kind,
                "expected": r.result.expected,
                "received": r.result.received,
                "handled": r.result.handled,
                "resent": r.result.resent,
                "sent_after_s": round(r.result.sent - start, 1),
            }
            for r in lost
            if not r.answered
        ],
    }


async def tickets_in_crm(url: str, key: str, emails: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    semaphore = asyncio.Semaphore(8)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as session:
        async def look_up(email: str) -> None:
            async with semaphore:
                async with session.get(f"{url}/api/v1/tickets", params={"customer_email": email}) as response:
                    found[email] = [item["number"] for item in (await response.json())["items"]]

        await asyncio.gather(*(look_up(email) for email in emails))
    return found


async def main_async(args: argparse.Namespace, stack: ScaledStack, run_tag: str) -> dict:
    receiver = Receiver(port=args.receiver_port)
    await receiver.up()
    admin = stack.api_key("bench-faults", "admin")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin}"}) as session:
        async with session.post(f"{stack.lb_url}/api/v1/webhooks", json={
            "url": f"http://127.0.0.1:{receiver.port}/hook", "events": ["ticket.created"], "description": "fault bench",
        }) as response:
            if response.status != 201:
                raise SystemExit(f"could not subscribe the receiver: {response.status} {await response.text()}")
    bot = Bot("scaled", stack.lb_url, OUR_SCRIPTS, dict, "scaled profile", identity_secret=stack.identity_secret)
    await learn_reply_counts(bot)
    run = Run()
    begun = time.monotonic()
    customers = [asyncio.create_task(customer(bot, run, n, run_tag)) for n in range(args.concurrency)]
    bounds: dict[str, tuple[str, float, float]] = {}  # window -> (what, start, end)
    try:
        log(f"{args.concurrency} customers: {args.observe:.0f} s of load before the first fault")
        await asyncio.sleep(args.observe)
        bounds["baseline"] = ("no fault", begun, time.monotonic())
        for name in args.only:
            log(f"fault: {name}")
            start = time.monotonic()
            what = await inject(name, stack, receiver, args.webhook_outage)
            log(f"  {what}; observing {args.observe:.0f} s")
            await asyncio.sleep(args.observe)
            bounds[name] = (what, start, time.monotonic())
    finally:
        run.stop.set()
        # Turns still waiting (and their resends) finish before anything is counted.
        await asyncio.gather(*customers, return_exceptions=True)
    ended = time.monotonic()
    windows: dict[str, dict] = {}
    starts = [(name, start) for name, (_, start, _) in bounds.items()]
    for name, (what, start, end) in bounds.items():
        records = [r for r in run.records if window_of(r, starts) == name]
        windows[name] = {"what": what, "seconds": round(end - start), **window_figures(run, start, end, records)}
        log(f"{name}: {json.dumps(windows[name])}")

    # Tickets: told, in the CRM, doubled; webhooks: every ticket delivered.
    emails = [c["email"] for c in run.conversations.values() if c["email"] and c["confirmed"]]
    key = stack.api_key("bench-faults-read", "tickets:read")
    found = await tickets_in_crm(stack.lb_url, key, emails)
    in_crm = {number for numbers in found.values() for number in numbers}
    told = {n for r in run.records if r.result.kind == "confirm_ticket" for n in r.result.tickets}
    log(f"waiting up to {args.drain:.0f} s for the CRM's webhook retries to deliver {len(in_crm)} tickets")
    deadline = time.monotonic() + args.drain
    while time.monotonic() < deadline and not in_crm <= set(receiver.tickets):
        await asyncio.sleep(5)
    delivered = in_crm & set(receiver.tickets)
    await receiver.down()
    return {
        "windows": windows,
        "load_seconds": round(ended - begun),
        "turns": len(run.records),
        "conversations": len(run.conversations),
        "conversations_complete": sum(c["complete"] for c in run.conversations.values()),
        "tickets": {
            "complaint_conversations_confirmed": len(emails),
            "tickets_in_crm": len(in_crm),
            "numbers_told_to_customers": len(told),
            "told_but_missing": sorted(told - in_crm),
            "conversations_with_two_tickets": sum(len(n) > 1 for n in found.values()),
            "confirmed_without_ticket": sum(1 for n in found.values() if not n),
        },
        "webhooks": {
            "tickets_delivered": len(delivered),
            "tickets_not_delivered": sorted(in_crm - delivered),
            "deliveries_received": receiver.deliveries,
            "last_delivery_after_load_s": round(max(receiver.tickets.values()) - ended, 1) if receiver.tickets else None,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--observe", type=float, default=60.0, help="seconds of load after each fault (default 60)")
    parser.add_argument("--webhook-outage", type=float, default=300.0, help="seconds the receiver is down (default 300)")
    parser.add_argument("--drain", type=float, default=900.0, help="seconds to wait for webhook retries (default 900)")
    parser.add_argument("--only", default="rasa,actions,postgres,redis,webhooks")
    parser.add_argument("--receiver-port", type=int, default=0)
    args = parser.parse_args()
    args.only = [name.strip() for name in args.only.split(",")]
    unknown = set(args.only) - {"rasa", "actions", "postgres", "redis", "webhooks"}
    if unknown:
        parser.error(f"unknown faults: {', '.join(sorted(unknown))}")
    missing = missing_services_from_backend()
    if missing:
        print("the scaled profile cannot run here: " + "; ".join(missing), file=sys.stderr)
        return 2
    if not args.receiver_port:
        args.receiver_port = free_port()
    started_at = datetime.now()
    load_before = loadavg()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)  # a fresh checkout has no var/
    run_dir = Path(tempfile.mkdtemp(prefix=f"scale-faults-{started_at:%Y%m%d-%H%M%S}-", dir=BENCH_DIR))
    stack = ScaledStack(var_dir=run_dir / "scaled")
    log(f"scaled profile: starting (logs in {run_dir})")
    try:
        stack.start()
        stack.sign_in_agent()
        report = asyncio.run(main_async(args, stack, f"{started_at:%H%M%S}"))
    finally:
        stack.stop()
        problem = remove_state_from_backend(stack.name)
        if problem:
            log(f"could not remove the scaled profile's databases and queue {stack.name}: {problem}")
    respawns = [line for line in stack.log().splitlines() if "respawn:" in line]
    report.update({
        "started": started_at.isoformat(timespec="seconds"),
        "command": ".venv/bot/bin/python -m bench.scale_faults " + " ".join(sys.argv[1:]),
        "concurrency": args.concurrency,
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        "respawns": respawns,
        "logs": str(run_dir),
    })
    print()
    print(f"{'window':10} {'turns':>6} {'no reply':>8} {'ok on resend':>12} {'never':>6} {'conv hit':>8} "
          f"{'resumed':>7} {'doubled':>7} {'p50 ms':>7} {'p99 ms':>8} {'last loss at':>12}")
    for name, w in report["windows"].items():
        print(f"{name:10} {w['turns']:>6} {w['turns_without_reply']:>8} {w['answered_after_resend']:>12} "
              f"{w['not_answered_even_after_resend']:>6} {w['conversations_hit']:>8} {w['conversations_resumed']:>7} "
              f"{w['doubled']:>7} {w['p50_ms'] or 0:>7.0f} {w['p99_ms'] or 0:>8.0f} "
              f"{'' if w['last_loss_after_s'] is None else str(w['last_loss_after_s']) + ' s':>12}")
        print(f"           {w['what']}")
    print(f"tickets: {json.dumps(report['tickets'])}")
    print(f"webhooks: {json.dumps(report['webhooks'])}")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
