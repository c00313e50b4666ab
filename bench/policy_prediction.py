"""CPU time of one next-action prediction, with and without bot.patches.past_states, log_copies and lazy_ted.

    .venv/bot/bin/python -m bench.policy_prediction [--repeat 3] [--predictions 150]

Loads the trained model (models/helpdesk.tar.gz, `make train`) in this
process and asks Rasa's processor for the next action
(``MessageProcessor._predict_next_with_tracker``: the Memoization, Rule and
TED policies and the ensemble) on conversations of 2, 6 and 12 FAQ turns,
`--predictions` times each, measuring process CPU time. Before every
prediction the past-states cache is emptied, as a conversation's next
prediction always finds a tracker with new events: what remains are the
hits within one prediction (Rule twice, Memoization once). The two set-ups
alternate `--repeat` times so that other work on the machine weighs on both
alike; the table shows each run and the medians. No action server or CRM is
needed: nothing is executed.
"""

from __future__ import annotations

import argparse
import copy as standard_copy
import logging
import os
import statistics
import time

from harness import REPO

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.chdir(REPO)

TURNS = (2, 6, 12)


def faq_conversation(domain, turns: int):
    from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    parse_data = {
        "text": "how long does shipping take",
        "intent": {"name": "faq", "confidence": 0.99},
        "entities": [],
        "response_selector": {
            "faq": {
                "response": {"intent_response_key": "faq/shipping_time", "responses": [{"text": "3-5 days"}], "confidence": 0.9},
                "ranking": [],
            }
        },
    }
    tracker = DialogueStateTracker.from_events("bench", [], slots=domain.slots)
    events = [ActionExecuted("action_session_start"), ActionExecuted("action_listen")]
    for _ in range(turns):
        events += [
            UserUttered(parse_data["text"], parse_data["intent"], parse_data=parse_data),
            ActionExecuted("utter_faq"),
            BotUttered("3-5 days"),
            ActionExecuted("action_listen"),
        ]
    for event in events:
        tracker.update(event)
    return tracker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--predictions", type=int, default=150)
    args = parser.parse_args()

    logging.getLogger("rasa").setLevel(logging.WARNING)
    import rasa.core.policies.memoization as memoization
    import rasa.core.policies.rule_policy as rule_policy
    import rasa.core.processor as processor_module
    from rasa.core.agent import Agent
    from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble
    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.shared.core.domain import Domain

    import bot.components  # noqa: F401 - installs the project's patches, as Rasa's model load does
    from bot.patches import lazy_ted, log_copies, past_states

    agent = Agent.load(str(REPO / "models" / "helpdesk.tar.gz"))
    processor = agent.processor
    trackers = {turns: faq_conversation(agent.domain, turns) for turns in TURNS}
    # A graph node keeps the function it was built with: TED's is swapped on the node.
    (ted_node,) = [
        node for node in processor.graph_runner._instantiated_nodes.values()
        if isinstance(node._component, TEDPolicy)
    ]
    lazy_ted_predict = ted_node._fn

    def use(enabled: bool) -> None:
        if enabled:
            Domain.states_for_tracker_history = past_states.states_for_tracker_history
            log_copies.install()
            lazy_ted.install()
            ted_node._fn = lazy_ted_predict
        else:
            Domain.states_for_tracker_history = past_states._original
            for module in (processor_module, rule_policy, memoization):
                module.copy = standard_copy
            DefaultPolicyPredictionEnsemble._pick_best_policy = staticmethod(lazy_ted._original_pick)
            ted_node._fn = TEDPolicy.predict_action_probabilities

    def measure() -> dict[int, float]:
        figures = {}
        for turns, tracker in trackers.items():
            processor._predict_next_with_tracker(tracker)  # warm
            started = time.process_time()
            for _ in range(args.predictions):
                past_states._local.cache = {}  # a new tracker state at every prediction
                processor._predict_next_with_tracker(tracker)
            figures[turns] = (time.process_time() - started) / args.predictions * 1000
        return figures

    runs: dict[str, list[dict[int, float]]] = {"Rasa's": [], "ours": []}
    for _ in range(args.repeat):
        for name, enabled in (("Rasa's", False), ("ours", True)):
            use(enabled)
            runs[name].append(measure())
    use(True)

    print(f"\nCPU ms per prediction ({args.predictions} predictions per figure, {args.repeat} alternating runs)")
    print(f"{'set-up':8} " + " ".join(f"{f'{t} turns':>22}" for t in TURNS))
    for name, figures in runs.items():
        cells = []
        for turns in TURNS:
            values = [run[turns] for run in figures]
            cells.append(f"{statistics.median(values):6.2f} ({', '.join(f'{v:.2f}' for v in values)})")
        print(f"{name:8} " + " ".join(f"{c:>22}" for c in cells))
    for turns in TURNS:
        ours = statistics.median(run[turns] for run in runs["ours"])
        theirs = statistics.median(run[turns] for run in runs["Rasa's"])
        print(f"{turns:>2} turns: {theirs - ours:.2f} ms saved per prediction ({(theirs - ours) / theirs:.0%})")


if __name__ == "__main__":
    main()
