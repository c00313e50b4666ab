"""Customer insights: compute, store and use them.

``refresh_customers`` recomputes a few customers with the newest stored
models (called in the transaction of an order, a ticket or feedback);
``refresh_all`` fits the models and refreshes everyone (the nightly
``crm insights recompute``); ``ticket_priority`` turns a customer's value and
churn risk into a ticket priority. docs/insights.md explains every figure.

A customer whose rows cannot be read, or whose figures the database refuses
(a lifetime value beyond its column, say), costs that customer, not the run:
``refresh_all`` sets them aside as a dead letter (crm_backend/dead_letters.py)
and refreshes the others.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import bindparam, func, select, union_all
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified
from threadpoolctl import threadpool_limits

from .. import dead_letters
from ..db import utcnow
from ..models import LOYALTY_TIERS, Customer, InsightModel
from ..settings import Settings
from . import churn, formulas, segments
from .history import BATCH_SIZE, History, customer_id_batches, load_histories

MODEL_KINDS = ("churn", "segments", "population")
# Ticket priority: a Gold or Silver customer counts as at risk from AT_RISK,
# anyone from HIGH_RISK (docs/insights.md, "Ticket priority").
AT_RISK, HIGH_RISK = 0.3, 0.5


class SettingsError(ValueError):
    """An insight setting that cannot work; the message names it."""


@dataclass(frozen=True)
class InsightSettings:
    currency: str
    discount_rate: float
    horizon_years: int
    churn_days: int
    complaint_needs: frozenset[str]

    def __post_init__(self) -> None:
        if not (len(self.currency) == 3 and self.currency.isalpha()):
            raise SettingsError(f"INSIGHTS_CURRENCY {self.currency!r} is not an ISO 4217 code such as GBP")
        if not 0 <= self.discount_rate < 1:
            raise SettingsError(f"INSIGHTS_DISCOUNT_RATE {self.discount_rate} is not a yearly rate from 0 up to 1 (0.10 is 10 %)")
        if self.horizon_years < 1:
            raise SettingsError(f"INSIGHTS_HORIZON_YEARS {self.horizon_years} is not a number of years of at least 1")
        if self.churn_days < 1:
            raise SettingsError(f"CHURN_DAYS {self.churn_days} is not a number of days of at least 1")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "InsightSettings":
        return cls(
            currency=config["INSIGHTS_CURRENCY"].upper(),
            discount_rate=float(config["INSIGHTS_DISCOUNT_RATE"]),
            horizon_years=int(config["INSIGHTS_HORIZON_YEARS"]),
            churn_days=int(config["CHURN_DAYS"]),
            complaint_needs=frozenset(config["INSIGHTS_COMPLAINT_NEEDS"]),
        )


def check_settings(config: Mapping[str, Any]) -> None:
    """Fail at start, in one sentence, on insight settings that cannot work."""
    InsightSettings.from_config(config)


def current_settings() -> InsightSettings:
    """The app's settings; outside an app (a script), the environment's."""
    return InsightSettings.from_config(current_app.config if has_app_context() else Settings.from_env().flask_config())


# --- stored models ----------------------------------------------------------


@dataclass(frozen=True)
class StoredModel:
    id: int
    params: dict
    metrics: dict


@dataclass(frozen=True)
class Models:
    """The newest stored model of each kind, None if there is none."""

    churn: StoredModel | None
    segments: StoredModel | None
    population: StoredModel | None


def _newest_query():
    table = InsightModel.__table__
    newest = [
        select(table.c.kind, table.c.id, table.c.created_at)
        .where(table.c.kind == kind)
        .order_by(table.c.created_at.desc(), table.c.id.desc())
        .limit(1)
        .subquery()
        .select()
        for kind in MODEL_KINDS
    ]
    return union_all(*newest)


# Built once; read on every ticket, order and score.
_NEWEST_MODELS = _newest_query()
_MODEL_BY_ID = select(InsightModel.__table__.c.params, InsightModel.__table__.c.metrics).where(
    InsightModel.__table__.c.id == bindparam("id")
)
# A stored model never changes, so its decoded JSON is kept per process,
# keyed by database, id and creation time (ids restart in a new database).
_decoded: dict[tuple[str, int, datetime], StoredModel] = {}
_DECODED_MAX = 64


def _stored_model(session: Session, model_id: int, created_at: datetime) -> StoredModel:
    key = (session.get_bind().url.render_as_string(), model_id, created_at)
    if key not in _decoded:
        if len(_decoded) >= _DECODED_MAX:
            _decoded.clear()
        params, metrics = session.execute(_MODEL_BY_ID, {"id": model_id}).one()
        _decoded[key] = StoredModel(model_id, params, metrics)
    return _decoded[key]


def load_models(session: Session) -> Models:
    newest = {kind: (model_id, created_at) for kind, model_id, created_at in session.execute(_NEWEST_MODELS)}
    return Models(*(_stored_model(session, *newest[kind]) if kind in newest else None for kind in MODEL_KINDS))


# --- one customer's figures -------------------------------------------------


@dataclass
class CustomerInsights:
    lifetime_value: Decimal
    loyalty_score: int | None
    loyalty_tier: str | None
    churn_risk: float | None
    segment: str | None
    explanation: dict = field(default_factory=dict)


def _retention(risk: float | None, models: Models, settings: InsightSettings) -> tuple[float, str]:
    """The yearly retention s for the CLV, and where it came from."""
    if risk is not None:
        return formulas.yearly_retention(risk, models.churn.params["churn_days"]), "the customer's churn risk"
    population = models.population.params if models.population is not None else {}
    if population.get("window_churn") is not None:
        return formulas.yearly_retention(population["window_churn"], population["churn_days"]), "the share of customers who churned"
    return 1.0, "no churn history yet (no attrition assumed)"


def _loyalty(summary: formulas.Rfm, models: Models) -> formulas.LoyaltyParts | None:
    if not summary.has_orders:
        return formulas.LoyaltyParts(0.0, 0.0, 0.0)
    if models.population is None:
        return None
    return formulas.loyalty_parts(summary, models.population.params["cut_points"])


def _rfm_json(summary: formulas.Rfm) -> dict:
    return {
        "recency_days": round(summary.recency_days, 1) if summary.recency_days is not None else None,
        "frequency": summary.frequency,
        "monetary": str(summary.monetary.quantize(formulas.CENT)),
        "tenure_days": round(summary.tenure_days, 1) if summary.tenure_days is not None else None,
    }


def _churn_json(risk: churn.Risk, model: StoredModel) -> dict:
    days = model.params["churn_days"]
    return {
        "model_id": model.id,
        "window_days": days,
        "factors": [
            {"feature": factor.feature, "value": factor.value, "effect": factor.effect, "text": factor.words(days)}
            for factor in risk.factors
        ],
    }


def _notes(summary: formulas.Rfm, models: Models) -> list[str]:
    if not summary.has_orders:
        return ["No orders yet, so no churn risk or segment."]
    missing = [
        text
        for model, text in (
            (models.churn, "no churn model is trained yet"),
            (models.segments, "no segments are fitted yet"),
            (models.population, "no loyalty reference points are computed yet"),
        )
        if model is None
    ]
    return [f"Partial figures: {', '.join(missing)}; run `crm insights recompute`."] if missing else []


def score_customers(
    histories: dict[int, History], now: datetime, settings: InsightSettings, models: Models
) -> dict[int, CustomerInsights]:
    """Every customer's figures, with the models applied to the whole batch at once."""
    summaries = {customer_id: formulas.rfm(history.orders, now, settings.currency) for customer_id, history in histories.items()}
    buyers = [customer_id for customer_id, summary in summaries.items() if summary.has_orders]
    risks: dict[int, churn.Risk] = {}
    if models.churn is not None and buyers:
        rows = [_churn_features(histories[customer_id], now, settings, models.churn) for customer_id in buyers]
        risks = dict(zip(buyers, churn.predict(models.churn.params, rows)))
    names: dict[int, str] = {}
    if models.segments is not None and buyers:
        vectors = [segments.vector(summaries[customer_id]) for customer_id in buyers]
        names = dict(zip(buyers, segments.assign(models.segments.params, vectors)))
    return {
        customer_id: _customer_insights(summary, risks.get(customer_id), names.get(customer_id), settings, models)
        for customer_id, summary in summaries.items()
    }


