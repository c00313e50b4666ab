"""The need model: one scikit-learn Pipeline from raw text to label, plus what
is needed to trust it later (labels, metrics, data hash, library versions).
"""

import hashlib
import os
import platform
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from .calibration import TemperatureScaledLogisticRegression
from .defaults import DEFAULT_C, DEFAULT_THRESHOLD, OTHER_LABEL
from .features import WordAndCharTfidf
from .prediction import ClassifierUnavailable, Prediction
from .text import SpacyNormaliser

# 2: the features step is WordAndCharTfidf (was a FeatureUnion) and the
# package is crm_backend.needs (was crm_backend.classifier).
FORMAT_VERSION = 2
TOP_K = 3


class TrainingError(ValueError):
    """The training data cannot produce a model; the message says why."""


def build_classifier(C: float = DEFAULT_C, class_weight: str | None = None) -> LogisticRegression:
    # tol 3e-4 reaches the accuracy of the default 1e-4 on BANKING77 in 60 % of the time.
    return LogisticRegression(C=C, class_weight=class_weight, tol=3e-4, max_iter=1000)


def build_pipeline(C: float = DEFAULT_C, class_weight: str | None = None) -> Pipeline:
    # Temperature scaling so that "0.6" means right about 60 % of the time and a
    # threshold means something.
    classifier = TemperatureScaledLogisticRegression(build_classifier(C, class_weight))
    return Pipeline(
        [
            ("normalise", SpacyNormaliser()),
            ("features", WordAndCharTfidf()),
            ("classify", classifier),
        ]
    )


def data_hash(texts: list[str], labels: list[str]) -> str:
    digest = hashlib.sha256()
    for text, label in zip(texts, labels):
        digest.update(text.encode("utf-8") + b"\x1f" + label.encode("utf-8") + b"\x1e")
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    import skops
    import spacy

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "spacy": spacy.__version__,
        "skops": skops.__version__,
    }


@dataclass
class NeedModel:
    pipeline: Pipeline
    labels: list[str]
    threshold: float = DEFAULT_THRESHOLD
    metadata: dict = field(default_factory=dict)

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """``pipeline.predict_proba``: one row per text, columns in ``pipeline.classes_`` order."""
        return self.pipeline.predict_proba(list(texts))

    def predict_many(self, texts: list[str]) -> list[Prediction]:
        probabilities = self.probabilities(texts)
        classes = self.pipeline.classes_
        predictions = []
        for row in probabilities:
            best = np.argsort(row)[::-1][:TOP_K]
            top = [(str(classes[i]), round(float(row[i]), 4)) for i in best]
            label, confidence = top[0]
            if confidence < self.threshold:
                label = OTHER_LABEL
            predictions.append(Prediction(label=label, confidence=confidence, top=top))
        return predictions

    def predict(self, text: str) -> Prediction:
        return self.predict_many([text])[0]

    def _linear_model(self) -> LogisticRegression:
        return self.pipeline.named_steps["classify"].linear_

    def explain(self, text: str, limit: int = 5) -> list[tuple[str, float]]:
        """Word n-grams of ``text`` with the largest contribution to the top label.

        Character n-grams also vote, but "efu" means nothing to an agent; the
        word features are the readable part of the evidence.
        """
        linear = self._linear_model()
        normalised = self.pipeline.named_steps["normalise"].transform([text])
        features: WordAndCharTfidf = self.pipeline.named_steps["features"]
        word_vectorizer = features.word_  # its columns come first in the features
        row = word_vectorizer.transform(normalised).tocoo()
        scores = linear.decision_function(features.transform(normalised))[0]
        class_index = int(np.argmax(scores))
        weights = linear.coef_[class_index if linear.coef_.shape[0] > 1 else 0]
        if linear.coef_.shape[0] == 1 and class_index == 0:
            weights = -weights  # binary: coef_ points towards classes_[1]
        names = word_vectorizer.get_feature_names_out()
        contributions = [(str(names[j]), float(value * weights[j])) for j, value in zip(row.col, row.data)]
        contributions = [item for item in contributions if item[1] > 0]
        contributions.sort(key=lambda item: item[1], reverse=True)
        return [(term, round(score, 4)) for term, score in contributions[:limit]]


