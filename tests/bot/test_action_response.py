"""bot.patches.action_response: every action-server response passes or fails exactly as with Rasa's own check."""

from datetime import datetime

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.shared.core import events as rasa_events
from rasa.shared.utils.schemas.events import EVENT_SCHEMA

from bot.patches import action_response

EVENT_TYPES = [schema["properties"]["event"]["const"] for schema in EVENT_SCHEMA["oneOf"]]


def rasa_events_of_every_class():
    """Events as Rasa itself writes them (``as_dict``), one or more of each kind."""
    return [
        rasa_events.UserUttered("my blender is cracked", {"name": "report_problem", "confidence": 0.98},
                                [{"entity": "order_number", "value": "NW-482913", "start": 3, "end": 12}]).as_dict(),
        rasa_events.ActionExecuted("action_create_ticket", policy="RulePolicy", confidence=1.0).as_dict(),
        rasa_events.SlotSet("email", "ada@example.com").as_dict(),
        rasa_events.SlotSet("requested_slot", None).as_dict(),
        rasa_events.EntitiesAdded([{"entity": "email", "value": "ada@example.com"}]).as_dict(),
        rasa_events.ReminderScheduled("remind", datetime(2026, 12, 3, 9, 0), name="r1").as_dict(),
        rasa_events.ReminderCancelled(name="r1").as_dict(),
        rasa_events.ActionExecutionRejected("ticket_form").as_dict(),
        rasa_events.LoopInterrupted(True).as_dict(),
        rasa_events.ActiveLoop("ticket_form").as_dict(),
        rasa_events.ActiveLoop(None).as_dict(),
        rasa_events.AllSlotsReset().as_dict(),
        rasa_events.ConversationResumed().as_dict(),
        rasa_events.ConversationPaused().as_dict(),
        rasa_events.FollowupAction("utter_greet").as_dict(),
        rasa_events.StoryExported().as_dict(),
        rasa_events.Restarted().as_dict(),
        rasa_events.ActionReverted().as_dict(),
        rasa_events.UserUtteranceReverted().as_dict(),
        rasa_events.BotUttered("Your ticket is TCK-000123.", {"buttons": [{"title": "5", "payload": "/inform"}]}).as_dict(),
        rasa_events.SessionStarted().as_dict(),
        rasa_events.AgentUttered("an agent", {}).as_dict(),
        rasa_events.DefinePrevUserUtteredFeaturization(False).as_dict(),
    ]


WRONG_EVENTS = [
    {"event": "no_such_event"},
    {"event": 5},
    {"name": "email", "value": "x"},
    {"event": "slot", "name": 7, "value": "x"},
    {"event": "slot", "timestamp": "yesterday"},
    {"event": "user", "text": 5},
    {"event": "user", "parse_data": {"entities": [{"value": "x"}]}},
    {"event": "action", "name": ["a"]},
    {"event": "followup", "metadata": "m"},
    "an event",
    None,
]


# Bare events of every type, and fields of types the schemas leave open:
# some pass Rasa's check, some fail it; either way the answer must be Rasa's.
EITHER = [{"events": [{"event": event_type}]} for event_type in EVENT_TYPES] + [
    {"events": [{"event": "bot", "text": {"a": 1}}]},
    {"events": [{"event": "active_loop", "name": 3}]},
    {"events": [{"event": "slot", "name": "email"}]},
    {"events": [{"event": "user", "text": None, "parse_data": None}]},
]


def responses():
    good = [{"events": [event], "responses": []} for event in rasa_events_of_every_class()]
    good += [{}, {"events": []}, {"responses": [{"text": "hi", "buttons": []}]}, {"events": rasa_events_of_every_class()}]
    bad = [{"events": [event]} for event in WRONG_EVENTS]
    bad += [{"events": rasa_events_of_every_class() + [event]} for event in WRONG_EVENTS[:3]]
    bad += [{"events": {"event": "slot"}}, {"events": None}, {"responses": "text"}, {"responses": ["x"]}, ["events"], "ok"]
    return good, bad


def outcome(check, result):
    try:
        return check(RemoteAction("action_x", None), result), None
    except ValidationError as error:
        return None, (error.message, list(error.absolute_path), error.validator)


GOOD, BAD = responses()


@pytest.mark.parametrize("result", GOOD + BAD + EITHER)
def test_each_response_gets_rasas_answer(result):
    assert outcome(action_response.validate_action_result, result) == outcome(action_response._rasas_check, result)


def test_the_responses_rasa_accepts_are_accepted_without_rasas_check():
    assert all(outcome(action_response._rasas_check, result) == (True, None) for result in GOOD)
    assert all(action_response.passes(result) for result in GOOD)
    # Most bare events of the EITHER list pass too, by the fast check.
    assert sum(action_response.passes(result) for result in EITHER) > len(EVENT_TYPES) / 2


def test_the_responses_rasa_rejects_are_left_to_rasas_check():
    assert all(outcome(action_response._rasas_check, result)[1] is not None for result in BAD)
    assert not any(action_response.passes(result) for result in BAD)


def test_rasa_uses_it_once_bot_is_imported():
    assert RemoteAction._validate_action_result is action_response.validate_action_result
