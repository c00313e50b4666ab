"""Customer-value formulas: plain functions of a customer's orders, no database.

docs/insights.md shows each with a worked example. Money is the net amount
(amount less refunds) of orders in one currency (setting INSIGHTS_CURRENCY);
orders in other currencies are left out rather than converted at a guessed rate.
"""

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

DAYS_PER_YEAR = 365.25
# A fully refunded or a cancelled order was not a purchase the customer kept.
COUNTED_ORDER_STATUSES = ("placed", "paid", "fulfilled", "partially_refunded")
GOLD_FROM, SILVER_FROM = 90, 70
# Loyalty references: the population's percentiles 0, 1, ..., 100 of each of R, F and M.
REFERENCE_LEVELS = 101
CENT = Decimal("0.01")


class OrderLike(Protocol):
    """An Order row, or anything with its fields (the tests use a dataclass)."""

    amount: Decimal
    refunded_amount: Decimal
    currency: str
    status: str
    ordered_at: datetime


@dataclass(frozen=True)
class Rfm:
    """Recency, frequency and monetary value of a customer's counted orders at a moment."""

    recency_days: float | None  # since the last order; None without orders
    frequency: int  # number of orders
    monetary: Decimal  # total net amount
    tenure_days: float | None  # since the first order; None without orders

    @property
    def has_orders(self) -> bool:
        return self.frequency > 0


def counts(order: OrderLike, currency: str) -> bool:
    """Whether an order takes part in the figures: the right currency and a kept status."""
    return order.currency == currency and order.status in COUNTED_ORDER_STATUSES


def _days(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 86400


def rfm(orders: Iterable[OrderLike], now: datetime, currency: str) -> Rfm:
    """RFM of the counted orders placed before ``now`` (later ones are ignored)."""
    kept = [order for order in orders if counts(order, currency) and order.ordered_at < now]
    if not kept:
        return Rfm(recency_days=None, frequency=0, monetary=Decimal("0"), tenure_days=None)
    dates = [order.ordered_at for order in kept]
    return Rfm(
        recency_days=_days(now, max(dates)),
        frequency=len(kept),
        monetary=sum((order.amount - order.refunded_amount for order in kept), Decimal("0")),
        tenure_days=_days(now, min(dates)),
    )


def annual_revenue(summary: Rfm) -> float:
    """A: average net revenue per year over the customer's tenure, at least one year.

    A = M / max(tenure in years, 1). The floor keeps a first order placed
    last week from being annualised fifty-fold.
    """
    if not summary.has_orders:
        return 0.0
    return float(summary.monetary) / max(summary.tenure_days / DAYS_PER_YEAR, 1.0)


def yearly_retention(window_churn: float, churn_days: int) -> float:
    """s: the chance of still buying a year on, from the chance of churning within ``churn_days``.

    s = (1 - p) ** (365.25 / churn_days): churning in one window is taken
    to be independent of the others (a geometric lifetime).
    """
    if not 0 <= window_churn <= 1:
        raise ValueError(f"a churn probability is between 0 and 1, not {window_churn}")
    return (1.0 - window_churn) ** (DAYS_PER_YEAR / churn_days)


def lifetime_value(revenue_per_year: float, retention: float, discount_rate: float, horizon_years: int) -> Decimal:
    """CLV = sum over t = 1..H of R_t / (1 + r)^t with R_t = A * s^t, in whole cents.

    A is ``revenue_per_year`` (see ``annual_revenue``), s the yearly
    ``retention``, r the yearly ``discount_rate`` and H ``horizon_years``.
    """
    value = sum(
        revenue_per_year * retention**year / (1 + discount_rate) ** year for year in range(1, horizon_years + 1)
    )
    return Decimal(repr(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def reference_cut_points(values: Sequence[float]) -> list[float]:
    """The population's percentiles 0..100 of one measure (linear interpolation)."""
    if not values:
        raise ValueError("no values to take percentiles of")
    ordered = sorted(float(value) for value in values)
    last = len(ordered) - 1
    points = []
    for level in range(REFERENCE_LEVELS):
        position = last * level / (REFERENCE_LEVELS - 1)
        below = math.floor(position)
        above = min(below + 1, last)
        points.append(ordered[below] + (ordered[above] - ordered[below]) * (position - below))
    return points


def percentile_score(value: float, cut_points: Sequence[float]) -> float:
    """0-100: the share of the (sorted) cut points below ``value``, counting those equal to it as half.

    Counting ties as half keeps a value most customers share (one order, say)
    in the middle instead of at the bottom or the top.
    """
    below = bisect_left(cut_points, value)  # cut points are sorted
    equal = bisect_right(cut_points, value) - below
    return 100.0 * (below + equal / 2) / len(cut_points)


def round_half_up(value: float) -> int:
    return int(Decimal(repr(value)).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class LoyaltyParts:
    recency: float
    frequency: float
    monetary: float

    @property
    def score(self) -> int:
        """The loyalty score: the mean of the three parts, rounded half up."""
        return round_half_up((self.recency + self.frequency + self.monetary) / 3)


def loyalty_parts(summary: Rfm, references: dict[str, Sequence[float]]) -> LoyaltyParts:
    """Each of R, F, M scored 0-100 against the population's cut points.

    Recency is reversed (a recent order scores high). A customer without
    orders scores 0 on all three.
    """
    if not summary.has_orders:
        return LoyaltyParts(0.0, 0.0, 0.0)
    return LoyaltyParts(
        recency=100.0 - percentile_score(summary.recency_days, references["recency_days"]),
        frequency=percentile_score(summary.frequency, references["frequency"]),
        monetary=percentile_score(float(summary.monetary), references["monetary"]),
    )


def loyalty_tier(score: int) -> str:
    """gold from 90, silver from 70, bronze below."""
    if score >= GOLD_FROM:
        return "gold"
    if score >= SILVER_FROM:
        return "silver"
    return "bronze"
