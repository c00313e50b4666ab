"""No deep copies made for debug log lines that are not written.

Rasa 3.6's processor and its Rule and Memoization policies log with
structlog, passing deep copies of what they log:
``structlogger.debug("processor.actions.log", rasa_events=copy.deepcopy(events))``
after every action, the tracker's past states at every prediction, the
prediction's events, the parse data of every message. Python works out a
call's arguments before the call, so each copy is made even when debug
logging is off (``rasa run`` without ``--debug``) and the call does nothing
(measured together with the ``past_states`` patch: docs/benchmarks.md, "Past
states once per prediction").

Those modules use ``copy`` for these log lines only. This gives each of
them a ``copy`` of its own whose ``deepcopy`` copies only while Rasa logs
at debug level (``logging.getLogger("rasa")``, whose level Rasa sets from
``--debug`` / ``LOG_LEVEL`` together with structlog's) and otherwise hands
the object back as it is, to a log call that drops it. Everything else is
the standard ``copy`` module. ``tests/bot/test_log_copies.py`` checks the modules still use ``copy``
only there.
"""

from __future__ import annotations

import copy as _copy
import logging
import types
from typing import Any

# Modules whose `copy.deepcopy` calls are all arguments of structlogger.debug.
MODULES = (
    "rasa.core.processor",
    "rasa.core.policies.rule_policy",
    "rasa.core.policies.memoization",
)

_rasa_logger = logging.getLogger("rasa")


def deepcopy(value: Any, memo: Any = None) -> Any:
    if _rasa_logger.isEnabledFor(logging.DEBUG):
        return _copy.deepcopy(value, memo)
    return value


def _module() -> types.ModuleType:
    module = types.ModuleType("copy", "The copy module, with deepcopy made only while Rasa logs at debug level.")
    module.__dict__.update({name: getattr(_copy, name) for name in dir(_copy) if not name.startswith("__")})
    module.deepcopy = deepcopy
    module.helpdesk_log_copies = True
    return module


def install() -> None:
    import importlib

    replacement = _module()
    for name in MODULES:
        module = importlib.import_module(name)
        if not getattr(module.copy, "helpdesk_log_copies", False):
            module.copy = replacement
