"""bot.patches.event_types resolves event type names exactly as Rasa does."""

import pytest
from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered
from rasa.shared.utils.common import all_subclasses

from bot.patches import event_types


def rasas_answer(type_name, default=None):
    return event_types._original_resolve_by_type(type_name, default)


@pytest.mark.parametrize("cls", all_subclasses(Event))
def test_every_event_class_is_found_as_rasa_finds_it(cls):
    assert Event.resolve_by_type(cls.type_name) is rasas_answer(cls.type_name)


def test_the_usual_ones_twice():
    for _ in range(2):
        assert Event.resolve_by_type("user") is UserUttered
        assert Event.resolve_by_type("slot") is SlotSet
        assert Event.resolve_by_type("action") is ActionExecuted


def test_unknown_names_behave_as_in_rasa():
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("no-such-event", default=SlotSet) is SlotSet
    with pytest.raises(ValueError, match="Unknown event name 'no-such-event'"):
        Event.resolve_by_type("no-such-event")


def test_a_class_defined_later_is_found():
    assert Event.resolve_by_type("helpdesk_test_event", default=SlotSet) is SlotSet

    class HelpdeskTestEvent(SlotSet):
        type_name = "helpdesk_test_event"

    assert Event.resolve_by_type("helpdesk_test_event") is HelpdeskTestEvent
