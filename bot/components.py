"""The DIET, ResponseSelector and TED components the trained model names.

config.yml names these classes, so the model archive does
(``bot.components.FastLoadingDIETClassifier``, ``FastLoadingResponseSelector``,
``FastLoadingTEDPolicy``): they are registered Rasa components and must stay
importable under these names for the model to load. Training is Rasa's.

What each does beyond Rasa's class is a patch of bot/patches/, done only
while that patch is active (``BOT_PATCHES``); with a patch off the method is
Rasa's own, so with ``BOT_PATCHES=off`` the same model loads as stock Rasa
loads it and gives the same answers (tests/bot/test_patches_off.py):

- ``fast_load`` (all three): the TensorFlow model is built eagerly at load
  time instead of by a traced one-example fit (bot/patches/fast_load.py).
- ``response_selector_skip`` (ResponseSelector): only messages that may be
  the retrieval intent are selected for (bot/patches/response_selector_skip.py).
- ``lazy_ted`` (TED): its prediction is worked out only where it could win
  (bot/patches/lazy_ted.py).

Rasa's training-data check looks components up by exact class, so training
warns that the configuration has "no response selector component"; that
warning is wrong for these subclasses and can be ignored.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text, Type

from rasa.core.policies.policy import PolicyPrediction
from rasa.core.policies.ted_policy import TED, TEDPolicy
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.diet_classifier import DIET, DIETClassifier
from rasa.nlu.selectors.response_selector import DIET2BOW, DIET2DIET, ResponseSelector
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.training_data.message import Message
from rasa.utils.tensorflow.models import RasaModel

from bot import patches
from bot.patches import fast_load, lazy_ted, response_selector_skip


@DefaultV1Recipe.register(
    [
        DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER,
        DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR,
    ],
    is_trainable=True,
)
class FastLoadingDIETClassifier(DIETClassifier):
    """Rasa's DIETClassifier; with ``fast_load``, a fast ``load``."""

    @staticmethod
    def model_class() -> Type[RasaModel]:
        return fast_load.FastLoadingDIET if patches.active("fast_load") else DIET


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class FastLoadingResponseSelector(ResponseSelector):
    """Rasa's ResponseSelector; with ``fast_load``, a fast ``load``; with
    ``response_selector_skip``, asked only about messages that may be its retrieval intent."""

    def process(self, messages: List[Message]) -> List[Message]:
        if not patches.active("response_selector_skip"):
            return super().process(messages)
        super().process(
            [m for m in messages if response_selector_skip.may_be_retrieval_intent(m, self.retrieval_intent)]
        )
        return messages

    @staticmethod
    def model_class(use_text_as_label: bool) -> Type[RasaModel]:  # type: ignore[override]
        if patches.active("fast_load"):
            return fast_load.FastLoadingDIET2DIET if use_text_as_label else fast_load.FastLoadingDIET2BOW
        return DIET2DIET if use_text_as_label else DIET2BOW


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITH_END_TO_END_SUPPORT, is_trainable=True
)
class FastLoadingTEDPolicy(TEDPolicy):
    """Rasa's TEDPolicy; with ``fast_load``, a fast ``load``; with ``lazy_ted``,
    predicting only when its prediction could win."""

    @staticmethod
    def model_class() -> Type[TED]:
        return fast_load.FastLoadingTED if patches.active("fast_load") else TED

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[Text, Any]] = None,
        precomputations: Optional[Any] = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        parent = super()

        def predict() -> PolicyPrediction:
            return parent.predict_action_probabilities(
                tracker, domain, rule_only_data=rule_only_data, precomputations=precomputations, **kwargs
            )

        if patches.active("lazy_ted"):
            return lazy_ted.predict_lazily(self, predict, tracker, domain)
        return predict()
