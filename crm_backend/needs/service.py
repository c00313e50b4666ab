"""What the rest of the backend calls: the need behind a text, with the model
``init_app`` loaded into the current app (``store.ModelStore``)."""

from flask import current_app

from .prediction import ClassifierUnavailable, Prediction
from .store import ModelStore


def _store() -> ModelStore:
    store = current_app.extensions.get("need_classifier")
    if not isinstance(store, ModelStore):
        raise ClassifierUnavailable("the need classifier is not set up in this app")
    return store


def classify(text: str) -> Prediction:
    """The need behind ``text``; raises ``ClassifierUnavailable`` without a model."""
    return _store().current().predict(text)


def classify_or_other(text: str) -> tuple[str, float | None]:
    """(label, confidence) for ``text``; ``("other", None)`` when no model is loaded.

    For records that must be stored whether or not a model is available
    (tickets, handoffs, feedback).
    """
    try:
        prediction = classify(text)
    except ClassifierUnavailable:
        return "other", None
    return prediction.label, float(prediction.confidence)


def explain(text: str, limit: int = 5) -> list[tuple[str, float]]:
    """The terms of ``text`` that pushed hardest towards its predicted need."""
    return _store().current().explain(text, limit)
