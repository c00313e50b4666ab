"""With BOT_PATCHES=off Rasa loads the same trained model as stock Rasa does and gives the same answers.

The model archive names bot.components' classes; with every patch off they
are Rasa's own (stock load, TED always asked, every message selected for).
Each setting runs in a process of its own (the patches are per process):
this module, run as a script, loads the model and prints what it answers.
Besides the answers, TED's own probabilities after each action of a
conversation are compared (the ensemble's winner is mostly a rule's, which
would hide a TED that loaded wrongly).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "helpdesk.tar.gz"

MESSAGES = [
    "hi",
    "bye bye",
    "how much is shipping?",
    "can I pay with paypal",
    "how long does delivery take?",
    "my blender arrived broken",
    "my email is jane.doe@example.com",
    "my order is NW-123456",
    "any news on ticket TCK-000042",
    "what are my tickets",
    "I want to talk to a person",
    "this is useless!!",
    "what's the weather like",
    "are you a bot?",
    "asdf qwerty",
]
CONVERSATIONS = [
    ["hello", "how long does delivery take?", "thanks", "bye"],
    ["are you a bot?", "can I return a jacket?", "what's the weather like", "asdf qwerty"],
]


def answers(model: str) -> dict:
    """What the model answers in this process, with the patches BOT_PATCHES selected."""
    import asyncio

    import numpy as np
    from rasa.core.agent import Agent
    from rasa.shared.core.events import ActionExecuted, BotUttered

    from bot import patches

    agent = Agent.load(model)
    nodes = agent.processor.graph_runner._instantiated_nodes
    trained = {
        name: node._component for name, node in nodes.items()
        if name.startswith("run_") and hasattr(node._component, "model")
    }
    (ted,) = [c for c in trained.values() if type(c).__name__ == "FastLoadingTEDPolicy"]

    def parsed(data: dict) -> list:
        intent = data["intent"]["name"]
        selection = data.get("response_selector", {}).get("faq", {}).get("response", {})
        return [
            intent,
            round(data["intent"]["confidence"], 4),
            sorted((e["entity"], e["value"]) for e in data.get("entities", [])),
            # The selector's answer is used only for the retrieval intent.
            [selection.get("intent_response_key"), selection.get("responses")] if intent == "faq" else None,
        ]

    async def run() -> dict:
        nlu = [parsed(await agent.parse_message(text)) for text in MESSAGES]
        conversations = []
        for number, texts in enumerate(CONVERSATIONS):
            sender = f"patches-off-{number}"
            for text in texts:
                np.random.seed(7)  # the same variation of a response with several
                await agent.handle_text(text, sender_id=sender)
            tracker = await agent.tracker_store.retrieve(sender)
            conversations.append({
                "events": [
                    e.action_name if isinstance(e, ActionExecuted) else ["bot", e.text]
                    for e in tracker.events if isinstance(e, (ActionExecuted, BotUttered))
                ],
                "ted": [
                    [round(p, 4) for p in ted.predict_action_probabilities(
                        tracker.travel_back_in_time(e.timestamp), agent.processor.domain).probabilities]
                    for e in tracker.events if isinstance(e, ActionExecuted)
                ],
            })
        return {"nlu": nlu, "conversations": conversations}

    return {
        "active": sorted(n for n in patches.NAMES if patches.active(n)),
        # Rasa loads a policy whose restore fails as an untrained one (model
        # None) and says so only in a debug line; every model must be there.
        "models": sorted(type(c.model).__name__ for c in trained.values() if c.model is not None),
        **asyncio.run(run()),
    }


def answers_with(setting: str) -> subprocess.Popen:
    env = {**os.environ, "BOT_PATCHES": setting, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, __file__, str(MODEL)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=900)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not MODEL.exists(), reason="no trained model; `make train` first")
def test_with_every_patch_off_the_model_loads_and_answers_as_with_every_patch_on():
    # Both at once: the stock load is the slow one (about a minute).
    on, off = answers_with("all"), answers_with("off")
    on, off = result(on), result(off)

    from bot import patches

    assert on["active"] == sorted(patches.NAMES) and off["active"] == []
    assert len(on["models"]) == len(off["models"]) == 3, (on["models"], off["models"])
    # Stock Rasa's model classes with the patches off, the eager-built ones with them on.
    assert on["models"] == ["FastLoadingDIET", "FastLoadingDIET2BOW", "FastLoadingTED"]
    assert off["models"] == ["DIET", "DIET2BOW", "TED"]
    assert on["nlu"] == off["nlu"]
    assert on["conversations"] == off["conversations"]


if __name__ == "__main__":
    print(json.dumps(answers(sys.argv[1])))
