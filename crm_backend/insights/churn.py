"""Churn risk: a logistic regression fitted on the service's own history.

A customer *churned* when they placed no order in the ``churn_days`` after a
cutoff. Training looks back: features are computed at ``now - churn_days``
from what was known then, the label from the orders since. Applying the
model computes the same features at ``now``; the risk is the chance of no
order in the next ``churn_days``. The fitted model is plain JSON (scaler
means and scales, coefficients), so applying it needs numpy only.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import mean

import numpy as np

from .formulas import counts, rfm
from .history import History

FEATURES = (
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "recent_orders",
    "recent_tickets",
    "recent_complaints",
    "csat_mean",
    "csat_last",
)
# Heavy-tailed counts and amounts enter the model as log(1 + x).
LOG_FEATURES = ("recency_days", "frequency", "monetary", "tenure_days", "recent_orders", "recent_tickets", "recent_complaints")
# Scores of customers who never rated anything: filled with the training mean.
OPTIONAL_FEATURES = ("csat_mean", "csat_last")
FEATURE_WORDS = {
    "recency_days": "days since the last order",
    "frequency": "orders placed",
    "monetary": "net amount spent",
    "tenure_days": "days since the first order",
    "recent_orders": "orders in the last {window} days",
    "recent_tickets": "tickets in the last {window} days",
    "recent_complaints": "complaints in the last {window} days",
    "csat_mean": "average satisfaction score",
    "csat_last": "last satisfaction score",
}
MIN_LABELLED = 30
MIN_PER_CLASS = 5
TEST_SHARE = 0.25
RANDOM_STATE = 0
TOP_FACTORS = 3
# Inverse L2 strength. On the demo history C = 0.1 scores at least as well as
# C = 1 (docs/insights.md) and keeps correlated features (all orders, recent
# orders) from cancelling out with large opposite coefficients, so the
# explanations read sensibly. class_weight="balanced" scored no better.
C = 0.1


class NotEnoughHistory(Exception):
    """Too little labelled history to fit or to measure a model; the message says why."""


def features(
    history: History, at: datetime, *, currency: str, churn_days: int, complaint_needs: Iterable[str]
) -> dict[str, float | None] | None:
    """The customer's features from what was known at ``at``; None without an order before then."""
    summary = rfm(history.orders, at, currency)
    if not summary.has_orders:
        return None
    window_start = at - timedelta(days=churn_days)
    complaints = frozenset(complaint_needs)
    recent_tickets = [ticket for ticket in history.tickets if window_start <= ticket.created_at < at]
    scores = [entry.score for entry in history.feedback if entry.created_at < at]
    return {
        "recency_days": summary.recency_days,
        "frequency": float(summary.frequency),
        "monetary": float(summary.monetary),
        "tenure_days": summary.tenure_days,
        "recent_orders": float(
            sum(1 for order in history.orders if counts(order, currency) and window_start <= order.ordered_at < at)
        ),
        "recent_tickets": float(len(recent_tickets)),
        "recent_complaints": float(sum(1 for ticket in recent_tickets if ticket.category in complaints)),
        "csat_mean": mean(scores) if scores else None,
        "csat_last": float(scores[-1]) if scores else None,
    }


def churned(history: History, cutoff: datetime, *, currency: str, churn_days: int) -> bool:
    """The label: no counted order in the ``churn_days`` from ``cutoff`` on."""
    end = cutoff + timedelta(days=churn_days)
    after = rfm(history.orders, end, currency)
    before = rfm(history.orders, cutoff, currency)
    return after.frequency == before.frequency


def _matrix(
    rows: Sequence[dict[str, float | None]], fill: dict[str, float], names: Sequence[str] = FEATURES, logged: Iterable[str] = LOG_FEATURES
) -> np.ndarray:
    matrix = np.array(
        [[row[name] if row[name] is not None else fill[name] for name in names] for row in rows], dtype=float
    ).reshape(len(rows), len(names))
    columns = [names.index(name) for name in logged]
    matrix[:, columns] = np.log1p(np.maximum(matrix[:, columns], 0))
    return matrix