def _churn_features(history: History, now: datetime, settings: InsightSettings, model: StoredModel) -> dict:
    # The model's own window and complaint needs, so that it sees what it was trained on.
    return churn.features(
        history,
        now,
        currency=settings.currency,
        churn_days=model.params["churn_days"],
        complaint_needs=model.params.get("complaint_needs", settings.complaint_needs),
    )


def _customer_insights(
    summary: formulas.Rfm, risk: churn.Risk | None, segment: str | None, settings: InsightSettings, models: Models
) -> CustomerInsights:
    probability = round(risk.probability, 4) if risk is not None else None
    retention, retention_source = _retention(probability, models, settings)
    revenue = formulas.annual_revenue(summary)
    loyalty = _loyalty(summary, models)
    score = loyalty.score if loyalty is not None else None
    explanation = {
        "currency": settings.currency,
        "rfm": _rfm_json(summary),
        "lifetime_value": {
            "annual_revenue": round(revenue, 2),
            "yearly_retention": round(retention, 4),
            "retention_from": retention_source,
            "discount_rate": settings.discount_rate,
            "horizon_years": settings.horizon_years,
        },
        "loyalty": None if loyalty is None else {
            "recency": round(loyalty.recency, 1),
            "frequency": round(loyalty.frequency, 1),
            "monetary": round(loyalty.monetary, 1),
        },
        "churn": _churn_json(risk, models.churn) if risk is not None else None,
        "segment_model_id": models.segments.id if segment is not None else None,
        "notes": _notes(summary, models),
    }
    return CustomerInsights(
        lifetime_value=formulas.lifetime_value(revenue, retention, settings.discount_rate, settings.horizon_years),
        loyalty_score=score,
        loyalty_tier=formulas.loyalty_tier(score) if score is not None else None,
        churn_risk=probability,
        segment=segment,
        explanation=explanation,
    )


