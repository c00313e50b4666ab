"""/console/dashboard: the support reports page, and each chart's table as CSV.

The page is rendered on the server with every table in it (an HTML table
behind each chart, and the same rows as JSON in a ``<script
type="application/json">`` block, which the CSP allows as it is never run);
``static/dashboard.js`` (Chart.js, bundled from ``frontend/``) draws the
charts from those blocks. The tables come from crm_backend/analytics, the
same functions as /api/v1/analytics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial

from flask import abort, current_app, render_template, request
from sqlalchemy.orm import Session

from ..analytics import queries
from ..analytics.export import csv_response
from ..analytics.queries import Period, Table
from ..db import get_session
from .views import STATIC, bp

RANGES = (4, 12, 26, 52)  # weeks the range control offers
DEFAULT_RANGE = 12
CHURN_LIST_LENGTH = 20
# Where the churn list's risk badge turns amber, then red.
RISK_LEVELS = ((0.7, "high"), (0.4, "medium"))
BUNDLE = "dashboard.js"


@dataclass(frozen=True)
class Report:
    name: str  # the CSV's name and the ids on the page
    title: str
    about: str  # what it shows, in a sentence
    chart: str  # how dashboard.js draws it
    compute: Callable[[Session, Period], Table]
    empty: str  # said instead of a chart when there is nothing to show
    has_data: Callable[[Table], bool] = lambda table: bool(table.rows)


def _any(column: str) -> Callable[[Table], bool]:
    return lambda table: any(row.get(column) for row in table.rows)


def _snapshot(compute: Callable[[Session], Table]) -> Callable[[Session, Period], Table]:
    return lambda session, period: compute(session)


REPORTS = (
    Report(
        "needs-trend", "Ticket volume by need", "Tickets opened each week, by the need the classifier read in them.",
        "needs-trend", queries.needs_trend, "No tickets were opened in this period.", _any("tickets"),
    ),
    Report(
        "needs", "Needs in this period", "Share of the period's tickets per need.",
        "needs", queries.needs, "No tickets were opened in this period.",
    ),
    Report(
        "csat-by-week", "Satisfaction (CSAT)", "Share of scores of 4 or 5 out of 5, each week; bars: how many scores.",
        "csat-trend", partial(queries.csat, by="week"), "No feedback in this period.", _any("responses"),
    ),
    Report(
        "containment", "Bot containment", "Share of conversations the assistant handled without a person, each week.",
        "containment", queries.containment, "No conversations in this period.", _any("conversations"),
    ),
    Report(
        "handoff-times", "Handoff times", "Wait: from asking for a person to an agent's claim. Handling: from the claim to the "
        "resolution. Median (p50) and 90th percentile (p90) per week of the request.",
        "handoff-times", queries.handoff_times, "No handoffs were claimed in this period.", _any("claimed"),
    ),
    Report(
        "csat-by-category", "CSAT by need", "Share of scores of 4 or 5 per need.",
        "csat-bars", partial(queries.csat, by="category"), "No feedback in this period.",
    ),
    Report(
        "csat-by-agent", "CSAT by agent", "Share of scores of 4 or 5 per agent who handled the conversation.",
        "csat-bars", partial(queries.csat, by="agent"), "No feedback in this period.",
    ),
    Report(
        "csat-by-channel", "CSAT by channel", "Share of scores of 4 or 5 per channel.",
        "csat-bars", partial(queries.csat, by="channel"), "No feedback in this period.",
    ),
    Report(
        "tiers", "Loyalty tiers", "Customers per loyalty tier today, with their lifetime value.",
        "mix", _snapshot(queries.tiers), "No customers yet.",
    ),
    Report(
        "segments", "Customer segments", "Customers per segment today, with their lifetime value.",
        "mix", _snapshot(queries.segments), "No customers yet.",
    ),
    Report(
        "churn-risk", "Customers most at risk of leaving", "The churn model's highest risks today: reach out before they go.",
        "list", _snapshot(partial(queries.churn_risk, limit=CHURN_LIST_LENGTH)),
        "No churn risks are computed yet (crm insights recompute computes them).",
    ),
)
REPORTS_BY_NAME = {report.name: report for report in REPORTS}


def _weeks() -> int:
    weeks = request.args.get("weeks", type=int)
    return weeks if weeks in RANGES else DEFAULT_RANGE


@bp.get("/dashboard")
def dashboard():
    period = Period.last_weeks(_weeks())
    session = get_session()
    sections = []
    for report in REPORTS:
        table = report.compute(session, period)
        sections.append(
            {"report": report, "table": table, "has_data": report.has_data(table), "data": chart_data(table)}
        )
    return render_template(
        "console/dashboard.html",
        period=period,
        weeks=_weeks(),
        ranges=RANGES,
        summary=queries.summary(session, period).rows[0],
        sections={section["report"].name: section for section in sections},
        currency=current_app.config["INSIGHTS_CURRENCY"],
        charts_built=(STATIC / BUNDLE).exists(),
        needs_by_week=needs_by_week,
    )


@bp.get("/dashboard/<name>.csv")
def dashboard_csv(name: str):
    report = REPORTS_BY_NAME.get(name)
    if report is None:
        abort(404, f"There is no table {name!r} on the dashboard.")
    period = Period.last_weeks(_weeks())
    return csv_response(report.compute(get_session(), period), f"{name}_{period.since}_{period.until}")


# --- How the tables read on the page ------------------------------------------

HEADINGS = {
    "week": "Week of",
    "responses": "Scores",
    "satisfied": "4 or 5",
    "csat": "CSAT",
    "mean_score": "Mean score",
    "agent_email": "E-mail",
    "containment_rate": "Containment",
    "handed_off": "Handed off",
    "lifetime_value": "Lifetime value",
    "average_churn_risk": "Mean churn risk",
    "churn_risk": "Churn risk",
    "loyalty_tier": "Tier",
    "last_order_at": "Last order",
    "open_tickets": "Open tickets",
}
SHARES = frozenset({"share", "csat", "containment_rate", "churn_risk", "average_churn_risk"})


@bp.app_template_filter("report_heading")
def report_heading(column: str) -> str:
    if column.endswith("_seconds"):
        kind, stat, _ = column.split("_")
        return f"{'Wait' if kind == 'wait' else 'Handling'} {'mean' if stat == 'mean' else stat}"
    return HEADINGS.get(column) or column.replace("_", " ").capitalize()


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


@bp.app_template_filter("report_cell")
def report_cell(value: object, column: str, currency: str = "GBP") -> str:
    """A table cell as people read it: 76.3%, 4 min, £1,520, 9 Nov 2026, Order status."""
    from .views import console_duration, console_label, console_money

    if value is None:
        return "–"
    if column in SHARES:
        return _percent(value)
    if column.endswith("_seconds"):
        return console_duration(value)
    if column in ("lifetime_value", "spent_to_date"):
        return console_money(value, currency)
    if isinstance(value, date):  # and datetime
        return value.strftime("%d %b %Y").lstrip("0")
    if column in ("category", "tier", "loyalty_tier", "segment", "channel"):
        return console_label(str(value))
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@bp.app_template_filter("risk_level")
def risk_level(churn_risk: float) -> str:
    return next((level for threshold, level in RISK_LEVELS if churn_risk >= threshold), "low")


def chart_data(table: Table) -> dict:
    """The table for dashboard.js, dates as ISO strings."""

    def plain(value: object) -> object:
        return value.isoformat() if isinstance(value, (date, datetime)) else value

    return {"columns": list(table.columns), "rows": [{key: plain(value) for key, value in row.items()} for row in table.rows]}


def needs_by_week(table: Table) -> tuple[list[str], list[tuple[date, list[int], int]]]:
    """The long needs-trend table as weeks × needs, for the page's table."""
    categories = list(dict.fromkeys(row["category"] for row in table.rows))
    weeks: dict[date, dict[str, int]] = {}
    for row in table.rows:
        weeks.setdefault(row["week"], {})[row["category"]] = row["tickets"]
    return categories, [
        (week, [counts.get(category, 0) for category in categories], sum(counts.values())) for week, counts in weeks.items()
    ]
