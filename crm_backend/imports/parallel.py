"""Cleaning rows on several CPUs: phone numbers are parsed in pure Python, the
slowest step of an import (about 70 µs a number)."""

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial

from .results import NoProgress

CHUNK = 2000


def _apply(function: Callable, items: list) -> list:
    return [function(item) for item in items]


def map_rows(function: Callable, items: list, processes: int = 1, bar=None) -> list:
    """``[function(item) for item in items]``, spread over ``processes`` forked processes if > 1.

    ``function`` must be picklable (a module-level function or a partial of
    one). Only single-threaded callers such as the command line should ask
    for processes: forking a threaded web server can deadlock the child.
    """
    bar = bar or NoProgress()
    if processes <= 1 or len(items) <= CHUNK:
        results = []
        for item in items:
            results.append(function(item))
            bar.update(1)
        return results
    chunks = [items[start:start + CHUNK] for start in range(0, len(items), CHUNK)]
    results = []
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
        for done in pool.map(partial(_apply, function), chunks):
            results.extend(done)
            bar.update(len(done))
    return results
