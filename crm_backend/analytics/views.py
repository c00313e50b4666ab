"""GET /api/v1/analytics/...: the dashboard's tables as JSON, or CSV with ?format=csv or Accept: text/csv."""

from apiflask import APIBlueprint
from flask import request

from ..auth import require_scopes
from ..db import get_session
from . import queries, schemas
from .export import csv_response
from .queries import Period, Table

bp = APIBlueprint("analytics", __name__, url_prefix="/api/v1/analytics", tag="Analytics")

SCOPE = "analytics:read"
CSV_RESPONSE = {
    "description": "The report; the same rows as CSV with `?format=csv` or `Accept: text/csv`.",
    "content": {"text/csv": {"schema": {"type": "string"}}},
}
RESPONSES = {200: CSV_RESPONSE, 403: "Missing scope", 422: "Bad parameters"}


def wants_csv(query: dict) -> bool:
    if query.get("format") == "csv":
        return True
    return request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"


def _report(name: str, table: Table, query: dict, period: Period | None = None, **extra):
    if wants_csv(query):
        dates = f"_{period.since}_{period.until}" if period is not None else ""
        return csv_response(table, f"{name}{dates}")
    body = {"columns": list(table.columns), "rows": table.rows, **extra}
    if period is not None:
        body.update(since=period.since, until=period.until)
    return body


def _period_report(name: str, query: dict, compute):
    period = schemas.period_of(query)
    return _report(name, compute(get_session(), period), query, period)


@bp.get("/csat")
@require_scopes(SCOPE)
@bp.input(schemas.CsatQuery, location="query", arg_name="query")
@bp.output(schemas.CsatReport)
@bp.doc(summary="Satisfaction (CSAT = share of scores ≥ 4) by week, need, agent or channel", responses=RESPONSES)
def csat(query):
    period = schemas.period_of(query)
    table = queries.csat(get_session(), period, by=query["by"])
    return _report(f"csat-by-{query['by']}", table, query, period, by=query["by"])


@bp.get("/needs")
@require_scopes(SCOPE)
@bp.input(schemas.PeriodQuery, location="query", arg_name="query")
@bp.output(schemas.NeedsReport)
@bp.doc(summary="Tickets of the period by classified need, most frequent first", responses=RESPONSES)
def needs(query):
    return _period_report("needs", query, queries.needs)


@bp.get("/needs/trend")
@require_scopes(SCOPE)
@bp.input(schemas.PeriodQuery, location="query", arg_name="query")
@bp.output(schemas.NeedsTrendReport)
@bp.doc(summary="Tickets per week and need (every week of the period, every need seen in it)", responses=RESPONSES)
def needs_trend(query):
    return _period_report("needs-trend", query, queries.needs_trend)


@bp.get("/containment")
@require_scopes(SCOPE)
@bp.input(schemas.PeriodQuery, location="query", arg_name="query")
@bp.output(schemas.ContainmentReport)
@bp.doc(summary="Bot containment per week: conversations no person had to take", responses=RESPONSES)
def containment(query):
    return _period_report("containment", query, queries.containment)


@bp.get("/handoff-times")
@require_scopes(SCOPE)
@bp.input(schemas.PeriodQuery, location="query", arg_name="query")
@bp.output(schemas.HandoffTimesReport)
@bp.doc(summary="Handoff wait (request → claim) and handle (claim → resolve) times per week", responses=RESPONSES)
def handoff_times(query):
    return _period_report("handoff-times", query, queries.handoff_times)


@bp.get("/summary")
@require_scopes(SCOPE)
@bp.input(schemas.PeriodQuery, location="query", arg_name="query")
@bp.output(schemas.SummaryReport)
@bp.doc(summary="The period's headline figures in one row", responses=RESPONSES)
def summary(query):
    return _period_report("summary", query, queries.summary)


@bp.get("/tiers")
@require_scopes(SCOPE)
@bp.input(schemas.FormatQuery, location="query", arg_name="query")
@bp.output(schemas.TiersReport)
@bp.doc(summary="Customers by loyalty tier now, with their lifetime value", responses=RESPONSES)
def tiers(query):
    return _report("tiers", queries.tiers(get_session()), query)


@bp.get("/segments")
@require_scopes(SCOPE)
@bp.input(schemas.FormatQuery, location="query", arg_name="query")
@bp.output(schemas.SegmentsReport)
@bp.doc(summary="Customers by segment now, with their lifetime value", responses=RESPONSES)
def segments(query):
    return _report("segments", queries.segments(get_session()), query)


@bp.get("/churn-risk")
@require_scopes(SCOPE)
@bp.input(schemas.ChurnRiskQuery, location="query", arg_name="query")
@bp.output(schemas.ChurnRiskReport)
@bp.doc(summary="The customers most likely to leave, with tier, segment, value, last order and open tickets", responses=RESPONSES)
def churn_risk(query):
    return _report("churn-risk", queries.churn_risk(get_session(), limit=query["limit"]), query)
