"""Two-stage fallback: ask to rephrase once, then offer a person.

The ``FallbackClassifier`` turns a message the assistant is not sure about
into ``nlu_fallback``. The first time, the customer is asked to say it
another way; if the rephrased message is not understood either, the
assistant stops guessing and offers a person.
"""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

# Messages the assistant could not make sense of: unsure (nlu_fallback) or
# recognisably gibberish/code (nonsense).
NOT_UNDERSTOOD = {"nlu_fallback", "nonsense"}


def consecutive_fallbacks(tracker: Tracker) -> int:
    """How many of the customer's latest messages in a row were not understood."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if intent not in NOT_UNDERSTOOD:
            break
        count += 1
    return count


class ActionHandleFallback(Action):
    def name(self) -> str:
        return "action_handle_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if consecutive_fallbacks(tracker) >= 2:
            dispatcher.utter_message(response="utter_fallback_offer_human")
        else:
            dispatcher.utter_message(response="utter_ask_rephrase")
        return []
