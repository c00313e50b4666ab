"""What the end-to-end tests and the benchmarks share: starting and stopping
the real stack in either profile, free ports, the processes a stack runs, the
conversation flows and load drivers, percentiles and the stock `rasa init` bot.

One package for both, so a benchmark measures the stack the tests check,
started the same way. It is imported from both environments (the bot's
Python 3.10 with Rasa, the backend's Python 3.11 with Flask), so no module
here imports Rasa or Flask at the top; the modules that need a client library
of one environment only (aiohttp and python-socketio for the load drivers,
Playwright for the browser) say so in their docstrings. Run everything from
the repository root (`python -m pytest ...`, `python -m bench.conversations`),
which puts it on the import path: nothing here changes that path.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# What scripts/wait_ready.py prints once every service of a stack answers.
READY_LINE = "All services are healthy."
# Where benchmarks keep their runs (a fresh var/ per run) and the stock bot.
BENCH_DIR = REPO / "var" / "bench"
