"""Throughput and latency of whole conversations, beside a stock `rasa init` bot.

Starts our whole stack (scripts/run_stack.sh through harness/stack.py: CRM
under gunicorn, action server, Rasa) on free ports with a fresh var/ under
var/bench/, and a stock `rasa init` bot (built once into var/bench/stock-bot,
reused while it has a model), then drives both over the same REST channel
(`POST /webhooks/rest/webhook`) at each concurrency level. Prints a table, the
latency per message kind, and one JSON line with every figure.

    .venv/bot/bin/python -m bench.conversations [--levels 1,20,50] [--duration 30]
                                               [--only ours|stock] [--quick] [--keep]
                                               [--without-nlu-worker] [--patches-off]

With ``--without-nlu-worker`` a second copy of our stack runs beside the
first with ``BOT_NLU_WORKER=0`` (Rasa parses every message itself, as before
bot/patches/nlu_worker.py) and is measured in the same interleaved order, as
"ours-local". With ``--patches-off`` another copy runs with ``BOT_PATCHES=off``
(stock Rasa's behaviour on the same trained model: none of bot/patches/) as
"ours-unpatched"; ``python -m bench.patch_worth`` weighs the patches one by one.

Each simulated customer is a closed loop: it sends its next message as soon
as it has the reply to the last one, and starts a new conversation (a new
sender id) when one ends, so trackers stay short. Both bots run for the whole
run; the levels are interleaved (level 1: stock then ours, level 20: stock
then ours, ...) so that other work on the machine weighs on both alike. Our
conversations are full flows through the CRM: greeting, FAQ, a complaint that
becomes a ticket, a satisfaction score, goodbye; and a known customer's ticket
status look-up. The known customer is signed in as the shop's page would
have them: a signed identity (`metadata.identity_token`, a JWT made with the
stack's $VAR_DIR/chat_identity_secret, docs/security.md); the complaint's
email is only claimed (an email-shaped sender id), which may open a ticket.
The stock bot's are its own flows (greet, mood, "did that help?", bot
challenge, goodbye).

Every simulated customer comes from 127.0.0.1, like every conversation of a
busy office behind one address: the chat rate limits (CHAT_IP_PER_MINUTE and
the rest, left at their defaults) apply to the whole run, and a throttled
message shows as an error ("HTTP 429").

Figures: messages/s counts request/replies completed inside the measured
window; latency percentiles cover every message sent inside it (also those
answered after it closed, so a slow tail is not cut off). Errors are non-200
answers, timeouts, connection errors and empty replies; "off-script" counts
replies without the words the flow expects next (the conversation goes on).
CPU per message is read from /proc for each server process, and the client's
own CPU is shown so one can see the figures measure the server. The load
generator is asyncio + aiohttp in one process of the bot environment.
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

from harness import BENCH_DIR
from harness.load.flows import OUR_SCRIPTS, STOCK_SCRIPTS, Bot
from harness.load.rest import Sample, drive, latency_figures, warm_up
from harness.processes import cpu_by_role, loadavg, stop_group, stop_on_signals
from harness.report import fmt, log
from harness.stack import Stack
from harness.stock_bot import build_stock_bot, start_stock_bot

GOAL_RATIO_AT_20 = 1.0
GOAL_RATIO_AT_20_ISSUE_19 = 1.3  # issue 19: at or above 1.3x the stock bot with every limit and check on
GOAL_P99_AT_50_MS = 2000.0


# --- measuring -------------------------------------------------------------


def measure(bot: Bot, concurrency: int, duration: float, tag: str) -> dict:
    roles = bot.pids()
    load_before = loadavg()
    cpu_before, client_before = cpu_by_role(roles), time.process_time()
    samples, start, end = asyncio.run(drive(bot, concurrency, duration, tag))
    window = end - start
    cpu_after, client_after = cpu_by_role(roles), time.process_time()
    completed = [s for s in samples if not s.error and s.done <= end]
    errors: dict[str, int] = defaultdict(int)
    for s in samples:
        if s.error:
            errors["timeout" if s.error == "timeout" else s.error.split(":")[0]] += 1
    by_kind: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_kind[s.kind].append(s)
    cpu_ms = {role: (cpu_after[role] - cpu_before[role]) * 1000 for role in cpu_before}
    return {
        "concurrency": concurrency,
        "duration_s": round(window, 1),
        "messages": len(completed),
        "messages_per_s": round(len(completed) / window, 2),
        **latency_figures(samples),
        "errors": sum(errors.values()),
        "errors_by_type": dict(errors),
        "off_script": sum(s.off_script for s in samples),
        "per_kind": {
            kind: {**latency_figures(group), "errors": sum(bool(s.error) for s in group),
                   "off_script": sum(s.off_script for s in group)}
            for kind, group in sorted(by_kind.items())
        },
        # CPU of each server process group over the window: its share of one
        # core, and per completed message.
        "cpu_core_share": {role: round(ms / 1000 / window, 2) for role, ms in cpu_ms.items()},
        "cpu_ms_per_message": {role: round(ms / max(1, len(completed)), 1) for role, ms in cpu_ms.items()},
        "client_cpu_core_share": round((client_after - client_before) / window, 2),
        "loadavg_before": load_before,
    }



# --- report ----------------------------------------------------------------


def print_tables(results: dict[str, dict[int, dict]], bots: dict[str, Bot]) -> None:
    print()
    print(f"{'bot':10} {'conc':>4} {'msgs':>6} {'msg/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'errors':>6} {'off-script':>10}  CPU (cores: server parts; client)")
    for level in sorted({level for by_level in results.values() for level in by_level}):
        for name in results:
            figures = results.get(name, {}).get(level)
            if not figures:
                continue
            cpu = ", ".join(f"{role} {share:.2f}" for role, share in sorted(figures["cpu_core_share"].items()))
            print(f"{name:10} {level:>4} {figures['messages']:>6} {figures['messages_per_s']:>7} "
                  f"{fmt(figures['p50_ms']):>8} {fmt(figures['p95_ms']):>8} {fmt(figures['p99_ms']):>8} "
                  f"{figures['errors']:>6} {figures['off_script']:>10}  {cpu}; client {figures['client_cpu_core_share']:.2f}")
    for name, by_level in results.items():
        for level, figures in sorted(by_level.items()):
            throttled = figures["errors_by_type"].get("HTTP 429")
            if throttled:
                print(f"{name} at {level}: {throttled} messages throttled by the chat rate limits (HTTP 429)")
    for name, by_level in results.items():
        print(f"\n{name}: latency per message kind, p50 / p95 ms (messages)")
        levels = sorted(by_level)
        kinds = sorted({kind for figures in by_level.values() for kind in figures["per_kind"]})
        print(f"{'kind':16}" + "".join(f"{'conc ' + str(level):>24}" for level in levels))
        for kind in kinds:
            cells = []
            for level in levels:
                k = by_level[level]["per_kind"].get(kind)
                cells.append(f"{fmt(k['p50_ms'])} / {fmt(k['p95_ms'])} ({k['count']})" if k else "–")
            print(f"{kind:16}" + "".join(f"{cell:>24}" for cell in cells))
        cpu_lines = [
            f"conc {level}: " + ", ".join(f"{role} {ms}" for role, ms in sorted(by_level[level]["cpu_ms_per_message"].items()))
            for level in levels
        ]
        print(f"{name}: server CPU ms per completed message: " + "; ".join(cpu_lines))
        if bots[name].problems:
            print(f"{name}: first error or off-script reply per kind:")
            for kind, problem in bots[name].problems.items():
                print(f"  {kind}: {problem}")


# --- main ------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", help="comma-separated concurrent conversations (default 1,20,50; --quick: 1,5)")
    parser.add_argument("--duration", type=float, help="seconds per bot and level (default 30; --quick: 5)")
    parser.add_argument("--only", choices=("ours", "stock"), help="measure one bot only")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--without-nlu-worker", action="store_true",
        help="also measure our stack with BOT_NLU_WORKER=0 (Rasa parses messages itself), as ours-local",
    )
    parser.add_argument(
        "--patches-off", action="store_true",
        help="also measure our stack with BOT_PATCHES=off (none of Rasa's runtime patches), as ours-unpatched",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's var/ directory and logs (kept anyway after errors)"
    )
    args = parser.parse_args()
    args.levels = [int(level) for level in (args.levels or ("1,5" if args.quick else "1,20,50")).split(",")]
    args.duration = args.duration or (5.0 if args.quick else 30.0)
    return args


def main() -> int:
    args = parse_args()
    stop_on_signals()  # the finally below stops every process
    command = "-m bench.conversations " + " ".join(sys.argv[1:])
    started_at = datetime.now()
    load_before = loadavg()
    log(f"load average before: {load_before} ({os.cpu_count()} cores)")
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=f"conversations-{started_at:%Y%m%d-%H%M%S}-", dir=BENCH_DIR))
    names = [args.only] if args.only else ["stock", "ours"]
    if args.without_nlu_worker and "ours" in names:
        names.append("ours-local")
    if args.patches_off and "ours" in names:
        names.append("ours-unpatched")
    children: list[subprocess.Popen] = []
    stacks: list[Stack] = []
    bots: dict[str, Bot] = {}
    results: dict[str, dict[int, dict]] = {name: {} for name in names}
    ok = False
    try:
        if "stock" in names:
            model = build_stock_bot(children)
            log("stock bot: starting")
            url, started = start_stock_bot(model, run_dir, children)
            rasa_pid = started[-1].pid
            bots["stock"] = Bot("stock", url, STOCK_SCRIPTS, lambda: {"rasa": [rasa_pid]},
                                note="rasa init, in-memory tracker store, no action server")
            log(f"stock bot: up at {url}")
        for name in ("ours", "ours-local", "ours-unpatched"):
            if name not in names:
                continue
            patched = name != "ours-unpatched"
            # The NLU worker is itself a patch (bot/patches/nlu_worker.py).
            worker = name == "ours"
            log(f"{name}: starting scripts/run_stack.sh")
            stack = Stack(var_dir=run_dir / name, extra_env={
                "BOT_NLU_WORKER": "1" if worker else "0", "BOT_PATCHES": "all" if patched else "off",
            })
            stacks.append(stack)
            stack.start()
            if worker:
                stack.nlu_worker_pid()  # Rasa parses messages itself until the worker has loaded
            how = ("with its NLU worker" if worker else
                   "parsing messages itself (BOT_NLU_WORKER=0)" if patched else
                   "with none of Rasa's runtime patches (BOT_PATCHES=off)")
            bots[name] = Bot(name, stack.rasa_url, OUR_SCRIPTS, stack.server_processes,
                             note="run_stack.sh: gunicorn CRM (1 worker, as harness/stack.py sets), actions, Rasa "
                                  + how + ", SQLite tracker store",
                             identity_secret=stack.identity_secret)
            log(f"{name}: up at {stack.rasa_url}")
        for name in names:
            warm_up(bots[name], f"{started_at:%H%M%S}")
        for level in args.levels:
            for name in names:
                log(f"{name}: {level} concurrent conversations for {args.duration:.0f} s")
                figures = measure(bots[name], level, args.duration, f"{started_at:%H%M%S}-c{level}")
                results[name][level] = figures
                log(f"{name}: {figures['messages_per_s']} msg/s, p50 {figures['p50_ms']} ms, "
                    f"p99 {figures['p99_ms']} ms, errors {figures['errors']}, off-script {figures['off_script']}")
        ok = True
    except KeyboardInterrupt:
        log("interrupted: stopping every process this benchmark started")
        return 130
    finally:
        for stack in stacks:
            stack.stop()
        for child in reversed(children):
            stop_group(child)
        # Logs are kept when anything went wrong, to look for the cause.
        troubled = any(f["errors"] or f["off_script"] for by_level in results.values() for f in by_level.values())
        if ok and not args.keep and not troubled:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            log(f"logs and state kept in {run_dir}")

    load_after = loadavg()
    print_tables(results, bots)
    print(f"\nload average before: {load_before}; after: {load_after} ({os.cpu_count()} cores)")
    stock_20 = results.get("stock", {}).get(20)
    ours_20, ours_50 = results.get("ours", {}).get(20), results.get("ours", {}).get(50)
    ratio = (
        round(ours_20["messages_per_s"] / stock_20["messages_per_s"], 2)
        if ours_20 and stock_20 and stock_20["messages_per_s"] else None
    )
    goals = {
        "ratio_at_20_ge_1": None if ratio is None else ratio >= GOAL_RATIO_AT_20,
        "ratio_at_20_ge_1_3": None if ratio is None else ratio >= GOAL_RATIO_AT_20_ISSUE_19,
        "p99_at_50_lt_2s": None if not ours_50 or ours_50["p99_ms"] is None else ours_50["p99_ms"] < GOAL_P99_AT_50_MS,
    }
    print(f"ours/stock messages/s at 20 concurrent: {fmt(ratio)} (goal >= {GOAL_RATIO_AT_20_ISSUE_19}: "
          f"{fmt(goals['ratio_at_20_ge_1_3'])}; >= {GOAL_RATIO_AT_20}: {fmt(goals['ratio_at_20_ge_1'])}); "
          f"our p99 at 50 concurrent: {fmt(ours_50 and ours_50['p99_ms'])} ms (goal < 2,000: {fmt(goals['p99_at_50_lt_2s'])})")
    print(json.dumps({
        "started": started_at.isoformat(timespec="seconds"),
        "command": ".venv/bot/bin/python " + command.strip(),
        "cores": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "duration_s": args.duration,
        "levels": args.levels,
        "bots": {name: bot.note for name, bot in bots.items()},
        "results": {name: {str(level): figures for level, figures in by_level.items()} for name, by_level in results.items()},
        "ratio_ours_stock_at_20": ratio,
        "goals_met": goals,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
