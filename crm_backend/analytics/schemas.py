"""Query parameters and response bodies of /api/v1/analytics."""

from datetime import date, datetime, timezone

from apiflask import Schema
from apiflask.fields import Date, DateTime, Float, Integer, List, Nested, String
from apiflask.validators import OneOf, Range
from marshmallow import ValidationError, validates_schema

from ..schemas import QuerySchema
from .queries import CSAT_GROUPS, Period, monday_of

DEFAULT_WEEKS = 12
MAX_WEEKS = 156  # three years: a bound on the rows a report can have
FORMATS = ("json", "csv")
# Far enough back for any history, and a bound that keeps date arithmetic safe.
EARLIEST, LATEST = date(1970, 1, 1), date(2999, 12, 31)


def today() -> date:
    return datetime.now(timezone.utc).date()


def _format_field() -> String:
    return String(
        load_default="json",
        validate=OneOf(FORMATS),
        metadata={"description": "`csv` for a CSV file (as does `Accept: text/csv`)."},
    )


class FormatQuery(QuerySchema):
    format = _format_field()


class PeriodQuery(QuerySchema):
    since = Date(
        validate=Range(EARLIEST, LATEST),
        metadata={"description": "First day (UTC) of the period; default: the Monday `weeks` weeks back."},
    )
    until = Date(validate=Range(EARLIEST, LATEST), metadata={"description": "Last day (UTC), included; default: today."})
    weeks = Integer(
        validate=Range(1, MAX_WEEKS),
        metadata={"description": f"Without `since`: this week and the ones before it (default {DEFAULT_WEEKS})."},
    )
    format = _format_field()

    @validates_schema(skip_on_field_errors=True)
    def _one_period(self, data, **kwargs):
        if "since" in data and "weeks" in data:
            raise ValidationError("Give since or weeks, not both.", "weeks")
        period = period_of(data)
        if period.since > period.until:
            raise ValidationError("until is before since.", "until")
        if (period.until - monday_of(period.since)).days >= MAX_WEEKS * 7:
            raise ValidationError(f"The period is longer than {MAX_WEEKS} weeks.", "since")


def period_of(query: dict) -> Period:
    until = query.get("until") or today()
    if "since" in query:
        return Period(query["since"], until)
    return Period.last_weeks(query.get("weeks", DEFAULT_WEEKS), today=until)


class CsatQuery(PeriodQuery):
    by = String(
        load_default="week",
        validate=OneOf(CSAT_GROUPS),
        metadata={"description": "Group by the week, the need category, the agent or the channel."},
    )


class ChurnRiskQuery(FormatQuery):
    limit = Integer(load_default=20, validate=Range(1, 100), metadata={"description": "How many customers."})


class _Report(Schema):
    columns = List(String(), required=True, metadata={"description": "The rows' fields, in the CSV's order."})


class _PeriodReport(_Report):
    since = Date(required=True)
    until = Date(required=True)


class CsatRow(Schema):
    week = Date(metadata={"description": "Monday of the week (by=week)."})
    category = String(metadata={"description": "The need the score is about (by=category)."})
    agent = String(metadata={"description": "The agent who handled the conversation (by=agent)."})
    agent_email = String(allow_none=True)
    channel = String(metadata={"description": "by=channel"})
    responses = Integer(required=True)
    satisfied = Integer(required=True, metadata={"description": "Scores of 4 or 5."})
    csat = Float(required=True, allow_none=True, metadata={"description": "satisfied / responses (0-1)."})
    mean_score = Float(required=True, allow_none=True)


class CsatReport(_PeriodReport):
    by = String(required=True)
    rows = List(Nested(CsatRow), required=True)


class NeedRow(Schema):
    category = String(required=True)
    tickets = Integer(required=True)
    share = Float(required=True, allow_none=True)


class NeedsReport(_PeriodReport):
    rows = List(Nested(NeedRow), required=True)


class NeedWeekRow(Schema):
    week = Date(required=True)
    category = String(required=True)
    tickets = Integer(required=True)


class NeedsTrendReport(_PeriodReport):
    rows = List(Nested(NeedWeekRow), required=True)


class ContainmentRow(Schema):
    week = Date(required=True)
    conversations = Integer(required=True, metadata={"description": "Conversations in which the customer wrote."})
    contained = Integer(required=True, metadata={"description": "... and that no person had to take."})
    handed_off = Integer(required=True)
    containment_rate = Float(required=True, allow_none=True, metadata={"description": "contained / conversations."})


class ContainmentReport(_PeriodReport):
    rows = List(Nested(ContainmentRow), required=True)


def _seconds(description: str) -> Float:
    return Float(required=True, allow_none=True, metadata={"description": description})


class HandoffTimesRow(Schema):
    week = Date(required=True)
    handoffs = Integer(required=True, metadata={"description": "Requests for a person made that week."})
    claimed = Integer(required=True)
    resolved = Integer(required=True, metadata={"description": "Claimed and resolved (have a handle time)."})
    wait_p50_seconds = _seconds("Median time from the request to an agent's claim.")
    wait_p90_seconds = _seconds("90th percentile of the same.")
    wait_mean_seconds = _seconds("Mean of the same.")
    handle_p50_seconds = _seconds("Median time from the claim to the resolution.")
    handle_p90_seconds = _seconds("90th percentile of the same.")
    handle_mean_seconds = _seconds("Mean of the same.")


class HandoffTimesReport(_PeriodReport):
    rows = List(Nested(HandoffTimesRow), required=True)


class _MixRow(Schema):
    customers = Integer(required=True)
    share = Float(required=True, allow_none=True)
    lifetime_value = Float(required=True, metadata={"description": "Their lifetime value, summed."})
    average_churn_risk = Float(required=True, allow_none=True)


class TierRow(_MixRow):
    tier = String(required=True, metadata={"description": "gold, silver, bronze, or `not scored`."})


class SegmentRow(_MixRow):
    segment = String(required=True)


class TiersReport(_Report):
    rows = List(Nested(TierRow), required=True)


class SegmentsReport(_Report):
    rows = List(Nested(SegmentRow), required=True)


class ChurnRiskRow(Schema):
    customer_id = Integer(required=True)
    name = String(required=True)
    email = String(required=True)
    churn_risk = Float(required=True, metadata={"description": "0-1, from the latest churn model."})
    loyalty_tier = String(required=True, allow_none=True)
    segment = String(required=True, allow_none=True)
    lifetime_value = Float(
        required=True, allow_none=True, metadata={"description": "What they are still expected to spend (CLV)."}
    )
    spent_to_date = Float(
        required=True, allow_none=True, metadata={"description": "What they have spent so far, net of refunds."}
    )
    last_order_at = DateTime(required=True, allow_none=True)
    open_tickets = Integer(required=True)


class ChurnRiskReport(_Report):
    rows = List(Nested(ChurnRiskRow), required=True)


class SummaryRow(Schema):
    since = Date(required=True)
    until = Date(required=True)
    tickets = Integer(required=True)
    responses = Integer(required=True)
    csat = Float(required=True, allow_none=True)
    conversations = Integer(required=True)
    containment_rate = Float(required=True, allow_none=True)
    handoffs = Integer(required=True)
    wait_p50_seconds = Float(required=True, allow_none=True)
    wait_p90_seconds = Float(required=True, allow_none=True)
    handle_p50_seconds = Float(required=True, allow_none=True)
    handle_p90_seconds = Float(required=True, allow_none=True)


class SummaryReport(_PeriodReport):
    rows = List(Nested(SummaryRow), required=True)