def _fill_values(rows: Sequence[dict[str, float | None]]) -> dict[str, float]:
    fill = {}
    for name in OPTIONAL_FEATURES:
        known = [row[name] for row in rows if row[name] is not None]
        fill[name] = float(mean(known)) if known else 3.0  # no scores at all: the scale's midpoint
    return fill


def _check_enough(labels: np.ndarray) -> None:
    labelled, positives = len(labels), int(labels.sum())
    if labelled < MIN_LABELLED:
        raise NotEnoughHistory(
            f"only {labelled} customers had orders before the training cutoff, and the churn model needs at least {MIN_LABELLED}"
        )
    fewest = min(positives, labelled - positives)
    if fewest < MIN_PER_CLASS:
        kind = "churned" if positives == fewest else "stayed"
        raise NotEnoughHistory(
            f"only {fewest} of {labelled} customers {kind}, and measuring the churn model needs at least {MIN_PER_CLASS} of each kind"
        )


@dataclass(frozen=True)
class ChurnFit:
    params: dict
    metrics: dict
    rows: int


def _pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # No class weighting: the risk is read as a probability (>= 0.5 escalates
    # tickets), and weighting would inflate it for the rarer class.
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))


def fit(
    rows: Sequence[dict[str, float | None]], labels: Sequence[bool], *, churn_days: int, complaint_needs: Iterable[str]
) -> ChurnFit:
    """Measure ROC AUC on a stratified hold-out, then fit on every row; raise NotEnoughHistory."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    y = np.asarray(labels, dtype=int)
    _check_enough(y)
    fill = _fill_values(rows)
    x = _matrix(rows, fill)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=TEST_SHARE, stratify=y, random_state=RANDOM_STATE)
    held_out = _pipeline().fit(x_train, y_train)
    auc = float(roc_auc_score(y_test, held_out.predict_proba(x_test)[:, 1]))
    model = _pipeline().fit(x, y)
    scaler, regression = model[0], model[-1]
    params = {
        "features": list(FEATURES),
        "log_features": list(LOG_FEATURES),
        "fill": fill,
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "coef": regression.coef_[0].tolist(),
        "intercept": float(regression.intercept_[0]),
        # How the features were made, so that applying the model makes them the same way.
        "churn_days": churn_days,
        "complaint_needs": sorted(complaint_needs),
    }
    metrics = {
        "auc": round(auc, 4),
        "base_rate": round(float(y.mean()), 4),
        "rows": len(y),
        "test_rows": len(y_test),
        "churned": int(y.sum()),
    }
    return ChurnFit(params=params, metrics=metrics, rows=len(y))


@dataclass(frozen=True)
class Factor:
    feature: str
    value: float | None
    effect: float  # coefficient x standardised value, on the log-odds scale

    def words(self, churn_days: int) -> str:
        label = FEATURE_WORDS[self.feature].format(window=churn_days)
        if self.value is None:
            shown = "none given"
        elif self.feature in ("monetary", "csat_mean"):
            shown = f"{self.value:.2f}"
        else:
            shown = str(round(self.value))
        direction = "raises" if self.effect > 0 else "lowers"
        return f"{label} ({shown}) {direction} the risk"


@dataclass(frozen=True)
class Risk:
    probability: float
    factors: list[Factor]


def predict(params: dict, rows: Sequence[dict[str, float | None]]) -> list[Risk]:
    """The churn risk of each row, with the features that moved it most from the average customer's."""
    if not rows:
        return []
    from scipy.special import expit

    names = params["features"]
    x = _matrix(rows, params["fill"], names, params["log_features"])
    z = (x - np.asarray(params["mean"])) / np.asarray(params["scale"])
    effects = z * np.asarray(params["coef"])
    probabilities = expit(effects.sum(axis=1) + params["intercept"])
    risks = []
    for row, probability, row_effects in zip(rows, probabilities, effects):
        strongest = np.argsort(-np.abs(row_effects), kind="stable")[:TOP_FACTORS]
        factors = [Factor(names[i], row[names[i]], round(float(row_effects[i]), 4)) for i in strongest]
        risks.append(Risk(probability=float(probability), factors=factors))
    return risks
