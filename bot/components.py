"""DIET, ResponseSelector and TED that load a trained model in seconds.

Rasa 3.6 rebuilds each TensorFlow model at load time by fitting it on one
example before reading the saved weights. It runs that one-step fit as a
traced ``tf.function``, which on this 2-core machine costs 15–25 s per model
(measured: 52 s for DIET + TED, see docs/benchmarks.md) and is thrown away
right after. Fitting that single example eagerly creates the same variables
in a fraction of a second; the saved weights then replace them exactly as
before, and eager mode is switched off again so that prediction is traced
once, as in stock Rasa.

Training is untouched: these classes differ from Rasa's only in ``load``
(and TED in when it predicts: only where its prediction could win,
bot/lazy_ted.py).
``tests/e2e`` and ``rasa test`` run through them, and
``tests/bot/test_fast_loading.py`` checks that both load paths predict the same.

Rasa's training-data check looks components up by exact class, so training
warns that the configuration has "no response selector component"; that
warning is wrong for these subclasses and can be ignored.
"""

from __future__ import annotations

from typing import Any, List, Optional, Text, Type

import tensorflow as tf
from rasa.core.policies.ted_policy import TED, TEDPolicy
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.diet_classifier import DIET, DIETClassifier
from rasa.nlu.selectors.response_selector import DIET2BOW, DIET2DIET, ResponseSelector
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY
from rasa.shared.nlu.training_data.message import Message
from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY
from rasa.utils.tensorflow.data_generator import RasaBatchDataGenerator
from rasa.utils.tensorflow.model_data import RasaModelData
from rasa.utils.tensorflow.models import RasaModel

from bot import (
    action_response,
    event_types,
    fast_features,
    fast_json,
    lazy_ted,
    log_copies,
    nlu_worker,
    past_states,
    schema_cache,
)

schema_cache.install()
event_types.install()
fast_json.install()
fast_features.install()
past_states.install()
log_copies.install()
lazy_ted.install()
action_response.install()
nlu_worker.install()


class EagerBuildMixin:
    """Replaces ``RasaModel.load``: build the variables eagerly, then restore."""

    @classmethod
    def load(
        cls,
        model_file_name: Text,
        model_data_example: RasaModelData,
        predict_data_example: Optional[RasaModelData] = None,
        finetune_mode: bool = False,
        *args: Any,
        **kwargs: Any,
    ) -> RasaModel:
        if finetune_mode:
            # Further training wants the optimizer state as Rasa restores it.
            return super().load(  # type: ignore[misc]
                model_file_name, model_data_example, predict_data_example, finetune_mode, *args, **kwargs
            )
        model = cls(*args, **kwargs)
        learning_rate = kwargs.get("config", {}).get(LEARNING_RATE, 0.001)
        # Eager only for this throw-away step that sizes the weights.
        model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate), run_eagerly=True)
        model.fit(RasaBatchDataGenerator(model_data_example, batch_size=1), verbose=False)
        # The checkpoint holds the optimizer's slots as a list in the order
        # a traced training step made them; this eager step made them in
        # another order (for TED the shapes then clash and the whole
        # restore fails). Prediction needs no optimizer: give the model a
        # fresh one that holds no slots, so none are restored.
        model.optimizer = tf.keras.optimizers.Adam(learning_rate)
        # Predict as stock Rasa does: a traced tf.function (unless the
        # component's config asks for eager mode). Left eager, every parse
        # ran op by op: 88.6 ms instead of 13.4 ms per message for DIET.
        model.run_eagerly = bool(kwargs.get("config", {}).get(RUN_EAGERLY, False))
        # The checkpoint also holds optimizer slots and training-only
        # variables that prediction never creates; that is expected.
        model.load_weights(model_file_name).expect_partial()
        if predict_data_example:
            # Traces the prediction function now rather than on the first customer message.
            model.run_inference(predict_data_example)
        return model


class FastLoadingDIET(EagerBuildMixin, DIET):
    pass


class FastLoadingDIET2BOW(EagerBuildMixin, DIET2BOW):
    pass


class FastLoadingDIET2DIET(EagerBuildMixin, DIET2DIET):
    pass


class FastLoadingTED(EagerBuildMixin, TED):
    pass


@DefaultV1Recipe.register(
    [
        DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER,
        DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR,
    ],
    is_trainable=True,
)
class FastLoadingDIETClassifier(DIETClassifier):
    """Rasa's DIETClassifier with a fast ``load``."""

    @staticmethod
    def model_class() -> Type[RasaModel]:
        return FastLoadingDIET


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class FastLoadingResponseSelector(ResponseSelector):
    """Rasa's ResponseSelector with a fast ``load``, asked only about messages that may be its retrieval intent.

    Rasa runs the ResponseSelector's model on every message, though its
    answer is used only when the message's intent is the retrieval intent
    (``faq``: the rule ``faq → utter_faq``). Here a message whose intent
    ranking (from DIET, which runs before) gives the retrieval intent less
    than ``MIN_RETRIEVAL_CONFIDENCE`` gets no response selection: 12 % of
    the Rasa process's time under load, on the four in five messages that
    are not FAQ questions (docs/benchmarks.md, "Conversations"). On the
    held-out phrasings, nine in ten non-FAQ messages give ``faq`` 0.0002 or
    less, and every FAQ message is far above the threshold, so every
    message whose selection could matter still gets one. Messages without
    an intent ranking (another pipeline) are selected for, as before.
    """

    MIN_RETRIEVAL_CONFIDENCE = 0.01

    def process(self, messages: List[Message]) -> List[Message]:
        super().process([message for message in messages if self._may_be_retrieval_intent(message)])
        return messages

    def _may_be_retrieval_intent(self, message: Message) -> bool:
        if not self.retrieval_intent:
            return True
        intent = message.get(INTENT) or {}
        if intent.get(INTENT_NAME_KEY) == self.retrieval_intent:
            return True
        ranking = message.get(INTENT_RANKING_KEY)
        if not ranking:
            return True
        confidence = next(
            (entry.get(PREDICTED_CONFIDENCE_KEY, 0.0) for entry in ranking
             if entry.get(INTENT_NAME_KEY) == self.retrieval_intent),
            0.0,
        )
        return confidence >= self.MIN_RETRIEVAL_CONFIDENCE

    @staticmethod
    def model_class(use_text_as_label: bool) -> Type[RasaModel]:  # type: ignore[override]
        return FastLoadingDIET2DIET if use_text_as_label else FastLoadingDIET2BOW


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITH_END_TO_END_SUPPORT, is_trainable=True
)
class FastLoadingTEDPolicy(lazy_ted.LazyTEDMixin, TEDPolicy):
    """Rasa's TEDPolicy with a fast ``load``, predicting only when its prediction could win (bot/lazy_ted.py)."""

    @staticmethod
    def model_class() -> Type[TED]:
        return FastLoadingTED
