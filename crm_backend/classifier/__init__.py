"""Need classification: what a customer's text is about (DESIGN "Need classification").

Other parts of the backend call ``classify(text)``; it uses the model that
``init_app`` loaded for the current app and raises ``ClassifierUnavailable``
when there is none. The model file is watched: a retrained model replaces the
loaded one in every worker process within ``NEED_MODEL_CHECK_SECONDS``.
"""

import os
from dataclasses import dataclass

import click

from flask import Flask, current_app


@dataclass(frozen=True)
class Prediction:
    label: str  # a need label, or "other" below the threshold
    confidence: float  # 0..1, of the top label
    top: list[tuple[str, float]]  # best first, up to 3


class ClassifierUnavailable(Exception):
    """No need model is loaded (none trained yet, or the file is unreadable)."""


def _store():
    from .store import ModelStore

    store = current_app.extensions.get("need_classifier")
    if not isinstance(store, ModelStore):
        raise ClassifierUnavailable("the need classifier is not set up in this app")
    return store


def classify(text: str) -> Prediction:
    """The need behind ``text``, with the model loaded into the current app."""
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


def init_app(app: Flask) -> None:
    from .. import health
    from . import corrections
    from .store import ModelStore
    from .views import bp

    app.config.setdefault("NEED_MODEL_PATH", os.environ.get("NEED_MODEL_PATH", "models/needs.skops"))
    app.config.setdefault("NEED_MODEL_CHECK_SECONDS", float(os.environ.get("NEED_MODEL_CHECK_SECONDS", 5)))
    store = ModelStore(
        app.config["NEED_MODEL_PATH"],
        check_seconds=float(app.config["NEED_MODEL_CHECK_SECONDS"]),
        logger=app.logger,
    )
    # Serving processes load at start; `crm` commands (init-db, seed-demo, ...)
    # almost never classify, and loading scikit-learn and the model would add
    # seconds to each of them: there the first classify() loads it.
    if click.get_current_context(silent=True) is None:
        store.load_if_present()
    app.extensions["need_classifier"] = store
    health.register_check(app, "classifier", store.readiness)
    app.register_blueprint(bp)
    corrections.register_source(app, corrections.ticket_corrections)
    from .commands import classifier_group

    app.cli.add_command(classifier_group)


__all__ = ["ClassifierUnavailable", "Prediction", "classify", "explain", "init_app"]
