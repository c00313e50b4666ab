"""Rasa's check of each action-server response, without trying all 23 event schemas on every event.

After every custom action and every form validation Rasa checks the
response against ``RemoteAction.action_response_format_spec()``
(``RemoteAction._validate_action_result``, ``jsonschema.validate``). Each
event in it must match exactly one of 23 event schemas (``oneOf`` in
``rasa.shared.utils.schemas.events.EVENT_SCHEMA``), so jsonschema tries all
23 on every event and builds a ``ValidationError`` for each of the 22 that
fail: 7 % of the Rasa process's time holding the GIL under load (py-spy,
docs/benchmarks.md, "Conversations", 2026-12-03).

Every one of those 23 schemas requires its own value of ``event``
(``properties.event.const``, all different), and ``event`` is required. So an
event matches exactly one of them if and only if it matches the one whose
``const`` is its ``event``: every other one fails on ``event`` alone. Here a
response is first checked that way — the same schema with the ``oneOf``
left out, then each event against the one schema its ``event`` names —
with validators built once. A response that passes is one Rasa's check
passes. Anything else (an unknown event type, a wrong field, not an object)
goes to Rasa's own check, unchanged, which raises exactly the error it
raised before (or, should it accept what this check did not, accepts it).
``tests/bot/test_action_response.py`` checks both answers on valid and
invalid responses of every event type.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, Optional, Text, Tuple

import jsonschema
from rasa.core.actions.action import RemoteAction
from rasa.shared.utils.schemas.events import EVENT_SCHEMA

_rasas_check = RemoteAction._validate_action_result
_validators: Optional[Tuple[Any, Dict[Text, Any]]] = None


def _build() -> Tuple[Any, Dict[Text, Any]]:
    """A validator of the response with events' ``oneOf`` left out, and one per event type."""
    by_type = {}
    for schema in EVENT_SCHEMA["oneOf"]:
        event_type = schema["properties"]["event"]["const"]
        if event_type in by_type:
            raise ValueError(f"two event schemas for {event_type!r}: the fast check would not be exact")
        by_type[event_type] = schema
    if len(by_type) != len(EVENT_SCHEMA["oneOf"]):
        raise ValueError("an event schema without its own event type: the fast check would not be exact")

    response = copy.deepcopy(RemoteAction.action_response_format_spec())
    event = response["properties"]["events"]["items"]
    if event != EVENT_SCHEMA:
        raise ValueError("Rasa's response schema changed: the fast check would not be exact")
    del event["oneOf"]

    def validator(schema: Dict[Text, Any]) -> Any:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        return cls(schema)

    return validator(response), {name: validator(schema) for name, schema in by_type.items()}


def passes(result: Any) -> bool:
    """True only for responses Rasa's check passes (see the module)."""
    global _validators
    if _validators is None:
        _validators = _build()
    response, by_type = _validators
    if not response.is_valid(result):
        return False
    for event in result.get("events") or ():
        validator = by_type.get(event["event"])
        if validator is None or not validator.is_valid(event):
            return False
    return True


def validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
    """Rasa's ``_validate_action_result``, answered at once for a response that passes."""
    if passes(result):
        return True
    return _rasas_check(self, result)


def install() -> None:
    RemoteAction._validate_action_result = validate_action_result
