"""Two-stage fallback: rephrase first, then offer a person."""

import pytest

from actions.fallback import ActionHandleFallback, consecutive_fallbacks

from tests.actions.conftest import make_tracker


def with_intents(*intents):
    tracker = make_tracker()
    tracker.events = []
    for intent in intents:
        tracker.events.append({"event": "user", "text": "x", "parse_data": {"intent": {"name": intent}}})
        tracker.events.append({"event": "bot", "text": "y"})
    return tracker


def test_only_fallbacks_in_a_row_count():
    assert consecutive_fallbacks(with_intents("greet", "nlu_fallback")) == 1
    assert consecutive_fallbacks(with_intents("nlu_fallback", "greet", "nlu_fallback", "nlu_fallback")) == 2
    assert consecutive_fallbacks(with_intents("nlu_fallback", "greet")) == 0
    assert consecutive_fallbacks(with_intents("nonsense", "nlu_fallback")) == 2


@pytest.mark.asyncio
async def test_the_first_miss_asks_to_rephrase_the_second_offers_a_person(dispatcher):
    await ActionHandleFallback().run(dispatcher, with_intents("greet", "nlu_fallback"), {})
    await ActionHandleFallback().run(dispatcher, with_intents("nlu_fallback", "nlu_fallback"), {})
    assert [m["response"] for m in dispatcher.messages] == ["utter_ask_rephrase", "utter_fallback_offer_human"]
