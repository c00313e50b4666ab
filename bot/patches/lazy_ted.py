"""TED's prediction worked out only when it could win.

At every next-action prediction Rasa runs every policy and then lets the
ensemble (``DefaultPolicyPredictionEnsemble._pick_best_policy``) pick the
prediction with the highest ``(max_confidence, policy_priority)``. Most
predictions of this assistant come from a rule (a form's next step, an FAQ
answer, listening after a reply) or a story the Memoization policy knows,
with confidence 1.0 — and then TED's prediction, whose confidences are
probabilities (at most 1.0) and whose priority (1) is below both of theirs
(6 and 3), cannot win. Working it out anyway costs TED's featurisation of
the last five turns and a TensorFlow call: about 6 ms of CPU per prediction
(with the ``past_states`` patch, one prediction went from 7.5–9.3 ms to
1.3–2.3 ms; docs/benchmarks.md, "TED loaded again, and less work around
it").

Here ``bot.components.FastLoadingTEDPolicy.predict_action_probabilities``
returns, while this patch is active, ``predict_lazily``'s
``DeferredPrediction``: TED's prediction, worked out the first time any of
its fields that depend on the model is read. The ensemble's pick is
wrapped: a deferred prediction that cannot beat the best of the others is
replaced, for the pick only, by a prediction of all zeros with the same
flags and no events, which loses exactly where TED's would have lost;
every other deferred prediction is worked out and compared as before. The
winner, its events and the order of events are what Rasa's ensemble gives.

What a deferred prediction knows without the model, and why:

- ``events`` is empty: TED never returns events, only optional ones.
- ``is_no_user_prediction`` is False.
- ``is_end_to_end_prediction`` is False when TED was trained without user
  text in stories (``TEXT`` not among its fake features): it then
  featurises one example, by intent, and ``_pick_confidence`` returns
  ``self.only_e2e``, which is False. A TED trained on end-to-end stories is
  not deferred.
- its confidences are at most 1.0: softmax scores, renormalised over the
  top ``ranking_length`` as ``x / sum`` with every ``x`` in the sum.

A deferred prediction refuses to be worked out once its tracker has new
events (the ensemble runs in the same graph run as the policies, before
Rasa applies anything): a stale TED prediction is a bug, not an answer.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Text, Tuple

from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble
from rasa.core.policies.policy import PolicyPrediction
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import TEXT

# Upper bound of a TED confidence (see above).
MAX_CONFIDENCE = 1.0


class DeferredPrediction(PolicyPrediction):
    """A policy's prediction, worked out on first use of what depends on the model."""

    def __init__(
        self,
        predict: Callable[[], PolicyPrediction],
        tracker: DialogueStateTracker,
        policy_name: Optional[Text],
        policy_priority: int,
        action_count: int,
    ) -> None:
        # Not PolicyPrediction.__init__: its fields are properties here.
        self._predict = predict
        self._tracker = tracker
        self._events_at_prediction = len(tracker.events)
        self._result: Optional[PolicyPrediction] = None
        self.policy_name = policy_name
        self.policy_priority = policy_priority
        self.events: List[Any] = []
        self.is_no_user_prediction = False
        self._action_count = action_count

    @property
    def resolved(self) -> bool:
        return self._result is not None

    def resolve(self) -> PolicyPrediction:
        if self._result is None:
            if len(self._tracker.events) != self._events_at_prediction:
                raise RuntimeError(
                    f"{self.policy_name}'s deferred prediction was asked for after its tracker changed "
                    f"({self._events_at_prediction} events then, {len(self._tracker.events)} now)"
                )
            result = self._predict()
            if result.events or result.is_no_user_prediction or result.is_end_to_end_prediction:
                raise RuntimeError(f"{self.policy_name} made a prediction this class does not defer: {result}")
            self._result = result
            self._tracker = None  # type: ignore[assignment]
        return self._result

    def stand_in(self) -> PolicyPrediction:
        """A prediction that loses wherever this one could not win: same flags, no events, all zeros."""
        return PolicyPrediction(
            [0.0] * self._action_count, self.policy_name, self.policy_priority, events=[]
        )

    # What depends on the model.
    probabilities = property(lambda self: self.resolve().probabilities)
    optional_events = property(lambda self: self.resolve().optional_events)
    diagnostic_data = property(lambda self: self.resolve().diagnostic_data)
    hide_rule_turn = property(lambda self: self.resolve().hide_rule_turn)
    action_metadata = property(lambda self: self.resolve().action_metadata)

    @property
    def is_end_to_end_prediction(self) -> bool:
        return False

    def __repr__(self) -> Text:
        state = repr(self._result) if self._result is not None else "not worked out"
        return f"DeferredPrediction({self.policy_name}, {state})"


def predict_lazily(
    policy: Any, predict: Callable[[], PolicyPrediction], tracker: DialogueStateTracker, domain: Domain
) -> PolicyPrediction:
    """A TED policy's prediction (``predict``), deferred where that is exact (see the module)."""
    if getattr(policy, "model", None) is None or TEXT in (getattr(policy, "fake_features", None) or {}):
        return predict()
    return DeferredPrediction(predict, tracker, policy.__class__.__name__, policy.priority, domain.num_actions)


def _best_without(predictions: List[PolicyPrediction], skip: PolicyPrediction) -> Optional[Tuple[float, int]]:
    """The best (max_confidence, priority) among the worked-out predictions other than ``skip`` that the pick considers.

    The same filters as Rasa's ``_pick_best_policy``, over every
    prediction's flags (known for deferred ones too).
    """
    no_user = any(p.is_no_user_prediction for p in predictions)
    end_to_end = any(p.is_end_to_end_prediction for p in predictions)
    best: Optional[Tuple[float, int]] = None
    for prediction in predictions:
        if prediction is skip or (isinstance(prediction, DeferredPrediction) and not prediction.resolved):
            continue
        if prediction.is_no_user_prediction != no_user:
            continue
        if not no_user and prediction.is_end_to_end_prediction != end_to_end:
            continue
        candidate = (prediction.max_confidence, prediction.policy_priority)
        if best is None or candidate > best:
            best = candidate
    return best


_original_pick = DefaultPolicyPredictionEnsemble._pick_best_policy


def pick_best_policy(predictions: List[PolicyPrediction]) -> PolicyPrediction:
    """Rasa's pick, without working out deferred predictions that cannot win."""
    chosen: List[PolicyPrediction] = []
    for prediction in predictions:
        if isinstance(prediction, DeferredPrediction) and not prediction.resolved:
            best = _best_without(predictions, prediction)
            # Strictly better than the best this one could be: it loses, ties included.
            if best is not None and best > (MAX_CONFIDENCE, prediction.policy_priority):
                chosen.append(prediction.stand_in())
                continue
            prediction.resolve()
        chosen.append(prediction)
    return _original_pick(chosen)


def install() -> None:
    DefaultPolicyPredictionEnsemble._pick_best_policy = staticmethod(pick_best_policy)
