"""Whole conversations over socket.io, as the web widget holds them: the
default profile (`make run`), the scaled profile (`make run-scaled`) and a
stock `rasa init` bot, in one run (issue 11).

    .venv/bot/bin/python -m bench.scale_load [--levels 20,50,100] [--duration 60]
                                            [--only default,scaled,stock] [--quick] [--keep]

Starts the three side by side (the default profile through harness/stack.py,
the scaled profile through harness/scaled.py with databases, queue and
channels of its own, the stock bot of harness/stock_bot.py, with
its socket.io channel switched on) and keeps them running; the levels are
interleaved (level 20: stock, default, scaled; level 50: ...) so other work
on the machine weighs on all alike. The scaled profile needs PostgreSQL,
Redis, RabbitMQ and nginx; without them it is left out, with the reason.

Each simulated customer is a widget: a socket.io connection (websocket, as
the widget tries first), `session_request` for a new session (the server
issues its id and, ours, a session token; both are asked for again on a
reconnect), then `user_uttered` with the page's customData, a closed loop
(the next message as soon as the whole reply is in), a new connection and
session for each new conversation (harness/load/widget.py). The flows are
harness/load/flows.py's, as bench.conversations holds them over REST
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
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import aiohttp

from harness import BENCH_DIR
from harness.load.flows import OUR_SCRIPTS, STOCK_SCRIPTS, Bot
from harness.load.widget import TurnResult, drive, learn_reply_counts
from harness.processes import cpu_by_role, loadavg, stop_group, stop_on_signals
from harness.report import fmt, log
from harness.scaled import ScaledStack, missing_services_from_backend, remove_state_from_backend
from harness.stack import Stack
from harness.stats import percentile
from harness.stock_bot import build_stock_bot, start_stock_bot, write_socketio_credentials

GOAL_SCALED_RATIO = 1.6


# --- measuring -------------------------------------------------------------


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
    stop_on_signals()  # the finally below stops every process
    started_at = datetime.now()
    load_before = loadavg()
    log(f"load average before: {load_before} ({os.cpu_count()} cores)")
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=f"scale-load-{started_at:%Y%m%d-%H%M%S}-", dir=BENCH_DIR))
    names = list(args.only)
    skipped: dict[str, str] = {}
    if "scaled" in names:
        missing = missing_services_from_backend()
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
            url, started = start_stock_bot(model, run_dir, children, credentials=write_socketio_credentials())
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
                "default", default.rasa_url, OUR_SCRIPTS, default.server_processes,
                "make run: one Rasa (SQLite tracker store, SQL event broker), one action server, CRM on SQLite "
                "(gunicorn, 1 worker as harness/stack.py sets it), webhook worker, follower",
                crm_url=default.crm_url, crm_key=default.api_key("bench-scale", "tickets:read"),
                identity_secret=default.identity_secret,
            )
            default.sign_in_agent()
            log(f"default profile: up at {default.rasa_url}")
        if "scaled" in names:
            log("scaled profile: starting scripts/run_scaled.sh")
            scaled = ScaledStack(var_dir=run_dir / "scaled")
            stacks.append(scaled)
            scaled.start()
            bots["scaled"] = Bot(
                "scaled", scaled.lb_url, OUR_SCRIPTS, lambda: scaled.server_processes(services=True),
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
            if isinstance(stack, ScaledStack):
                problem = remove_state_from_backend(stack.name)
                if problem:
                    log(f"could not remove the scaled profile's databases and queue {stack.name}: {problem}")
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
        "command": ".venv/bot/bin/python -m bench.scale_load " + " ".join(sys.argv[1:]),
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
