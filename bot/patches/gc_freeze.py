"""The Rasa process's loaded model kept out of Python's full garbage collections.

Once Rasa has loaded its model, the process holds about 600,000 objects that
live as long as it does (TensorFlow's and Rasa's graphs, the domain, the
featurizers' vocabularies). Python's collector walks every one of them at
each full (generation 2) collection: 280–330 ms here, and under load at
50 conversations the Rasa process ran one every 10–20 s, the longest taking
950 ms, during which no message moved (docs/benchmarks.md, "Conversations").

After the server has started (Rasa loads the model in a ``before_server_start``
listener; Sanic runs every ``after_server_start`` listener after those), one
full collection clears what loading left behind and ``gc.freeze()`` moves
every surviving object into the collector's permanent generation, which no
collection walks. Objects made afterwards (trackers, messages) are collected
as before; a full collection then takes milliseconds. Reference counting
still frees frozen objects that nothing refers to; only reference cycles
among them are kept, which is why this runs once, after the load. (A model
replaced later through Rasa's ``PUT /model`` stays unfrozen.)

``LISTENERS`` are registered by the socket.io channel (bot/channels.py), which
every configuration of this project runs (credentials.yml,
credentials.scaled.yml), while this patch is active.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

logger = logging.getLogger(__name__)


def freeze_long_lived() -> int:
    """Collects once, then freezes every surviving object; returns how many objects are frozen."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info(
        "Froze %d long-lived objects out of full garbage collections (%.0f ms).",
        frozen, (time.perf_counter() - started) * 1000,
    )
    return frozen


async def after_server_start(app: Any, _loop: Any) -> None:
    """Sanic listener: the model is loaded by now."""
    freeze_long_lived()


LISTENERS = (("after_server_start", after_server_start),)
