"""``Event.resolve_by_type`` that remembers which class has which type name.

Rasa 3.6 turns every event dict back into an event (reading a tracker from
the tracker store, reading an action server's response) through
``Event.resolve_by_type``, which walks the whole tree of ``Event``
subclasses each time (``rasa.shared.utils.common.all_subclasses``: 26
recursive calls and an ``inspect.isabstract`` per class, per event). On a
stored 9-message conversation that walk was a fifth of the tracker store's
CPU time (docs/benchmarks.md, "Conversations", 2026-12-02).

This looks a type name up in a dict filled from the same walk, so it returns
the same class: the first non-abstract subclass, in Rasa's order, with that
``type_name``. The dict is emptied whenever a new ``Event`` subclass is
defined (``__init_subclass__``), so a class defined later is found exactly
as Rasa would find it. Unknown names go to Rasa's own function (its
``topic``, ``default`` and error behaviour).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Text, Type

from rasa.shared.core.events import Event
from rasa.shared.utils.common import all_subclasses

_original_resolve_by_type = Event.__dict__["resolve_by_type"].__func__
_classes: Dict[Text, Type[Event]] = {}


def resolve_by_type(type_name: Text, default: Optional[Type[Event]] = None) -> Optional[Type[Event]]:
    found = _classes.get(type_name)
    if found is not None:
        return found
    for cls in all_subclasses(Event):
        if cls.type_name == type_name:
            _classes[type_name] = cls
            return cls
    return _original_resolve_by_type(type_name, default)


def _forget(cls: Any, **kwargs: Any) -> None:
    _classes.clear()
    super(Event, cls).__init_subclass__(**kwargs)


def install() -> None:
    if Event.__dict__["resolve_by_type"].__func__ is resolve_by_type:
        return
    Event.resolve_by_type = staticmethod(resolve_by_type)
    Event.__init_subclass__ = classmethod(_forget)
