"""The runtime patches of Rasa: the registry, the switch and the one ``install()``.

Where Rasa offers a registered extension point (components, tracker store,
event broker, lock store, channels) the bot uses it (bot/*.py). What Rasa
offers no hook for is replaced at run time, one concern per module in this
package, each with its reason in its docstring and its measurement in
docs/benchmarks.md. ``PATCHES`` below is the whole list.

**How a patch takes effect** (each entry's ``kind``):

- ``replaces``: its module's ``install()`` puts its function in the place of
  the Rasa function (``targets``), for the whole process.
- ``component``: a class of bot/components.py, which the trained model names
  (``bot.components.FastLoading*``), overrides the Rasa method in
  ``targets`` and does the patch's work only while ``active(name)``;
  otherwise it is Rasa's own method, so the same model loads and answers
  with every patch off.
- ``listener``: the socket.io channel (bot/channels.py) registers the
  module's ``LISTENERS`` on the Sanic server while the patch is active.

**Installed once per process**, by bot/__init__.py: Rasa imports the ``bot``
package for config.yml's components, endpoints.yml's stores and
credentials.yml's channels in every process it runs (``rasa run``, ``rasa
test``, ``rasa shell``, the NLU worker, an ``Agent.load`` in a test), and
before any of them is used. ``install()`` again does nothing.

**Switch**: ``BOT_PATCHES`` (bot/settings.py) is ``all`` (the default),
``off``, or patch names separated by commas. An unknown name is refused with
one error line naming the valid ones; the others are installed.

**Version guard**: the patches are written against, and tested with, the
Rasa pinned in requirements/bot.lock (``PINNED_RASA``). On any other version
nothing is installed (one error line) and Rasa runs as it is, more slowly.
tests/bot/test_patch_signatures.py records the signature of every target, so
an upgrade that changes one fails there, naming the patch.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, Optional, Text, Tuple

from bot import settings

logger = logging.getLogger(__name__)

PINNED_RASA = "3.6.21"

REPLACES = "replaces"
COMPONENT = "component"
LISTENER = "listener"


@dataclass(frozen=True)
class Patch:
    """One runtime patch: its module is ``bot.patches.<name>``."""

    name: Text
    kind: Text
    # What it replaces or overrides: "module:Qualified.name".
    targets: Tuple[Text, ...]

    @property
    def module(self) -> Text:
        return f"{__name__}.{self.name}"


PATCHES: Tuple[Patch, ...] = (
    # Loading the model, and keeping it out of Python's full garbage collections.
    Patch("fast_load", COMPONENT, ("rasa.utils.tensorflow.models:RasaModel.load",)),
    Patch("gc_freeze", LISTENER, ()),
    # Understanding a message.
    Patch("fast_features", REPLACES, ("rasa.shared.nlu.training_data.features:Features._combine_sparse_features",)),
    Patch("response_selector_skip", COMPONENT, ("rasa.nlu.selectors.response_selector:ResponseSelector.process",)),
    Patch("nlu_worker", REPLACES, (
        "rasa.core.processor:MessageProcessor.parse_message",
        "rasa.core.processor:MessageProcessor.handle_message",
    )),
    # Predicting the next action.
    Patch("past_states", REPLACES, ("rasa.shared.core.domain:Domain.states_for_tracker_history",)),
    Patch("lazy_ted", REPLACES, (
        "rasa.core.policies.ensemble:DefaultPolicyPredictionEnsemble._pick_best_policy",
        "rasa.core.policies.ted_policy:TEDPolicy.predict_action_probabilities",
    )),
    Patch("log_copies", REPLACES, (
        "rasa.core.processor:copy.deepcopy",
        "rasa.core.policies.rule_policy:copy.deepcopy",
        "rasa.core.policies.memoization:copy.deepcopy",
    )),
    # Calling the action server.
    Patch("fast_json", REPLACES, ("rasa.utils.endpoints:EndpointConfig.session",)),
    Patch("schema_cache", REPLACES, ("jsonschema:validate",)),
    Patch("action_response", REPLACES, ("rasa.core.actions.action:RemoteAction._validate_action_result",)),
    Patch("action_call_slot", REPLACES, ("rasa.utils.endpoints:EndpointConfig.request",)),
    # Reading trackers.
    Patch("event_types", REPLACES, ("rasa.shared.core.events:Event.resolve_by_type",)),
)
NAMES: Tuple[Text, ...] = tuple(patch.name for patch in PATCHES)

_active: Optional[FrozenSet[Text]] = None
_originals: Dict[Text, Any] = {}


def resolve(target: Text) -> Any:
    """The object a target names now ("module:Qualified.name")."""
    module_name, _, path = target.partition(":")
    found: Any = importlib.import_module(module_name)
    for attribute in path.split("."):
        found = getattr(found, attribute)
    return found


def original(target: Text) -> Any:
    """Rasa's own object for ``target``, also after a patch has replaced it."""
    return _originals[target] if target in _originals else resolve(target)


def selected(value: Text) -> FrozenSet[Text]:
    """The patch names ``BOT_PATCHES`` selects; an unknown name is logged and left out."""
    words = [word.strip().lower() for word in value.split(",") if word.strip()]
    if words in ([], ["all"]):
        return frozenset(NAMES)
    if words == ["off"]:
        return frozenset()
    unknown = [word for word in words if word not in NAMES]
    if unknown:
        logger.error(
            "BOT_PATCHES names no patch %s: not installed. Valid: all, off, or any of %s.",
            ", ".join(unknown), ", ".join(NAMES),
        )
    return frozenset(word for word in words if word in NAMES)


def rasa_version() -> Optional[Text]:
    try:
        return importlib.metadata.version("rasa")
    except importlib.metadata.PackageNotFoundError:
        return None


def install(environ: Optional[Mapping[Text, Text]] = None) -> FrozenSet[Text]:
    """Installs the patches ``BOT_PATCHES`` selects, once per process; returns the active names."""
    global _active
    if _active is not None:
        return _active
    wanted = settings.from_env(environ).patches
    names = selected(wanted)
    version = rasa_version()
    if version is None:
        names = frozenset()  # nothing to patch (a process of another environment importing bot)
    elif names and version != PINNED_RASA:
        logger.error(
            "Rasa %s is installed, bot/patches/ is written for Rasa %s: no patch installed (BOT_PATCHES=%s); "
            "Rasa runs as it is.", version, PINNED_RASA, wanted,
        )
        names = frozenset()
    for patch in PATCHES:
        if patch.name not in names:
            continue
        for target in patch.targets:
            _originals[target] = resolve(target)
        module = importlib.import_module(patch.module)
        if patch.kind == REPLACES:
            module.install()
    _active = names
    logger.info(
        "Rasa patches active (BOT_PATCHES=%s): %s.", wanted, ", ".join(n for n in NAMES if n in names) or "none"
    )
    return _active


def active(name: Text) -> bool:
    """Whether the patch ``name`` is installed in this process."""
    if name not in NAMES:
        raise KeyError(f"no patch named {name!r} (bot/patches/__init__.py lists {', '.join(NAMES)})")
    return _active is not None and name in _active


def listeners() -> List[Tuple[Text, Callable[..., Any]]]:
    """(Sanic event, listener) of every active patch that needs the server's start or stop."""
    found = []
    for patch in PATCHES:
        if active(patch.name):
            found.extend(getattr(importlib.import_module(patch.module), "LISTENERS", ()))
    return found
