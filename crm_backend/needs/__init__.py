"""Need classification: what a customer's text is about (docs/classifier.md).

Other parts of the backend call ``classify(text)`` (or ``classify_or_other``);
it uses the model that ``init_app`` loaded for the current app and raises
``ClassifierUnavailable`` when there is none. The model file is watched: a
retrained model replaces the loaded one in every worker process within
``NEED_MODEL_CHECK_SECONDS``.

Modules: ``service`` (what other areas call), ``store`` (the loaded model of a
worker), ``model`` (the fitted Pipeline, its file), ``features``, ``text`` and
``calibration`` (its steps), ``commands`` (``crm classifier``), ``views``
(``POST /api/v1/classify``). None of them imports this package module.
"""

import click

from flask import Flask

from .prediction import ClassifierUnavailable, Prediction
from .service import classify, classify_or_other, explain


def init_app(app: Flask) -> None:
    from .. import health
    from . import corrections
    from .store import ModelStore

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
    corrections.register_source(app, corrections.ticket_corrections)


__all__ = ["ClassifierUnavailable", "Prediction", "classify", "classify_or_other", "explain", "init_app"]
