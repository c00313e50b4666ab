"""bot.patches.lazy_ted: TED's prediction is worked out only when it could win, and the ensemble picks what Rasa's picks."""

from pathlib import Path

import pytest
from rasa.core.agent import Agent
from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble
from rasa.core.policies.policy import PolicyPrediction
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot import components
from bot.patches import lazy_ted

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "helpdesk.tar.gz"

RULE, MEMO, TED = 6, 3, 1  # the priorities of config.yml's policies


class Counted:
    """A TED stand-in that counts how often it is asked."""

    def __init__(self, probabilities):
        self.probabilities = probabilities
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return PolicyPrediction(self.probabilities, "TED", TED)


def deferred(counted, tracker=None):
    tracker = tracker or DialogueStateTracker.from_events("t", [])
    return lazy_ted.DeferredPrediction(counted, tracker, "TED", TED, len(counted.probabilities))


@pytest.mark.parametrize(
    "rule_says, winner_name, winner_probabilities, ted_asked",
    [
        # A certain rule: TED cannot beat it and is never asked.
        ([0.0, 0.0, 1.0], "Rule", [0.0, 0.0, 1.0], 0),
        # The rule only falls back (0.3): TED is asked, and wins.
        ([0.3, 0.0, 0.0], "TED", [0.1, 0.9, 0.0], 1),
    ],
    ids=["certain rule", "rule falls back"],
)
def test_ted_is_asked_only_when_it_could_win(rule_says, winner_name, winner_probabilities, ted_asked):
    ted = Counted([0.1, 0.9, 0.0])
    rule = PolicyPrediction(rule_says, "Rule", RULE)
    winner = lazy_ted.pick_best_policy([PolicyPrediction([0.0] * 3, "Memo", MEMO), rule, deferred(ted)])
    assert (winner.policy_name, winner.probabilities) == (winner_name, winner_probabilities)
    assert ted.calls == ted_asked


def test_ted_is_asked_when_the_best_other_could_tie_with_it():
    # (1.0, priority 1) against TED's best possible (1.0, 1): a tie, which
    # Rasa's loop settles by order (the first of equals wins), so TED must
    # be worked out.
    ted = Counted([1.0, 0.0])
    same_priority = PolicyPrediction([0.0, 1.0], "Other", TED)
    winner = lazy_ted.pick_best_policy([deferred(ted), same_priority])
    assert ted.calls == 1
    assert winner == lazy_ted._original_pick([PolicyPrediction([1.0, 0.0], "TED", TED), same_priority])
    assert winner.policy_name == "TED"


def test_the_pick_keeps_every_policys_events_in_order():
    from rasa.shared.core.events import SlotSet

    ted = Counted([0.2, 0.0])
    rule = PolicyPrediction([0.0, 1.0], "Rule", RULE, events=[SlotSet("a", 1)], optional_events=[SlotSet("b", 2)])
    memo = PolicyPrediction([0.0, 0.0], "Memo", MEMO, events=[SlotSet("c", 3)])
    predictions = [memo, deferred(ted), rule]
    expected = lazy_ted._original_pick([memo, PolicyPrediction([0.2, 0.0], "TED", TED), rule])
    assert lazy_ted.pick_best_policy(predictions) == expected
    assert ted.calls == 0


def test_a_deferred_prediction_refuses_a_changed_tracker():
    tracker = DialogueStateTracker.from_events("t", [ActionExecuted("action_listen")])
    prediction = deferred(Counted([0.5, 0.5]), tracker)
    tracker.update(UserUttered("hi", {"name": "greet", "confidence": 1.0}))
    with pytest.raises(RuntimeError, match="after its tracker changed"):
        prediction.probabilities


def test_a_deferred_prediction_has_the_fields_of_its_result():
    prediction = deferred(Counted([0.25, 0.75]))
    assert not prediction.resolved
    assert prediction.max_confidence == 0.75
    assert prediction.resolved
    assert (prediction.events, prediction.optional_events, prediction.is_end_to_end_prediction) == ([], [], False)
    assert prediction.diagnostic_data == {} and prediction.is_no_user_prediction is False


def story_trackers(agent: Agent):
    from rasa.core.test import _create_data_generator

    return _create_data_generator(str(REPO / "tests" / "stories"), agent).generate_story_trackers()


def every_intent_out_of_turn(agent: Agent) -> list:
    """Conversations off the stories' paths: each intent said first, and said after a greeting."""
    greeting = [
        ActionExecuted("action_listen"),
        UserUttered("hi", {"name": "greet", "confidence": 1.0}),
        ActionExecuted("action_identify_customer"),
        ActionExecuted("utter_greet"),
    ]
    trackers = []
    for opening in ([], greeting):
        for intent in agent.domain.intents:
            said = UserUttered(intent, {"name": intent, "confidence": 1.0})
            events = [ActionExecuted("action_session_start"), *opening, ActionExecuted("action_listen"), said,
                      ActionExecuted("action_listen")]
            trackers.append(DialogueStateTracker.from_events(f"off-path-{intent}", events, agent.domain.slots))
    return trackers


def predictions_along(agent: Agent, trackers) -> list:
    """The ensemble's prediction before every action of every test story, as ``rasa test`` asks for them."""
    processor = agent.processor
    results = []
    for story in trackers:
        events = list(story.events)
        partial = DialogueStateTracker.from_events(story.sender_id, events[:1], agent.domain.slots)
        for event in events[1:]:
            if isinstance(event, ActionExecuted):
                prediction = processor._predict_next_with_tracker(partial)
                results.append((prediction.policy_name, prediction.max_confidence, prediction))
            partial.update(event)
    return results


@pytest.mark.skipif(not MODEL.exists(), reason="no trained model; `make train` first")
def test_every_prediction_of_the_test_stories_is_rasas(monkeypatch):
    agent = Agent.load(str(MODEL))
    trackers = story_trackers(agent) + every_intent_out_of_turn(agent)

    asked = {"ted": 0}
    original_predict = TEDPolicy.predict_action_probabilities

    def counting_predict(self, *args, **kwargs):
        asked["ted"] += 1
        return original_predict(self, *args, **kwargs)

    monkeypatch.setattr(TEDPolicy, "predict_action_probabilities", counting_predict)
    lazy = predictions_along(agent, trackers)
    lazy_asked = asked["ted"]

    # Stock Rasa: its pick, and TED's own prediction at every step. (A graph
    # node keeps the function it was built with, so the node is changed.)
    monkeypatch.setattr(DefaultPolicyPredictionEnsemble, "_pick_best_policy", staticmethod(lazy_ted._original_pick))
    (ted_node,) = [
        node for node in agent.processor.graph_runner._instantiated_nodes.values()
        if isinstance(node._component, components.FastLoadingTEDPolicy)
    ]
    monkeypatch.setattr(ted_node, "_fn", counting_predict)
    asked["ted"] = 0
    stock = predictions_along(agent, trackers)

    # Predictions that are a form's follow-up action ask no policy.
    policy_predictions = sum(1 for name, _, _ in stock if name != "followup_action")
    assert len(lazy) == len(stock) and asked["ted"] == policy_predictions > 50
    assert [p for _, _, p in lazy] == [p for _, _, p in stock]
    # The stories hold both kinds: predictions a rule or story settles, and
    # ones where TED had to be asked (it wins some of them).
    assert 0 < lazy_asked < policy_predictions / 2