# The largest figure customers.lifetime_value (Numeric(15, 2)) holds. Orders
# come from other systems (inbound order.* events, CSV imports): a handful of
# absurd amounts must not make PostgreSQL refuse the whole refresh.
LIFETIME_VALUE_LIMIT = Decimal("9999999999999.99")


def _bounded(value: Decimal | None) -> Decimal | None:
    if value is None:
        return None
    return max(-LIFETIME_VALUE_LIMIT, min(LIFETIME_VALUE_LIMIT, value))


def _store(customer: Customer, insights: CustomerInsights, now: datetime) -> None:
    customer.lifetime_value = _bounded(insights.lifetime_value)
    customer.loyalty_score = insights.loyalty_score
    customer.loyalty_tier = insights.loyalty_tier
    customer.churn_risk = insights.churn_risk
    customer.segment = insights.segment
    customer.insights = insights.explanation
    customer.insights_updated_at = now
    # updated_at keeps meaning "the record was edited": written back
    # unchanged, so its onupdate default does not fire for derived figures.
    flag_modified(customer, "updated_at")


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return utcnow()
    if now.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
    return now


_CUSTOMERS = select(Customer).where(Customer.id.in_(bindparam("ids", expanding=True)))


def refresh_customers(session: Session, customer_ids: Iterable[int], now: datetime | None = None) -> None:
    """Recompute these customers' figures with the newest models; the caller commits.

    No model is fitted here: a customer's churn risk and segment stay NULL
    until `crm insights recompute` has fitted models.
    """
    now = _aware(now)
    ids = list(dict.fromkeys(customer_ids))
    if not ids:
        return
    settings, models = current_settings(), load_models(session)
    for start in range(0, len(ids), BATCH_SIZE):
        chunk = ids[start:start + BATCH_SIZE]
        scores = score_customers(load_histories(session, chunk, settings.currency), now, settings, models)
        for customer in session.scalars(_CUSTOMERS, {"ids": chunk}):
            _store(customer, scores[customer.id], now)


