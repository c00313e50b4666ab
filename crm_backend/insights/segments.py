"""Segments: k-means on standardised log(1 + x) recency, frequency and monetary value.

k runs from 2 to 6 and is chosen by silhouette: the largest k whose
silhouette is within SILHOUETTE_TOLERANCE (1 %) of the best one. A near-tie
is common on RFM data (the demo history of 2026-11-23 scored 0.386 for both
k = 2 and k = 3), and then the finer segmentation tells agents more. Each segment is
named from its centroid, which after standardising is in standard deviations
from the average customer (see ``name_centroid``). The scaler, centroids and
names are stored as JSON, so a single customer is assigned later without
refitting.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .formulas import Rfm

FEATURES = ("recency_days", "frequency", "monetary")
K_CHOICES = range(2, 7)
MIN_CUSTOMERS = 20
SILHOUETTE_TOLERANCE = 0.01
RANDOM_STATE = 0
# Silhouette is quadratic in the number of points; above this it is measured on a sample.
SILHOUETTE_SAMPLE = 5000
# A centroid this many standard deviations from the average counts as high or low.
NOTABLE = 0.5


class NotEnoughCustomers(Exception):
    """Too few customers with orders to form segments; the message says why."""


def vector(summary: Rfm) -> list[float] | None:
    """log(1 + x) of R, F and M; None for a customer without orders (no segment)."""
    if not summary.has_orders:
        return None
    return [float(np.log1p(value)) for value in (summary.recency_days, summary.frequency, float(summary.monetary))]


# Rows: recency (recent, between, long ago); columns: value (high, middle, low).
NAMES = (
    ("loyal high spenders", "active regulars", "new customers"),
    ("big spenders", "regulars", "occasional low spenders"),
    ("at-risk big spenders", "fading regulars", "lapsed"),
)


def _level(z: float) -> int:
    """0 for at least NOTABLE standard deviations above average, 2 for as far below, else 1."""
    return 0 if z >= NOTABLE else 2 if z <= -NOTABLE else 1


def name_centroid(recency: float, frequency: float, monetary: float) -> str:
    """A segment's name from its standardised centroid: a cell of NAMES.

    The row is how long ago its customers bought (``recency``: positive is
    longer ago than average); the column their value, the mean of
    ``frequency`` and ``monetary``. "New customers" are recent with few,
    small orders: tenure is not a feature, and that is what new looks like.
    """
    return NAMES[2 - _level(recency)][_level((frequency + monetary) / 2)]


def name_segments(centroids: np.ndarray) -> list[str]:
    """Names for every centroid; equal names get a number, 1 for the one spending most."""
    names = [name_centroid(*centroid) for centroid in centroids]
    repeated = {name for name, count in Counter(names).items() if count > 1}
    for name in repeated:
        members = sorted((i for i, other in enumerate(names) if other == name), key=lambda i: -centroids[i][2])
        for rank, i in enumerate(members, start=1):
            names[i] = f"{name} {rank}"
    return names


@dataclass(frozen=True)
class SegmentFit:
    params: dict
    metrics: dict
    rows: int


def _silhouette(z: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import silhouette_score

    sample = min(len(z), SILHOUETTE_SAMPLE)
    return float(silhouette_score(z, labels, sample_size=sample, random_state=RANDOM_STATE))


def fit(vectors: Sequence[Sequence[float]]) -> SegmentFit:
    """Fit k-means for every k, keep the largest k within 1 % of the best silhouette; raise NotEnoughCustomers."""
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(vectors, dtype=float).reshape(len(vectors), len(FEATURES))
    distinct = len(np.unique(x, axis=0))
    if len(x) < MIN_CUSTOMERS or distinct <= min(K_CHOICES):
        raise NotEnoughCustomers(
            f"only {len(x)} customers with orders ({distinct} distinct), and segments need at least {MIN_CUSTOMERS}"
        )
    scaler = StandardScaler().fit(x)
    z = scaler.transform(x)
    fitted, scores = {}, {}
    for k in K_CHOICES:
        if k >= distinct:
            break
        fitted[k] = KMeans(n_clusters=k, n_init=10, random_state=RANDOM_STATE).fit(z)
        scores[k] = round(_silhouette(z, fitted[k].labels_), 4)
    top = max(scores.values())
    best = max(k for k, score in scores.items() if score >= top - abs(top) * SILHOUETTE_TOLERANCE)
    centroids = fitted[best].cluster_centers_
    names = name_segments(centroids)
    params = {
        "features": list(FEATURES),
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "centroids": centroids.tolist(),
        "names": names,
    }
    sizes = np.bincount(fitted[best].labels_, minlength=best)
    metrics = {
        "k": best,
        "silhouette": scores[best],
        "silhouette_by_k": {str(k): score for k, score in scores.items()},
        "sizes": {name: int(size) for name, size in zip(names, sizes)},
        "rows": len(x),
    }
    return SegmentFit(params=params, metrics=metrics, rows=len(x))


def assign(params: dict, vectors: Sequence[Sequence[float]]) -> list[str]:
    """The nearest centroid's name for each vector."""
    if not vectors:
        return []
    x = np.asarray(vectors, dtype=float)
    z = (x - np.asarray(params["mean"])) / np.asarray(params["scale"])
    centroids = np.asarray(params["centroids"])
    distances = ((z[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    return [params["names"][i] for i in distances.argmin(axis=1)]
