"""The cached jsonschema.validate behaves like the library's own."""

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

from bot.patches import schema_cache

SPEC = RemoteAction("action_x", None).action_response_format_spec()


@pytest.mark.parametrize(
    "response",
    [
        {"events": [], "responses": []},
        {"events": [{"event": "slot", "name": "a", "value": 1}], "responses": [{"text": "hi"}]},
        {"events": "not a list", "responses": []},
        {"events": [{"no_event_key": 1}], "responses": []},
        {"responses": [{"text": 5}]},
    ],
)
def test_same_verdict_and_message_as_the_library(response):
    def outcome(validate):
        try:
            validate(response, SPEC)
        except jsonschema.ValidationError as error:
            return error.message
        return None

    assert outcome(schema_cache.validate) == outcome(schema_cache._original_validate)


def test_a_bad_schema_is_still_refused():
    with pytest.raises(jsonschema.SchemaError):
        schema_cache.validate({}, {"type": "no-such-type"})


def test_the_process_uses_the_cached_validate_once_bot_is_imported():
    assert jsonschema.validate is schema_cache.validate