# --- fitting ----------------------------------------------------------------


@dataclass(frozen=True)
class PopulationFit:
    """The loyalty reference points and the share of customers who churned."""

    params: dict
    metrics: dict
    rows: int


@dataclass
class Training:
    """What one pass over the history fitted, and why anything was not."""

    cutoff: datetime
    churn_fit: churn.ChurnFit | None = None
    segment_fit: segments.SegmentFit | None = None
    population_fit: PopulationFit | None = None
    labelled: int = 0
    base_rate: float | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class _Collected:
    churn_rows: list[dict] = field(default_factory=list)
    labels: list[bool] = field(default_factory=list)
    vectors: list[list[float]] = field(default_factory=list)
    summaries: list[formulas.Rfm] = field(default_factory=list)


def _set_aside(session: Session, customer_id: int, error: BaseException) -> None:
    dead_letters.set_aside(session, source="insights", position=f"customer {customer_id}", error=error)


def _one_at_a_time(session: Session, customer_ids: list[int], work: Callable[[int], object]) -> list[int]:
    """Run ``work`` for each customer, committing each; set aside those it fails for (their ids).

    A database that is away ends the run as before: the next one tries again.
    """
    failed = []
    for customer_id in customer_ids:
        try:
            work(customer_id)
            session.commit()
        except Exception as error:  # noqa: BLE001  (one customer must not stop the run)
            session.rollback()
            if dead_letters.is_transient(error):
                raise
            _set_aside(session, customer_id, error)
            failed.append(customer_id)
    return failed


def _readable_histories(session: Session, currency: str) -> Iterator[dict[int, History]]:
    """Every customer's history a batch at a time; a customer whose rows cannot be read is left out (set aside)."""
    for ids in customer_id_batches(session):
        try:
            histories = load_histories(session, ids, currency)
        except Exception as error:  # noqa: BLE001
            session.rollback()
            if dead_letters.is_transient(error):
                raise
            histories = {}
            _one_at_a_time(session, ids, lambda customer_id: histories.update(load_histories(session, [customer_id], currency)))
        yield histories


def _collect(session: Session, now: datetime, cutoff: datetime, settings: InsightSettings) -> _Collected:
    collected = _Collected()
    for histories in _readable_histories(session, settings.currency):
        for customer_id, history in histories.items():
            try:
                row = churn.features(
                    history, cutoff, currency=settings.currency, churn_days=settings.churn_days, complaint_needs=settings.complaint_needs
                )
                label = churn.churned(history, cutoff, currency=settings.currency, churn_days=settings.churn_days) if row is not None else None
                summary = formulas.rfm(history.orders, now, settings.currency)
                vector = segments.vector(summary) if summary.has_orders else None
            except Exception as error:  # noqa: BLE001  (one customer's odd history must not stop the fit)
                _set_aside(session, customer_id, error)
                continue
            if row is not None:
                collected.churn_rows.append(row)
                collected.labels.append(label)
            if vector is not None:
                collected.summaries.append(summary)
                collected.vectors.append(vector)
    return collected