def fit(
    texts: list[str],
    labels: list[str],
    *,
    C: float = DEFAULT_C,
    class_weight: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    progress=None,
) -> NeedModel:
    """Fit a NeedModel; ``progress(step_name)`` is called as each step starts."""
    counts = {label: labels.count(label) for label in set(labels)}
    if len(texts) == 0:
        raise TrainingError("the training data has no rows")
    if len(counts) < 2:
        raise TrainingError(f"the training data has only one label ({next(iter(counts))!r}); at least two are needed")
    pipeline = build_pipeline(C, class_weight)
    report = progress or (lambda step: None)
    started = time.perf_counter()
    report("normalise")
    normalised = pipeline.named_steps["normalise"].fit_transform(texts)
    report("vectorise")
    matrix = pipeline.named_steps["features"].fit_transform(normalised)
    report("fit logistic regression, calibrate, refit")
    # One thread: lbfgs' many small OpenMP/BLAS calls are 5-8x slower when
    # two threads fight over two busy cores than one thread alone.
    with threadpool_limits(limits=1):
        classifier = pipeline.named_steps["classify"].fit(matrix, labels)
    fit_seconds = time.perf_counter() - started
    labels_seen = sorted(counts)
    return NeedModel(
        pipeline=pipeline,
        labels=labels_seen,
        threshold=threshold,
        metadata={
            "format_version": FORMAT_VERSION,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "data_sha256": data_hash(texts, labels),
            "n_examples": len(texts),
            "label_counts": dict(sorted(counts.items())),
            "hyperparameters": {"C": C, "class_weight": class_weight, "temperature": round(classifier.temperature_, 4)},
            "fit_seconds": round(fit_seconds, 3),
            "versions": library_versions(),
            "metrics": {},
        },
    )


# --- saving and loading -----------------------------------------------------

# Our own classes are the only types skops does not trust by default; anything
# else in a model file is refused rather than executed.
_OWN_TYPES_PREFIX = "crm_backend.needs."
# Files of model format 1 name the package's former path; they need retraining, not distrust.
_FORMAT_1_TYPES_PREFIX = "crm_backend.classifier."


def save(model: NeedModel, path: str | Path) -> Path:
    """Write the model atomically: readers see the old file or the new one."""
    import skops.io as sio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "pipeline": model.pipeline,
        "labels": list(model.labels),
        "threshold": float(model.threshold),
        "metadata": model.metadata,
    }
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        # skops writes vocabularies as JSON; deflate shrinks the file ~5x.
        sio.dump(payload, tmp_name, compression=zipfile.ZIP_DEFLATED)
        os.chmod(tmp_name, 0o644)  # mkstemp makes it 0600; workers may run as another user
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def load(path: str | Path) -> NeedModel:
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise ClassifierUnavailable(f"no need model at {path}; train one with `crm classifier train`")
    try:
        untrusted = sio.get_untrusted_types(file=path)
        foreign = [name for name in untrusted if not name.startswith(_OWN_TYPES_PREFIX)]
        if foreign and all(name.startswith(_FORMAT_1_TYPES_PREFIX) for name in foreign):
            raise ClassifierUnavailable(f"{path} has model format 1, expected {FORMAT_VERSION}; retrain it with `crm classifier train`")
        if foreign:
            raise ClassifierUnavailable(f"{path} contains types this backend does not trust: {', '.join(foreign)}")
        payload = sio.load(path, trusted=untrusted)
    except ClassifierUnavailable:
        raise
    except Exception as error:  # a truncated or foreign file: say so, do not crash the worker
        raise ClassifierUnavailable(f"{path} is not a readable need model ({error.__class__.__name__})") from error
    metadata = payload.get("metadata", {})
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ClassifierUnavailable(f"{path} has model format {metadata.get('format_version')}, expected {FORMAT_VERSION}; retrain it with `crm classifier train`")
    return NeedModel(
        pipeline=payload["pipeline"],
        labels=list(payload["labels"]),
        threshold=float(payload["threshold"]),
        metadata=metadata,
    )


def version_mismatches(model: NeedModel) -> list[str]:
    """Libraries whose version differs from the one the model was trained with."""
    saved = model.metadata.get("versions", {})
    current = library_versions()
    return [
        f"{name} {saved[name]} (now {current[name]})"
        for name in ("scikit-learn", "numpy", "spacy")
        if name in saved and saved[name] != current[name]
    ]
