"""A bystander's reply latency while one sender floods the chat and another
sends maximum-size messages, beside the same figures unloaded, in one run (issue 19).

    .venv/bot/bin/python -m bench.chat_abuse [--rounds 3] [--phase 20] [--quick] [--keep]
                                             [--phases unloaded,flood,big] [--same-address]

Starts our stack as `make run` does (scripts/run_stack.sh through
harness/stack.py, Rasa with its NLU worker, every chat limit at its
default unless the environment sets it) with a fresh var/ under var/bench/,
then measures, over the REST channel (`POST /webhooks/rest/webhook`):

- the bystander: one customer at a time holding a short conversation ("hi",
  two FAQ questions, "bye"; a new sender id per conversation), the next
  message 0.3 s after the last reply, as a person reads and types; its reply
  latency p50/p95/p99 per phase;
- phase "unloaded": the bystander alone;
- phase "flood": one sender sends bursts of 40 messages at once (FAQ
  questions), the next burst as soon as the last one is answered or refused,
  for the whole phase; counts answered (200) and throttled (429) messages;
- phase "big": another sender sends messages of exactly
  CHAT_MAX_MESSAGE_CHARS characters (varied words from the assistant's own
  NLU data, a different message each time) back to back: the next as soon
  as the last is answered or refused;
- optional phases (`--phases`): "flood-rotating" and "big-rotating", the same
  load with a new sender id for every message, which only the per-address
  limit (CHAT_IP_BURST, CHAT_IP_PER_MINUTE) holds back.

The abusers run in processes of their own (their client work must not delay
the bystander's clock) and, unless ``--same-address``, connect from other
loopback addresses (127.0.0.2 for the flood, 127.0.0.3 for the big messages;
the bystander from 127.0.0.1), as abusers on the internet come from
addresses of their own; with ``--same-address`` all come from 127.0.0.1, as
behind one office's NAT. The phases are repeated ``--rounds`` times, each
round in a rotated order, so that other work on the machine weighs on every
phase alike; each phase's load starts 1 s before the bystander's window and
stops when it closes, and the next phase waits until every answer is in.

Before the phases it checks the size limit: a message of exactly
CHAT_MAX_MESSAGE_CHARS characters is answered as usual, one character more
gets the channel's one polite reply. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import aiohttp

from harness import BENCH_DIR, REPO
from harness.load.flows import Turn
from harness.load.rest import Sample, latency_figures
from harness.processes import cpu_by_role, loadavg, stop_on_signals
from harness.report import fmt, log
from harness.stack import Stack

REQUEST_TIMEOUT = 30.0
BYSTANDER_THINK_SECONDS = 0.3
BURST = 40
LEAD_IN_SECONDS = 1.0
SETTLE_SECONDS = 2.0
BYSTANDER_ADDRESS = "127.0.0.1"
ABUSER_ADDRESSES = {"flood": "127.0.0.2", "big": "127.0.0.3"}
PHASES = ("unloaded", "flood", "big", "flood-rotating", "big-rotating")

# The chat limits' defaults (bot/, the contract of issue 19); the stack reads
# the same variables, so a value set in the environment applies to both.
LIMIT_DEFAULTS = {
    "CHAT_MAX_MESSAGE_CHARS": 2000,
    "CHAT_MAX_METADATA_BYTES": 4096,
    "CHAT_SENDER_BURST": 20,
    "CHAT_SENDER_PER_MINUTE": 60,
    "CHAT_IP_BURST": 600,
    "CHAT_IP_PER_MINUTE": 3600,
}

BYSTANDER_TURNS = (
    Turn("greet", "hi", "Hi"),
    Turn("faq", "how long does shipping take", "working days"),
    Turn("faq", "do you take paypal", "PayPal"),
    Turn("goodbye", "bye"),
)
FLOOD_MESSAGES = (
    "how long does shipping take",
    "do you take paypal",
    "how much does delivery cost?",
    "hi",
    "can I return an item?",
)


def limits() -> dict[str, int]:
    return {name: int(os.environ.get(name, default)) for name, default in LIMIT_DEFAULTS.items()}


# --- messages --------------------------------------------------------------


def vocabulary() -> list[str]:
    """Words of the assistant's own NLU examples: a big message the featurizers really work on."""
    words: set[str] = set()
    for path in sorted((REPO / "data").rglob("*.yml")):
        for line in path.read_text(errors="replace").splitlines():
            if line.lstrip().startswith("- "):
                words.update(re.findall(r"[A-Za-z][A-Za-z']{1,15}", re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line)))
    return sorted(words) or ["order", "delivery", "refund", "blender", "parcel", "address"]


