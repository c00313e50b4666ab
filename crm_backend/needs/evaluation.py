"""Fit on one split, measure on another: quality, calibration and speed."""

import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, f1_score
from threadpoolctl import threadpool_limits

from .defaults import DEFAULT_C, DEFAULT_THRESHOLD, OTHER_LABEL
from .model import NeedModel, fit, save

SINGLE_TEXT_SAMPLES = 300


def expected_calibration_error(confidences: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Mean gap between confidence and accuracy, weighted by how many texts fall in each bin."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    error = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidences > low) & (confidences <= high)
        if inside.any():
            error += inside.mean() * abs(confidences[inside].mean() - correct[inside].mean())
    return float(error)


def worst_confusions(truth: list[str], predicted: list[str], limit: int = 8) -> list[tuple[str, str, int]]:
    pairs = Counter((t, p) for t, p in zip(truth, predicted) if t != p)
    return [(t, p, n) for (t, p), n in pairs.most_common(limit)]


def evaluate(
    train_texts: list[str],
    train_labels: list[str],
    test_texts: list[str],
    test_labels: list[str],
    *,
    C: float = DEFAULT_C,
    class_weight: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    progress=None,
    tqdm=None,
) -> tuple[NeedModel, dict, str, list[tuple[str, str, int]]]:
    """Returns the model, the metrics, the classification report and the worst confusions."""
    model = fit(train_texts, train_labels, C=C, class_weight=class_weight, threshold=threshold, progress=progress)
    fit_seconds = model.metadata["fit_seconds"]

    # Measured as a serving worker runs: one thread (see store.ModelStore).
    limits = threadpool_limits(limits=1)
    started = time.perf_counter()
    predictions = model.predict_many(test_texts)
    batch_ms = (time.perf_counter() - started) * 1000 / len(test_texts)

    sample = test_texts[:SINGLE_TEXT_SAMPLES]
    model.predict(sample[0])  # warm caches once, as a serving worker would be
    timings = []
    for text in tqdm(sample, desc="single-text predictions", leave=False) if tqdm else sample:
        started = time.perf_counter()
        model.predict(text)
        timings.append((time.perf_counter() - started) * 1000)
    limits.restore_original_limits()

    # Accuracy as the literature reports it: the best label, no threshold.
    best = [prediction.top[0][0] for prediction in predictions]
    served = [prediction.label for prediction in predictions]
    confidences = np.array([prediction.confidence for prediction in predictions])
    correct = np.array([b == t for b, t in zip(best, test_labels)])
    confident = confidences >= threshold

    with tempfile.TemporaryDirectory() as tmp:
        model_bytes = save(model, Path(tmp) / "model.skops").stat().st_size

    metrics = {
        "accuracy": round(accuracy_score(test_labels, best), 4),
        "macro_f1": round(f1_score(test_labels, best, average="macro", zero_division=0), 4),
        "fit_seconds": round(fit_seconds, 2),
        "predict_ms_per_text": round(statistics.median(timings), 3),
        "predict_ms_p95": round(float(np.percentile(timings, 95)), 3),
        "batch_ms_per_text": round(batch_ms, 4),
        # What a ticket gets: below the threshold the label is "other".
        "served_accuracy": round(accuracy_score(test_labels, served), 4),
        "threshold": threshold,
        "coverage_above_threshold": round(float(confident.mean()), 4),
        "accuracy_above_threshold": round(float(correct[confident].mean()), 4) if confident.any() else None,
        "expected_calibration_error": round(expected_calibration_error(confidences, correct), 4),
        "model_mb": round(model_bytes / 1e6, 2),
        "n_train": len(train_texts),
        "n_test": len(test_texts),
        "n_labels": len(model.labels),
    }
    report = classification_report(test_labels, best, digits=3, zero_division=0)
    model.metadata["metrics"] = {key: metrics[key] for key in ("accuracy", "macro_f1", "served_accuracy", "expected_calibration_error")}
    return model, metrics, report, worst_confusions(test_labels, best)


__all__ = ["OTHER_LABEL", "evaluate", "expected_calibration_error", "worst_confusions"]