def _population_fit(collected: _Collected, base_rate: float | None, settings: InsightSettings) -> PopulationFit | None:
    if not collected.summaries:
        return None
    measures = {
        "recency_days": [summary.recency_days for summary in collected.summaries],
        "frequency": [summary.frequency for summary in collected.summaries],
        "monetary": [float(summary.monetary) for summary in collected.summaries],
    }
    params = {
        "currency": settings.currency,
        "cut_points": {name: formulas.reference_cut_points(values) for name, values in measures.items()},
        "window_churn": base_rate,
        "churn_days": settings.churn_days,
    }
    customers = len(collected.summaries)
    return PopulationFit(params=params, metrics={"customers": customers}, rows=customers)


def fit_models(session: Session, now: datetime | None = None) -> Training:
    """Fit the churn model, the segments and the loyalty reference points (nothing is saved)."""
    now, settings, stored = _aware(now), current_settings(), load_models(session)
    training = Training(cutoff=now - timedelta(days=settings.churn_days))
    collected = _collect(session, now, training.cutoff, settings)
    training.labelled = len(collected.labels)
    if collected.labels:
        training.base_rate = round(sum(collected.labels) / len(collected.labels), 4)
    # One thread: on a busy machine OpenMP threads made k-means some 20x slower.
    with threadpool_limits(limits=1):
        try:
            training.churn_fit = churn.fit(
                collected.churn_rows, collected.labels, churn_days=settings.churn_days, complaint_needs=settings.complaint_needs
            )
        except churn.NotEnoughHistory as error:
            outcome = "the previous model stays in use" if stored.churn is not None else "churn risk stays empty"
            training.problems.append(f"Churn model not trained: {error}; {outcome}.")
        try:
            training.segment_fit = segments.fit(collected.vectors)
        except segments.NotEnoughCustomers as error:
            outcome = "the previous segments stay in use" if stored.segments is not None else "segment stays empty"
            training.problems.append(f"Segments not fitted: {error}; {outcome}.")
    training.population_fit = _population_fit(collected, training.base_rate, settings)
    return training


def save_models(session: Session, training: Training, now: datetime | None = None) -> None:
    """Store what was fitted as the newest models (not committed)."""
    created_at = _aware(now)
    fitted = (("churn", training.churn_fit), ("segments", training.segment_fit), ("population", training.population_fit))
    for kind, fit in fitted:
        if fit is not None:
            session.add(InsightModel(kind=kind, params=fit.params, metrics=fit.metrics, trained_rows=fit.rows, created_at=created_at))
    session.flush()


def training_metrics(training: Training) -> dict:
    churn_metrics = training.churn_fit.metrics if training.churn_fit is not None else {}
    segment_metrics = training.segment_fit.metrics if training.segment_fit is not None else {}
    return {
        "churn_trained": training.churn_fit is not None,
        "auc": churn_metrics.get("auc"),
        "base_rate": training.base_rate,
        "labelled_customers": training.labelled,
        "test_rows": churn_metrics.get("test_rows"),
        "segments_trained": training.segment_fit is not None,
        "k": segment_metrics.get("k"),
        "silhouette": segment_metrics.get("silhouette"),
        "silhouette_by_k": segment_metrics.get("silhouette_by_k", {}),
        "segment_sizes": segment_metrics.get("sizes", {}),
    }


def _stored_metrics(session: Session) -> dict:
    models = load_models(session)
    churn_metrics = models.churn.metrics if models.churn is not None else {}
    segment_metrics = models.segments.metrics if models.segments is not None else {}
    return {
        "churn_trained": False,
        "auc": churn_metrics.get("auc"),
        "base_rate": churn_metrics.get("base_rate"),
        "segments_trained": False,
        "k": segment_metrics.get("k"),
        "silhouette": segment_metrics.get("silhouette"),
    }


def _counts(session: Session) -> dict:
    tiers = dict(session.execute(select(Customer.loyalty_tier, func.count()).group_by(Customer.loyalty_tier)).all())
    named = dict(session.execute(select(Customer.segment, func.count()).group_by(Customer.segment)).all())
    at_risk = session.scalar(select(func.count()).where(Customer.churn_risk >= HIGH_RISK))
    return {
        "tiers": {tier: tiers.get(tier, 0) for tier in LOYALTY_TIERS},
        "segments": {name: count for name, count in sorted(named.items(), key=lambda item: -item[1]) if name is not None},
        "high_churn_risk": at_risk,
    }