def big_message(words: list[str], chars: int, rng: random.Random) -> str:
    """Exactly ``chars`` characters of words chosen at random."""
    parts, length = [], 0
    while length < chars:
        word = rng.choice(words)
        parts.append(word)
        length += len(word) + 1
    return " ".join(parts)[:chars].rstrip().ljust(chars, ".")


def is_too_long_reply(replies: list) -> bool:
    return any(isinstance(r, dict) and r.get("error") == "message_too_long" for r in replies)


# --- one REST message ------------------------------------------------------


async def post(session: aiohttp.ClientSession, url: str, sender: str, message: str) -> tuple[str, list, float]:
    """(outcome, replies, seconds): outcome is answered, too_long, throttled, empty, HTTP <n>, timeout or an error."""
    started = time.monotonic()
    replies: list = []
    try:
        async with session.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": message}) as response:
            body = await response.read()
            if response.status == 429:
                outcome = "throttled"
            elif response.status != 200:
                outcome = f"HTTP {response.status}"
            else:
                replies = json.loads(body)
                outcome = "too_long" if is_too_long_reply(replies) else ("answered" if replies else "empty")
    except asyncio.TimeoutError:
        outcome = "timeout"
    except (aiohttp.ClientError, ValueError) as problem:
        outcome = type(problem).__name__
    return outcome, replies, time.monotonic() - started


def client_session(address: str | None, limit: int = 0) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, local_addr=(address, 0) if address else None)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))


# --- the abusers (each in a process of its own) ----------------------------


