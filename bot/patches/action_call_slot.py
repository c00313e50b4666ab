"""A message waiting for the action server gives its lock-store slot up meanwhile.

bot/lock_store.py lets at most ``max_concurrent`` messages work at once per
Rasa process, oldest first (a registered lock store, endpoints.yml). Rasa
has no hook around its call to the action server, so without this a message
keeps its slot while a custom action or a form's validation runs on the
action server: a slow or hanging action server would then hold every slot
and no FAQ answer could start. This replaces ``EndpointConfig.request``
(the action-server call): the message's slot is released for the call and
taken back after it — with the message's own ticket, so before any newer
message. At 50 concurrent conversations the slot kept while waiting did as
well in throughput (docs/benchmarks.md, "Cheaper NLU and oldest message
first", the ``max_concurrent`` table); this is about a slow action server,
not speed. Outside a lock-store slot (another endpoint, a call from a test)
it is Rasa's request.
"""

from __future__ import annotations

from typing import Any

from rasa.utils.endpoints import EndpointConfig

from bot.lock_store import current_holder

_original_request = EndpointConfig.request


async def request_without_slot(self: EndpointConfig, *args: Any, **kwargs: Any) -> Any:
    """``EndpointConfig.request``, with the message's slot given up while it waits."""
    holder = current_holder.get()
    if holder is None or not holder.held:
        return await _original_request(self, *args, **kwargs)
    holder.release()
    try:
        return await _original_request(self, *args, **kwargs)
    finally:
        await holder.acquire()


def install() -> None:
    EndpointConfig.request = request_without_slot