def refresh_all(
    session: Session, train: bool = True, now: datetime | None = None, should_stop: Callable[[], bool] | None = None
) -> dict:
    """Fit the models (when ``train``) and refresh every customer, committing per batch.

    Returns the figures of the models in use and counts: ``customers``,
    ``auc``, ``base_rate``, ``silhouette``, ``k``, ``tiers``, ``segments``,
    ``problems`` (why a model was not fitted), and ``interrupted`` when
    ``should_stop`` said to stop between two batches (those refreshed stay so).
    """
    now = _aware(now)
    problems: list[str] = []
    if train:
        training = fit_models(session, now)
        save_models(session, training, now)
        session.commit()
        metrics, problems = training_metrics(training), training.problems
    else:
        metrics = _stored_metrics(session)
    refreshed, interrupted, set_aside = 0, False, []
    for ids in customer_id_batches(session):
        if should_stop is not None and should_stop():
            interrupted = True
            break
        try:
            refresh_customers(session, ids, now)
            session.commit()
            refreshed += len(ids)
            continue
        except Exception as error:  # noqa: BLE001
            session.rollback()
            if dead_letters.is_transient(error):
                raise
        # One of them cannot be refreshed: one at a time, and that one set aside.
        failed = _one_at_a_time(session, ids, lambda customer_id: refresh_customers(session, [customer_id], now))
        refreshed += len(ids) - len(failed)
        set_aside += failed
    if set_aside:
        problems = [*problems, f"{len(set_aside)} customer(s) could not be refreshed and were set aside as dead letters."]
    return {
        **metrics,
        "customers": refreshed,
        **_counts(session),
        "problems": problems,
        "set_aside": len(set_aside),
        "interrupted": interrupted,
    }


# --- ticket priority --------------------------------------------------------


def _need_words(category: str) -> str:
    return category.replace("_", " ")


def ticket_priority(session: Session, customer: Customer, category: str | None) -> tuple[str, str | None]:
    """The priority of a new ticket of ``customer`` about ``category``, and why.

    Only complaint-like needs (setting INSIGHTS_COMPLAINT_NEEDS) are
    escalated: a Gold customer with churn risk >= 0.5 gets "urgent"; a Gold
    or Silver customer with risk >= 0.3, or anyone with risk >= 0.5, gets
    "high". Everything else is "normal" with no reason. A customer never
    scored is scored first.
    """
    if category is None or category not in current_settings().complaint_needs:
        return "normal", None
    if customer.insights_updated_at is None:
        refresh_customers(session, [customer.id])
    risk, tier = customer.churn_risk, customer.loyalty_tier
    if risk is None:
        return "normal", None
    if tier == "gold" and risk >= HIGH_RISK:
        priority = "urgent"
    elif (tier in ("gold", "silver") and risk >= AT_RISK) or risk >= HIGH_RISK:
        priority = "high"
    else:
        return "normal", None
    return priority, _priority_reason(customer, category, priority)


def _priority_reason(customer: Customer, category: str, priority: str) -> str:
    """E.g. "Urgent: a complaint about refund from a Gold customer at 62% churn risk (loyalty 94, lifetime value 1520.00 GBP)."""
    tier = f"{customer.loyalty_tier.capitalize()} " if customer.loyalty_tier else ""
    facts = [f"loyalty {customer.loyalty_score}"] if customer.loyalty_score is not None else []
    if customer.lifetime_value is not None:
        facts.append(f"lifetime value {customer.lifetime_value} {current_settings().currency}")
    details = f" ({', '.join(facts)})" if facts else ""
    return (
        f"{priority.capitalize()}: a complaint about {_need_words(category)} from a {tier}customer "
        f"at {customer.churn_risk:.0%} churn risk{details}."
    )