def abuser(kind: str, url: str, address: str | None, tag: str, max_chars: int, stop, results) -> None:
    """Runs in a child process until ``stop`` is set; puts its counts on ``results``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us through ``stop``
    rotating = kind.endswith("-rotating")
    base = kind.removesuffix("-rotating")
    counts: Counter = Counter()
    answered_seconds: list[float] = []
    rng = random.Random(tag)
    words = vocabulary() if base == "big" else []
    sequence = 0

    def sender() -> str:
        return f"{base}-{tag}-{sequence}" if rotating else f"{base}-{tag}"

    async def one(session: aiohttp.ClientSession, message: str) -> None:
        nonlocal sequence
        sequence += 1
        outcome, _, seconds = await post(session, url, sender(), message)
        counts[outcome] += 1
        if outcome in ("answered", "too_long"):
            answered_seconds.append(seconds)

    async def run() -> float:
        started = time.monotonic()
        async with client_session(address) as session:
            while not stop.is_set():
                if base == "flood":
                    await asyncio.gather(*(one(session, FLOOD_MESSAGES[i % len(FLOOD_MESSAGES)]) for i in range(BURST)))
                else:
                    await one(session, big_message(words, max_chars, rng))
        return time.monotonic() - started

    cpu_before = time.process_time()
    seconds = asyncio.run(run())
    answered_seconds.sort()
    results.put({
        "kind": kind,
        "seconds": round(seconds, 1),
        "sent": sum(counts.values()),
        "answered": counts["answered"],
        "throttled": counts["throttled"],
        "too_long": counts["too_long"],
        "other": {outcome: n for outcome, n in counts.items() if outcome not in ("answered", "throttled", "too_long")},
        "answered_p50_ms": round(answered_seconds[len(answered_seconds) // 2] * 1000, 1) if answered_seconds else None,
        "client_cpu_s": round(time.process_time() - cpu_before, 2),
    })


# --- the bystander ---------------------------------------------------------


async def bystander(url: str, seconds: float, tag: str) -> tuple[list[Sample], Counter]:
    samples: list[Sample] = []
    outcomes: Counter = Counter()
    deadline = time.monotonic() + seconds
    conversation = 0
    async with client_session(BYSTANDER_ADDRESS, limit=1) as session:
        while time.monotonic() < deadline:
            conversation += 1
            sender = f"bystander-{tag}-{conversation}"
            for turn in BYSTANDER_TURNS:
                if time.monotonic() >= deadline:
                    break
                sent = time.monotonic()
                outcome, replies, _ = await post(session, url, sender, turn.message)
                outcomes[outcome] += 1
                error = None if outcome == "answered" else ("timeout" if outcome == "timeout" else outcome)
                text = " ".join(str(r.get("text", "")) for r in replies if isinstance(r, dict))
                samples.append(Sample(turn.kind, sent, time.monotonic(), error, not error and not turn.on_script(text)))
                if error:
                    break
                await asyncio.sleep(BYSTANDER_THINK_SECONDS)
    return samples, outcomes


# --- phases ----------------------------------------------------------------


def run_phase(stack: Stack, phase: str, seconds: float, tag: str, same_address: bool, max_chars: int) -> dict:
    """One phase: its load (if any) from 1 s before the bystander's window to its end."""
    roles = stack.server_processes()
    context = multiprocessing.get_context("fork")
    stop, results = context.Event(), context.Queue()
    child = None
    if phase != "unloaded":
        base = phase.removesuffix("-rotating")
        address = None if same_address else ABUSER_ADDRESSES[base]
        child = context.Process(
            target=abuser, args=(phase, stack.rasa_url, address, tag, max_chars, stop, results), daemon=True
        )
        child.start()
        time.sleep(LEAD_IN_SECONDS)
    load_before = loadavg()
    cpu_before = cpu_by_role(roles)
    window_start = time.monotonic()
    samples, outcomes = asyncio.run(bystander(stack.rasa_url, seconds, tag))
    window = time.monotonic() - window_start
    cpu_after = cpu_by_role(roles)
    load = None
    if child is not None:
        stop.set()
        try:
            load = results.get(timeout=REQUEST_TIMEOUT + 30)
        except Exception:  # noqa: BLE001 - queue.Empty: the abuser hung or died
            load = {"kind": phase, "error": f"no result (exit code {child.exitcode})"}
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
    time.sleep(SETTLE_SECONDS)
    return {
        "phase": phase,
        "samples": samples,
        "outcomes": dict(outcomes),
        "load": load,
        "cpu_core_share": {role: round((cpu_after[role] - cpu_before[role]) / window, 2) for role in cpu_before},
        "loadavg_before": load_before,
    }


def bystander_figures(samples: list[Sample], outcomes: Counter) -> dict:
    figures = latency_figures(samples)
    return {
        **figures,
        "answered": outcomes.get("answered", 0),
        "throttled": outcomes.get("throttled", 0),
        "errors": sum(n for outcome, n in outcomes.items() if outcome != "answered"),
        "errors_by_type": {outcome: n for outcome, n in outcomes.items() if outcome != "answered"},
        "off_script": sum(s.off_script for s in samples),
    }


def summarise(runs: list[dict]) -> dict:
    """Every round of one phase together: the bystander's figures, the abuser's counts summed."""
    samples = [s for run in runs for s in run["samples"]]
    outcomes: Counter = Counter()
    for run in runs:
        outcomes.update(run["outcomes"])
    summary = {
        "bystander": bystander_figures(samples, outcomes),
        "rounds": [
            {"p50_ms": latency_figures(run["samples"])["p50_ms"], "p95_ms": latency_figures(run["samples"])["p95_ms"],
             "loadavg_before": run["loadavg_before"], "cpu_core_share": run["cpu_core_share"]}
            for run in runs
        ],
    }
    loads = [run["load"] for run in runs if run["load"]]
    if loads:
        total: dict = {"sent": 0, "answered": 0, "throttled": 0, "too_long": 0, "seconds": 0.0, "client_cpu_s": 0.0}
        other: Counter = Counter()
        for load in loads:
            for key in total:
                total[key] += load.get(key, 0)
            other.update(load.get("other", {}))
            if "error" in load:
                other[load["error"]] += 1
        seconds = total["seconds"] or 1.0
        summary["abuser"] = {
            **{k: (round(v, 1) if isinstance(v, float) else v) for k, v in total.items()},
            "other": dict(other),
            "sent_per_s": round(total["sent"] / seconds, 1),
            "answered_per_s": round(total["answered"] / seconds, 2),
            "client_cpu_core_share": round(total["client_cpu_s"] / seconds, 2),
            "per_round": loads,
        }
    return summary


