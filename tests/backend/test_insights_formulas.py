"""The customer-value formulas, against cases worked out by hand (docs/insights.md)."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from crm_backend.insights import formulas
from crm_backend.insights.history import OrderFact

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def order(day: str, amount: str, refunded: str = "0", currency: str = "GBP", status: str = "paid") -> OrderFact:
    return OrderFact(Decimal(amount), Decimal(refunded), currency, status, datetime.fromisoformat(day).replace(tzinfo=timezone.utc))


def test_rfm_counts_net_amounts_of_kept_orders_in_the_currency_before_now():
    orders = [
        order("2025-01-01", "100.00"),
        order("2025-07-01", "50.00", refunded="20.00", status="partially_refunded"),
        order("2025-12-01", "30.00", refunded="30.00", status="refunded"),  # not kept
        order("2025-11-01", "999.00", currency="EUR"),  # another currency
        order("2026-02-01", "70.00"),  # after now
    ]

    summary = formulas.rfm(orders, NOW, "GBP")

    assert summary.frequency == 2
    assert summary.monetary == Decimal("130.00")
    assert summary.recency_days == 184  # 1 July to 1 January
    assert summary.tenure_days == 365


def test_cancelled_orders_count_towards_nothing():
    kept = order("2025-06-01", "100.00", status="fulfilled")
    cancelled = order("2025-12-01", "500.00", status="cancelled")

    with_cancelled = formulas.rfm([kept, cancelled], NOW, "GBP")

    assert with_cancelled == formulas.rfm([kept], NOW, "GBP")
    assert (with_cancelled.frequency, with_cancelled.monetary) == (1, Decimal("100.00"))
    assert not formulas.counts(cancelled, "GBP")


def test_rfm_of_a_customer_without_orders_is_empty():
    summary = formulas.rfm([order("2025-11-01", "10.00", currency="EUR")], NOW, "GBP")

    assert (summary.recency_days, summary.frequency, summary.monetary, summary.tenure_days) == (None, 0, 0, None)
    assert not summary.has_orders


def test_annual_revenue_spreads_spend_over_the_tenure_but_at_least_one_year():
    two_years = formulas.Rfm(recency_days=10, frequency=3, monetary=Decimal("300"), tenure_days=2 * 365.25)
    one_month = formulas.Rfm(recency_days=2, frequency=1, monetary=Decimal("130"), tenure_days=30)

    assert formulas.annual_revenue(two_years) == pytest.approx(150.0)
    assert formulas.annual_revenue(one_month) == pytest.approx(130.0)


@pytest.mark.parametrize(
    ("revenue", "retention", "rate", "years", "expected"),
    [
        # 100/1.1 + 100/1.21 + 100/1.331 = 90.909 + 82.645 + 75.131
        (100.0, 1.0, 0.10, 3, "248.69"),
        # 50/1.1 + 25/1.21 + 12.5/1.331 = 45.455 + 20.661 + 9.391
        (100.0, 0.5, 0.10, 3, "75.51"),
        # one year, no discounting: the revenue times the retention
        (100.0, 0.8, 0.0, 1, "80.00"),
        (0.0, 0.9, 0.10, 3, "0.00"),
    ],
)
def test_lifetime_value_is_the_discounted_sum_of_retained_yearly_revenue(revenue, retention, rate, years, expected):
    assert formulas.lifetime_value(revenue, retention, rate, years) == Decimal(expected)


def test_yearly_retention_compounds_the_churn_window_over_a_year():
    assert formulas.yearly_retention(0.5, 365.25) == pytest.approx(0.5)
    assert formulas.yearly_retention(0.19, 182.625) == pytest.approx(0.81**2)  # two half-year windows
    assert formulas.yearly_retention(0.0, 180) == 1.0


def test_yearly_retention_refuses_a_probability_outside_0_to_1():
    with pytest.raises(ValueError):
        formulas.yearly_retention(1.5, 180)


def test_reference_cut_points_are_the_percentiles_0_to_100():
    points = formulas.reference_cut_points([100, 0])

    assert len(points) == 101
    assert points[0] == 0 and points[50] == 50 and points[100] == 100
    assert formulas.reference_cut_points([7]) == [7.0] * 101


def test_percentile_score_counts_ties_as_half():
    cut_points = [1, 1, 1, 2]

    assert formulas.percentile_score(0, cut_points) == 0
    assert formulas.percentile_score(1, cut_points) == 37.5  # (0 + 3/2) / 4
    assert formulas.percentile_score(2, cut_points) == 87.5  # (3 + 1/2) / 4
    assert formulas.percentile_score(3, cut_points) == 100


REFERENCES = {
    "recency_days": [float(day) for day in range(101)],
    "frequency": [1.0] * 51 + [2.0] * 50,
    "monetary": [10.0 * step for step in range(101)],
}


def test_loyalty_score_averages_recency_frequency_and_monetary_percentiles():
    summary = formulas.Rfm(recency_days=10, frequency=2, monetary=Decimal("900"), tenure_days=400)

    parts = formulas.loyalty_parts(summary, REFERENCES)

    assert parts.recency == pytest.approx(100 - 100 * 10.5 / 101)  # 89.60: 10 points below, 1 equal, reversed
    assert parts.frequency == pytest.approx(100 * 76 / 101)  # 75.25: 51 below, 50 equal
    assert parts.monetary == pytest.approx(100 * 90.5 / 101)  # 89.60: 90 below, 1 equal
    assert parts.score == 85  # (89.60 + 75.25 + 89.60) / 3 = 84.82
    assert formulas.loyalty_tier(parts.score) == "silver"


def test_loyalty_score_of_a_customer_without_orders_is_zero():
    summary = formulas.rfm([], NOW, "GBP")

    assert formulas.loyalty_parts(summary, REFERENCES).score == 0


def test_loyalty_score_rounds_half_up():
    assert formulas.LoyaltyParts(88.5, 88.5, 88.5).score == 89
    assert formulas.LoyaltyParts(89.4, 89.4, 89.4).score == 89


@pytest.mark.parametrize(
    ("score", "tier"),
    [(100, "gold"), (90, "gold"), (89, "silver"), (70, "silver"), (69, "bronze"), (0, "bronze")],
)
def test_tiers_are_gold_from_90_and_silver_from_70(score, tier):
    assert formulas.loyalty_tier(score) == tier
