"""How benchmarks talk while they run and print their tables."""

from __future__ import annotations

import sys
from datetime import datetime


def log(message: str) -> None:
    """A timestamped progress line on stderr (stdout is the benchmark's report)."""
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def fmt(value) -> str:
    """A figure for a table: "–" for none, thousands grouped from 100 up."""
    if value is None:
        return "–"
    if isinstance(value, float) and value >= 100:
        return f"{value:,.0f}"
    return f"{value}"