def check_size_limit(stack: Stack, max_chars: int) -> dict:
    """A message of exactly the limit is answered as usual; one character more gets the polite reply."""
    words = vocabulary()
    rng = random.Random("size-limit")

    async def go() -> dict:
        async with client_session(BYSTANDER_ADDRESS) as session:
            at, at_replies, at_seconds = await post(session, stack.rasa_url, "size-check-1", big_message(words, max_chars, rng))
            over, over_replies, _ = await post(session, stack.rasa_url, "size-check-2", big_message(words, max_chars + 1, rng))
        return {
            "at_limit": at,
            "at_limit_ms": round(at_seconds * 1000, 1),
            "over_limit": over,
            "over_limit_reply": " ".join(str(r.get("text", "")) for r in over_replies if isinstance(r, dict))[:200],
        }

    return asyncio.run(go())


# --- report ----------------------------------------------------------------


def print_table(summaries: dict[str, dict], rounds: int) -> None:
    print()
    print(f"{'phase':15} {'bystander msgs':>14} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6}"
          f"  | {'abuser sent':>11} {'answered':>8} {'throttled':>9} {'too long':>8} {'sent/s':>7} {'answered/s':>10}")
    for phase, summary in summaries.items():
        b = summary["bystander"]
        a = summary.get("abuser")
        abuse = (f"  | {a['sent']:>11} {a['answered']:>8} {a['throttled']:>9} {a['too_long']:>8} {a['sent_per_s']:>7} "
                 f"{a['answered_per_s']:>10}") if a else "  |"
        print(f"{phase:15} {b['count']:>14} {fmt(b['p50_ms']):>8} {fmt(b['p95_ms']):>8} {fmt(b['p99_ms']):>8} "
              f"{fmt(b['max_ms']):>8} {b['errors']:>6}{abuse}")
    print(f"\nper round ({rounds}), bystander p50 / p95 ms; server CPU (cores):")
    for phase, summary in summaries.items():
        cells = []
        for r in summary["rounds"]:
            cpu = ", ".join(f"{role} {share:.2f}" for role, share in sorted(r["cpu_core_share"].items()) if share >= 0.01)
            cells.append(f"{fmt(r['p50_ms'])} / {fmt(r['p95_ms'])} (load {r['loadavg_before'].split()[0]}; {cpu})")
        print(f"  {phase:15} " + "; ".join(cells))
        if summary["bystander"]["errors"]:
            print(f"  {phase:15} bystander errors: {summary['bystander']['errors_by_type']}")
        if summary.get("abuser", {}).get("other"):
            print(f"  {phase:15} abuser's other outcomes: {summary['abuser']['other']}")
        if summary.get("abuser"):
            print(f"  {phase:15} abuser's client CPU: {summary['abuser']['client_cpu_core_share']} cores")


# --- main ------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="how many times each phase runs (default 3; --quick: 1)")
    parser.add_argument("--phase", type=float, help="seconds of the bystander's window per phase (default 20; --quick: 8)")
    parser.add_argument("--phases", help=f"comma-separated, of {', '.join(PHASES)} (default unloaded,flood,big)")
    parser.add_argument("--same-address", action="store_true", help="the abusers connect from 127.0.0.1 too")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--keep", action="store_true", help="keep the run's var/ and logs (kept anyway after trouble)")
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.phase = args.phase or (8.0 if args.quick else 20.0)
    args.phases = [p.strip() for p in (args.phases or "unloaded,flood,big").split(",")]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    return args


