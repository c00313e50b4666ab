"""DIET, the ResponseSelector's DIET and TED built in a fraction of a second when a trained model loads.

Rasa 3.6 rebuilds each TensorFlow model at load time by fitting it on one
example before reading the saved weights (``RasaModel.load``). It runs that
one-step fit as a traced ``tf.function``, which on this 2-core machine costs
15–25 s per model and is thrown away right after: loading DIET + TED took
52.3 s (docs/benchmarks.md, "``make run``: first start and restart"; with
this patch 10.4 s for the whole ``Agent.load``). Fitting that single example
eagerly creates the same variables in a fraction of a second; the saved
weights then replace them exactly as before, and eager mode is switched off
again so that prediction is traced once, as in stock Rasa.

Training is untouched: these model classes differ from Rasa's only in
``load``. bot/components.py's ``FastLoading*`` components (the classes the
trained model names) use them while this patch is active and Rasa's own
otherwise; tests/bot/test_patches_off.py checks that both loads answer the
same.
"""

from __future__ import annotations

from typing import Any, Optional, Text

import tensorflow as tf
from rasa.core.policies.ted_policy import TED
from rasa.nlu.classifiers.diet_classifier import DIET
from rasa.nlu.selectors.response_selector import DIET2BOW, DIET2DIET
from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY
from rasa.utils.tensorflow.data_generator import RasaBatchDataGenerator
from rasa.utils.tensorflow.model_data import RasaModelData
from rasa.utils.tensorflow.models import RasaModel


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
