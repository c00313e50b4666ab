"""The one percentile every test and benchmark reports with."""

from __future__ import annotations


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank ``q``-th percentile (``q`` from 0 to 100) of
    ``values``, a value that was measured (no interpolation between two);
    None when there are none. The p99 of bench.conversations and
    bench.scale_load, which other checks read, comes from here: changing the
    rank rule changes what docs/benchmarks.md's figures compare against."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]
