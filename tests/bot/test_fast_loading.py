"""bot.components loads the trained model fast and predicts exactly what
stock Rasa's loading predicts."""

import asyncio
from pathlib import Path

import pytest
from rasa.core.agent import Agent
from rasa.core.policies.ted_policy import TED
from rasa.shared.core.events import ActionExecuted
from rasa.nlu.classifiers.diet_classifier import DIET
from rasa.nlu.selectors.response_selector import DIET2BOW, DIET2DIET

from bot import components

MODEL = Path(__file__).resolve().parents[2] / "models" / "helpdesk.tar.gz"
MESSAGES = [
    "hi",
    "bye bye",
    "how much is shipping?",
    "can I pay with paypal",
    "my blender arrived broken",
    "what's the weather like",
    "are you a bot?",
    "asdf qwerty",
]
CONVERSATION = ["hello", "how long does delivery take?", "thanks", "bye"]


def predictions(agent: Agent) -> list:
    async def run():
        parsed = [await agent.parse_message(text) for text in MESSAGES]
        for text in CONVERSATION:
            await agent.handle_text(text, sender_id="fast-loading-check")
        tracker = await agent.tracker_store.retrieve("fast-loading-check")
        # Action names, not reply texts: some responses have random variations.
        return parsed, [e.action_name for e in tracker.events if isinstance(e, ActionExecuted)]

    parsed, actions = asyncio.run(run())
    nlu = [
        (
            p["intent"]["name"],
            round(p["intent"]["confidence"], 4),
            p.get("response_selector", {}).get("faq", {}).get("response", {}).get("intent_response_key"),
        )
        for p in parsed
    ]
    return [nlu, actions]


@pytest.mark.skipif(not MODEL.exists(), reason="no trained model; `make train` first")
def test_fast_loading_predicts_what_stock_loading_predicts(monkeypatch):
    fast = predictions(Agent.load(str(MODEL)))

    monkeypatch.setattr(components.FastLoadingDIETClassifier, "model_class", staticmethod(lambda: DIET))
    monkeypatch.setattr(components.FastLoadingTEDPolicy, "model_class", staticmethod(lambda: TED))
    monkeypatch.setattr(
        components.FastLoadingResponseSelector,
        "model_class",
        staticmethod(lambda use_text_as_label: DIET2DIET if use_text_as_label else DIET2BOW),
    )
    stock = predictions(Agent.load(str(MODEL)))

    assert fast == stock
