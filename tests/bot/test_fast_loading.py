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


def trained_components(agent: Agent) -> dict:
    """The loaded DIET, ResponseSelector and TED components by graph node name."""
    nodes = agent.processor.graph_runner._instantiated_nodes
    return {
        name: node._component
        for name, node in nodes.items()
        if name.startswith("run_") and hasattr(node._component, "model")
    }


def ted_probabilities(agent: Agent, tracker) -> list:
    """TED's own prediction (not the ensemble's winner, which is mostly a rule's)."""
    (ted,) = [c for c in trained_components(agent).values() if isinstance(c, components.FastLoadingTEDPolicy)]
    prediction = ted.predict_action_probabilities(tracker, agent.processor.domain)
    return [round(p, 4) for p in prediction.probabilities]


def predictions(agent: Agent) -> list:
    async def run():
        parsed = [await agent.parse_message(text) for text in MESSAGES]
        for text in CONVERSATION:
            await agent.handle_text(text, sender_id="fast-loading-check")
        tracker = await agent.tracker_store.retrieve("fast-loading-check")
        # TED after each of the conversation's actions.
        ted = [
            ted_probabilities(agent, tracker.travel_back_in_time(event.timestamp))
            for event in tracker.events
            if isinstance(event, ActionExecuted)
        ]
        # Action names, not reply texts: some responses have random variations.
        return parsed, [e.action_name for e in tracker.events if isinstance(e, ActionExecuted)], ted

    parsed, actions, ted = asyncio.run(run())
    nlu = [
        (
            p["intent"]["name"],
            round(p["intent"]["confidence"], 4),
            p.get("response_selector", {}).get("faq", {}).get("response", {}).get("intent_response_key"),
        )
        for p in parsed
    ]
    return [nlu, actions, ted]


@pytest.mark.skipif(not MODEL.exists(), reason="no trained model; `make train` first")
def test_fast_loading_predicts_what_stock_loading_predicts(monkeypatch):
    agent = Agent.load(str(MODEL))
    # Rasa loads a policy whose restore fails as an untrained one (model
    # None) and says so only in a debug line; every model must be there.
    loaded = trained_components(agent)
    assert len(loaded) == 3, loaded
    assert all(component.model is not None for component in loaded.values()), loaded
    fast = predictions(agent)

    monkeypatch.setattr(components.FastLoadingDIETClassifier, "model_class", staticmethod(lambda: DIET))
    monkeypatch.setattr(components.FastLoadingTEDPolicy, "model_class", staticmethod(lambda: TED))
    monkeypatch.setattr(
        components.FastLoadingResponseSelector,
        "model_class",
        staticmethod(lambda use_text_as_label: DIET2DIET if use_text_as_label else DIET2BOW),
    )
    stock = predictions(Agent.load(str(MODEL)))

    assert fast == stock