def main() -> int:
    args = parse_args()
    stop_on_signals()  # the finally below stops every process
    started_at = datetime.now()
    settings = limits()
    max_chars = settings["CHAT_MAX_MESSAGE_CHARS"]
    load_before = loadavg()
    log(f"load average before: {load_before} ({os.cpu_count()} cores)")
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=f"chat-abuse-{started_at:%Y%m%d-%H%M%S}-", dir=BENCH_DIR))
    stack = Stack(var_dir=run_dir / "stack", extra_env={"BOT_NLU_WORKER": os.environ.get("BOT_NLU_WORKER", "1")})
    runs: dict[str, list[dict]] = {phase: [] for phase in args.phases}
    size_limit: dict = {}
    ok = False
    try:
        log("starting scripts/run_stack.sh")
        stack.start()
        if stack.extra_env["BOT_NLU_WORKER"] != "0":
            stack.nlu_worker_pid()
        log(f"up at {stack.rasa_url}")
        size_limit = check_size_limit(stack, max_chars)
        log(f"size limit {max_chars}: at the limit {size_limit['at_limit']} ({size_limit['at_limit_ms']} ms), "
            f"one more character {size_limit['over_limit']}: {size_limit['over_limit_reply'][:80]!r}")
        asyncio.run(bystander(stack.rasa_url, 3, f"{started_at:%H%M%S}-warm"))  # warm caches and connections
        for round_number in range(args.rounds):
            shift = round_number % len(args.phases)
            for phase in args.phases[shift:] + args.phases[:shift]:
                tag = f"{started_at:%H%M%S}-r{round_number}-{phase}"
                log(f"round {round_number + 1}/{args.rounds}: {phase} for {args.phase:.0f} s")
                run = run_phase(stack, phase, args.phase, tag, args.same_address, max_chars)
                runs[phase].append(run)
                figures = latency_figures(run["samples"])
                log(f"  bystander p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, {run['outcomes']}"
                    + (f"; abuser {({k: v for k, v in run['load'].items() if k != 'kind'})}" if run["load"] else ""))
        ok = True
    except KeyboardInterrupt:
        log("interrupted: stopping every process this benchmark started")
        return 130
    finally:
        stack.stop()
        troubled = any(run["outcomes"].keys() - {"answered"} for by_phase in runs.values() for run in by_phase)
        if ok and not args.keep and not troubled:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            log(f"logs and state kept in {run_dir}")

    load_after = loadavg()
    summaries = {phase: summarise(by_phase) for phase, by_phase in runs.items() if by_phase}
    print_table(summaries, args.rounds)
    print(f"\nsize limit {max_chars} characters: exactly {max_chars}: {size_limit.get('at_limit')} "
          f"({size_limit.get('at_limit_ms')} ms alone); {max_chars + 1}: {size_limit.get('over_limit')}")
    print(f"load average before: {load_before}; after: {load_after} ({os.cpu_count()} cores)")
    unloaded = summaries.get("unloaded", {}).get("bystander", {})
    slowdown = {
        phase: round(summary["bystander"]["p95_ms"] / unloaded["p95_ms"], 2)
        for phase, summary in summaries.items()
        if phase != "unloaded" and unloaded.get("p95_ms") and summary["bystander"]["p95_ms"]
    }
    for phase, ratio in slowdown.items():
        print(f"bystander p95 under {phase} / unloaded: {ratio}x")
    print(json.dumps({
        "started": started_at.isoformat(timespec="seconds"),
        "command": ".venv/bot/bin/python -m bench.chat_abuse " + " ".join(sys.argv[1:]),
        "cores": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "rounds": args.rounds,
        "phase_s": args.phase,
        "limits": settings,
        "addresses": None if args.same_address else {"bystander": BYSTANDER_ADDRESS, **ABUSER_ADDRESSES},
        "size_limit": size_limit,
        "results": {
            phase: {k: v for k, v in summary.items()} for phase, summary in summaries.items()
        },
        "bystander_p95_over_unloaded": slowdown,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
