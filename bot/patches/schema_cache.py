"""``jsonschema.validate`` that checks each schema once, not on every call.

Rasa 3.6 validates every action-server response with
``jsonschema.validate(result, spec)``, which first re-checks ``spec``
against its meta-schema: 83 ms of the Rasa process's single event loop per
custom action on this machine, against 1.1 ms with a validator built once
(bench/conversations.py found it taking 22% of Rasa's time; docs/benchmarks.md,
"Conversations"). This keeps the same contract (same errors, same best
match) and caches the checked validator per schema. It replaces the
function for the whole process, so Rasa's other callers (events posted to
its HTTP API, NLG responses, domain checks) get the same cache.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for

MAX_SCHEMAS = 64
_original_validate = jsonschema.validate
_validators: dict[tuple[Any, str], Any] = {}


def validate(instance: Any, schema: Any, cls: Any = None, *args: Any, **kwargs: Any) -> None:
    if args or kwargs:
        # Unusual calls keep the library's own behaviour.
        return _original_validate(instance, schema, cls, *args, **kwargs)
    try:
        key = (cls, json.dumps(schema, sort_keys=True))
    except (TypeError, ValueError):
        return _original_validate(instance, schema, cls)
    validator = _validators.get(key)
    if validator is None:
        validator_class = cls or validator_for(schema)
        validator_class.check_schema(schema)
        validator = validator_class(schema)
        if len(_validators) < MAX_SCHEMAS:
            _validators[key] = validator
    error = best_match(validator.iter_errors(instance))
    if error is not None:
        raise error


def install() -> None:
    jsonschema.validate = validate
