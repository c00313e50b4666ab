"""bot.patches.past_states gives every policy the past states Rasa's own function gives."""

from pathlib import Path

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.patches import past_states

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def domain():
    return Domain.load(REPO / "domain.yml")


def rasas(domain, tracker, **arguments):
    return past_states._original(domain, tracker, **arguments)


def complaint_conversation(domain):
    """A customer's complaint through the ticket form, event by event."""
    tracker = DialogueStateTracker.from_events("customer", [], slots=domain.slots)
    events = [
        ActionExecuted("action_session_start"),
        ActionExecuted("action_listen"),
        UserUttered("hi", {"name": "greet", "confidence": 0.99}),
        ActionExecuted("action_greet"),
        BotUttered("Hi Ada"),
        ActionExecuted("action_listen"),
        UserUttered(
            "my blender arrived cracked",
            {"name": "report_problem", "confidence": 0.95},
            entities=[{"entity": "order_number", "value": "NW-482913", "start": 0, "end": 9}],
        ),
        ActionExecuted("ticket_form"),
        ActiveLoop("ticket_form"),
        SlotSet("problem_description", "my blender arrived cracked"),
        SlotSet("requested_slot", "customer_email"),
        ActionExecuted("action_listen"),
        UserUttered("ada@example.com", {"name": "inform", "confidence": 0.9}),
        ActionExecuted("ticket_form"),
        SlotSet("customer_email", "ada@example.com"),
        ActiveLoop(None),
        SlotSet("requested_slot", None),
        ActionExecuted("action_create_ticket"),
        SlotSet("csat_pending", True),
        ActionExecuted("action_listen"),
    ]
    for event in events:
        tracker.update(event)
        yield tracker


ARGUMENTS = [
    {},
    {"omit_unset_slots": True},
    {"ignore_rule_only_turns": True, "rule_only_data": {"rule_only_slots": ["csat_pending"], "rule_only_loops": []}},
    {"ignore_rule_only_turns": True, "rule_only_data": {"rule_only_slots": [], "rule_only_loops": ["ticket_form"]}},
]


def test_at_every_event_every_policy_gets_rasas_states(domain):
    for tracker in complaint_conversation(domain):
        for arguments in ARGUMENTS:
            expected = rasas(domain, tracker, **arguments)
            # The policies ask several times about the same tracker (the cache's hits).
            for _ in range(3):
                assert domain.states_for_tracker_history(tracker, **arguments) == expected
                assert tracker.past_states(domain, **arguments) == expected


def test_a_caller_changing_its_states_changes_nobody_elses(domain):
    tracker = list(complaint_conversation(domain))[-1]
    expected = rasas(domain, tracker)
    first = tracker.past_states(domain)
    # What MaxHistoryTrackerFeaturizer._choose_last_user_input does, and more.
    for state in first:
        state.pop("user", None)
        for sub_state in state.values():
            sub_state.clear()
    first.clear()

    assert tracker.past_states(domain) == expected


def test_another_tracker_with_as_many_events_is_worked_out_for_itself(domain):
    trackers = []
    for text, intent in (("hi", "greet"), ("bye", "goodbye")):
        tracker = DialogueStateTracker.from_events("customer", [], slots=domain.slots)
        for event in (ActionExecuted("action_listen"), UserUttered(text, {"name": intent, "confidence": 1.0})):
            tracker.update(event)
        trackers.append(tracker)

    greet, goodbye = (tracker.past_states(domain) for tracker in trackers)

    assert greet == rasas(domain, trackers[0]) and goodbye == rasas(domain, trackers[1])
    assert greet != goodbye


def test_the_rule_only_data_matters_only_when_rule_only_turns_are_left_out(domain):
    tracker = list(complaint_conversation(domain))[-1]
    with_ticket_form_rule_only = tracker.past_states(domain, **ARGUMENTS[3])
    without = tracker.past_states(domain, ignore_rule_only_turns=True, rule_only_data={})

    assert with_ticket_form_rule_only == rasas(domain, tracker, **ARGUMENTS[3])
    assert without == rasas(domain, tracker, ignore_rule_only_turns=True, rule_only_data={})
    assert tracker.past_states(domain, rule_only_data={"rule_only_slots": ["x"]}) == rasas(domain, tracker)


def test_the_same_question_about_the_same_tracker_is_worked_out_once(domain, monkeypatch):
    calls = []
    original = past_states._original

    def counting(*args, **kwargs):
        calls.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(past_states, "_original", counting)
    tracker = list(complaint_conversation(domain))[-1]

    for _ in range(3):  # RulePolicy twice, MemoizationPolicy once
        tracker.past_states(domain)
    tracker.update(ActionExecuted("action_listen"))
    tracker.past_states(domain)

    assert len(calls) == 2
