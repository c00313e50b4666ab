"""What each of Rasa's runtime patches (bot/patches/) is worth, one at a time.

Starts our whole stack once per variant, one after another, and drives it with
the same conversations as ``bench.conversations`` at one concurrency level:

- ``all``: every patch (``BOT_PATCHES=all``, what ``make run`` runs),
- ``off``: none (``BOT_PATCHES=off``: stock Rasa's behaviour on the same model),
- ``without <name>``: every patch but one, for each patch in the registry.

A patch's worth is what the stack loses without it: messages/s of ``all``
minus those of ``without <name>`` (and the p99 it adds). Variants run one
after another, so load from other work on the machine shows as noise:
compare figures of one run, and read a difference of a few per cent as none.
Some patches only pay off together (the NLU worker needs the others' savings
to keep both cores busy), so the parts need not add up to ``all`` - ``off``.

    .venv/bot/bin/python -m bench.patch_worth [--level 20] [--duration 30] [--only name,name]

Prints a table and, as its last line, one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from bench.conversations import measure
from harness import BENCH_DIR
from harness.load.flows import OUR_SCRIPTS, Bot
from harness.load.rest import warm_up
from harness.processes import loadavg, stop_on_signals
from harness.report import fmt, log
from harness.stack import Stack

# This process only reads the registry: it needs none of the patches itself
# (each stack below is told its own BOT_PATCHES).
os.environ["BOT_PATCHES"] = "off"
from bot.patches import NAMES  # noqa: E402


def variants(only: list[str]) -> list[tuple[str, str]]:
    """(label, BOT_PATCHES value) of every variant to measure."""
    chosen = [name for name in NAMES if not only or name in only]
    return [("all", "all"), ("off", "off")] + [
        (f"without {name}", ",".join(other for other in NAMES if other != name)) for name in chosen
    ]


def measure_variant(label: str, patches: str, run_dir: Path, level: int, duration: float, tag: str) -> dict:
    # BOT_NLU_WORKER follows the patch: without nlu_worker Rasa parses every message itself.
    worker = patches == "all" or "nlu_worker" in patches.split(",")
    stack = Stack(var_dir=run_dir / label.replace(" ", "-"),
                  extra_env={"BOT_PATCHES": patches, "BOT_NLU_WORKER": "1" if worker else "0"})
    log(f"{label}: starting scripts/run_stack.sh (BOT_PATCHES={patches})")
    stack.start()
    try:
        if worker:
            stack.nlu_worker_pid()  # Rasa parses messages itself until the worker has loaded
        bot = Bot(label, stack.rasa_url, OUR_SCRIPTS, stack.server_processes, identity_secret=stack.identity_secret)
        warm_up(bot, tag)
        log(f"{label}: {level} concurrent conversations for {duration:.0f} s")
        figures = measure(bot, level, duration, f"{tag}-{label.replace(' ', '-')}")
        log(f"{label}: {figures['messages_per_s']} msg/s, p99 {figures['p99_ms']} ms, errors {figures['errors']}")
        return figures
    finally:
        stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", type=int, default=20, help="concurrent conversations (default 20)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per variant (default 30)")
    parser.add_argument("--only", default="", help="comma-separated patch names to leave out one at a time (default: all)")
    args = parser.parse_args()
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in only if name not in NAMES]
    if unknown:
        parser.error(f"no patch named {', '.join(unknown)}; the patches: {', '.join(NAMES)}")
    stop_on_signals()
    started_at = datetime.now()
    load_before = loadavg()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=f"patch-worth-{started_at:%Y%m%d-%H%M%S}-", dir=BENCH_DIR))
    results: dict[str, dict] = {}
    for label, patches in variants(only):
        results[label] = measure_variant(label, patches, run_dir, args.level, args.duration, f"{started_at:%H%M%S}")
    shutil.rmtree(run_dir, ignore_errors=True)

    base = results["all"]
    print(f"\n{'variant':32} {'msg/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'worth msg/s':>12} {'worth %':>8}")
    worth: dict[str, dict] = {}
    for label, figures in results.items():
        lost = round(base["messages_per_s"] - figures["messages_per_s"], 2)
        share = round(100 * lost / base["messages_per_s"], 1) if base["messages_per_s"] else None
        if label.startswith("without "):
            worth[label.removeprefix("without ")] = {"messages_per_s": lost, "percent": share,
                                                     "p99_added_ms": None if figures["p99_ms"] is None or base["p99_ms"] is None
                                                     else round(figures["p99_ms"] - base["p99_ms"], 1)}
        shown = "" if label == "all" else f"{lost:>12} {fmt(share):>8}"
        print(f"{label:32} {figures['messages_per_s']:>7} {fmt(figures['p50_ms']):>8} {fmt(figures['p99_ms']):>8} "
              f"{figures['errors']:>6} {shown}")
    load_after = loadavg()
    print(f"\nload average before: {load_before}; after: {load_after} ({os.cpu_count()} cores)")
    print(json.dumps({
        "started": started_at.isoformat(timespec="seconds"),
        "command": ".venv/bot/bin/python -m bench.patch_worth " + " ".join(sys.argv[1:]),
        "cores": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "level": args.level,
        "duration_s": args.duration,
        "results": results,
        "worth": worth,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
