"""The tables behind the console's dashboard and /api/v1/analytics.

One function per table; each returns a ``Table`` (column names in order and
one dict per row) for a ``Period`` of whole days in UTC. Weeks start on
Monday and are named by that Monday's date.

Counting happens in the database, grouped by a CASE over the period's week
boundaries, so that SQLite and PostgreSQL give the same answer without
date functions of their own. Percentiles of handoff times have no portable
SQL, so only the period's three timestamps per handoff are read and the
percentiles taken in Python.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import ColumnElement, and_, case, func, literal, select
from sqlalchemy.orm import Session

from ..models import LOYALTY_TIERS, Agent, Conversation, Customer, Feedback, Handoff, Order, Ticket

SATISFIED_SCORE = 4  # CSAT: the share of scores of 4 and 5
OPEN_TICKET_STATUSES = ("open", "pending", "on_hold")
CSAT_GROUPS = ("week", "category", "agent", "channel")
UNCLASSIFIED = "unclassified"
NO_AGENT = "Assistant only"  # scores of conversations no person handled
NOT_SCORED = "not scored"  # customers whose insights are not computed yet


@dataclass(frozen=True)
class Period:
    """Whole days from ``since`` to ``until``, both included (UTC)."""

    since: date
    until: date

    @classmethod
    def last_weeks(cls, weeks: int, today: date | None = None) -> Period:
        """This week and the ``weeks - 1`` before it, up to today."""
        today = today or datetime.now(timezone.utc).date()
        return cls(monday_of(today) - timedelta(weeks=weeks - 1), today)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.since, time.min, tzinfo=timezone.utc)

    @property
    def end(self) -> datetime:
        """The first moment after the period."""
        return datetime.combine(self.until + timedelta(days=1), time.min, tzinfo=timezone.utc)

    def weeks(self) -> list[date]:
        """The Monday of every week the period touches, oldest first."""
        first, last = monday_of(self.since), monday_of(self.until)
        return [first + timedelta(weeks=n) for n in range((last - first).days // 7 + 1)]

    def contains(self, column) -> ColumnElement[bool]:
        return and_(column >= self.start, column < self.end)


@dataclass
class Table:
    columns: tuple[str, ...]
    rows: list[dict]


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_index(column, period: Period) -> ColumnElement[int]:
    """The week (0 = the period's first) a timestamp of the period falls in, as SQL."""
    weeks = period.weeks()
    boundaries = [datetime.combine(monday, time.min, tzinfo=timezone.utc) for monday in weeks[1:]]
    if not boundaries:
        return literal(0)
    return case(*[(column < boundary, index) for index, boundary in enumerate(boundaries)], else_=len(boundaries))


def share(part: int | float, whole: int | float) -> float | None:
    return round(part / whole, 4) if whole else None


def rounded(value, places: int = 2) -> float | None:
    return None if value is None else round(float(value), places)


# --- Satisfaction ------------------------------------------------------------


def _csat_values(responses: int, satisfied: int, mean) -> dict:
    return {"responses": responses, "satisfied": satisfied, "csat": share(satisfied, responses), "mean_score": rounded(mean)}


CSAT_COLUMNS = ("responses", "satisfied", "csat", "mean_score")


def _csat_group(by: str, period: Period):
    if by == "week":
        return week_index(Feedback.created_at, period)
    if by == "category":
        # The need the score is about: its comment's, else the handed-off conversation's.
        return func.coalesce(Feedback.category, Handoff.category, UNCLASSIFIED)
    if by == "agent":
        return Feedback.agent_id
    if by == "channel":
        return Feedback.channel
    raise ValueError(f"CSAT cannot be grouped by {by!r}; choose one of {', '.join(CSAT_GROUPS)}")


def _csat_counts(session: Session, period: Period, by: str) -> dict:
    group = _csat_group(by, period).label("grouped")
    satisfied = func.sum(case((Feedback.score >= SATISFIED_SCORE, 1), else_=0))
    query = (
        select(group, func.count(Feedback.id), satisfied, func.avg(Feedback.score))
        .select_from(Feedback)
        .where(period.contains(Feedback.created_at))
        .group_by(group)
    )
    if by == "category":
        query = query.outerjoin(Handoff, Feedback.handoff_id == Handoff.id)
    return {key: (count, int(happy or 0), mean) for key, count, happy, mean in session.execute(query)}


def _busiest_first(found: dict) -> list:
    return sorted(found.items(), key=lambda item: (-item[1][0], str(item[0])))


def csat(session: Session, period: Period, by: str = "week") -> Table:
    """Scores in the period: responses, satisfied (score ≥ 4), their share and the mean score."""
    found = _csat_counts(session, period, by)
    if by == "week":
        rows = [{"week": monday, **_csat_values(*found.get(index, (0, 0, None)))} for index, monday in enumerate(period.weeks())]
        return Table(("week", *CSAT_COLUMNS), rows)
    if by == "agent":
        agents = {agent.id: agent for agent in session.scalars(select(Agent).where(Agent.id.in_([k for k in found if k])))}
        rows = [
            {
                "agent": agents[agent_id].name if agent_id in agents else NO_AGENT,
                "agent_email": agents[agent_id].email if agent_id in agents else None,
                **_csat_values(*values),
            }
            for agent_id, values in _busiest_first(found)
        ]
        return Table(("agent", "agent_email", *CSAT_COLUMNS), rows)
    return Table((by, *CSAT_COLUMNS), [{by: key, **_csat_values(*values)} for key, values in _busiest_first(found)])


# --- Needs ---------------------------------------------------------------------


def needs(session: Session, period: Period) -> Table:
    """Tickets opened in the period by classified need, most frequent first."""
    counts = session.execute(
        select(Ticket.category, func.count(Ticket.id))
        .where(period.contains(Ticket.created_at))
        .group_by(Ticket.category)
    ).all()
    total = sum(count for _, count in counts)
    ordered = sorted(counts, key=lambda row: (-row[1], row[0]))
    rows = [{"category": category, "tickets": count, "share": share(count, total)} for category, count in ordered]
    return Table(("category", "tickets", "share"), rows)


def needs_trend(session: Session, period: Period) -> Table:
    """Tickets opened per week and need: every week of the period and every need seen in it."""
    week = week_index(Ticket.created_at, period).label("week")
    counts = session.execute(
        select(week, Ticket.category, func.count(Ticket.id))
        .where(period.contains(Ticket.created_at))
        .group_by(week, Ticket.category)
    ).all()
    found = {(index, category): count for index, category, count in counts}
    totals: dict[str, int] = {}
    for (_, category), count in found.items():
        totals[category] = totals.get(category, 0) + count
    categories = sorted(totals, key=lambda category: (-totals[category], category))
    rows = [
        {"week": monday, "category": category, "tickets": found.get((index, category), 0)}
        for index, monday in enumerate(period.weeks())
        for category in categories
    ]
    return Table(("week", "category", "tickets"), rows)


# --- Containment -------------------------------------------------------------


def containment(session: Session, period: Period) -> Table:
    """Conversations started per week in which the customer wrote, and the share no person had to take."""
    week = week_index(Conversation.started_at, period).label("week")
    counts = session.execute(
        select(week, func.count(Conversation.id), func.sum(case((Conversation.handed_off, 1), else_=0)))
        .where(period.contains(Conversation.started_at), Conversation.user_messages > 0)
        .group_by(week)
    ).all()
    found = {index: (total, int(handed or 0)) for index, total, handed in counts}
    rows = []
    for index, monday in enumerate(period.weeks()):
        total, handed_off = found.get(index, (0, 0))
        contained = total - handed_off
        rows.append(
            {
                "week": monday,
                "conversations": total,
                "contained": contained,
                "handed_off": handed_off,
                "containment_rate": share(contained, total),
            }
        )
    return Table(("week", "conversations", "contained", "handed_off", "containment_rate"), rows)


# --- Handoff times -----------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks (PostgreSQL's percentile_cont, numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower, upper = math.floor(position), math.ceil(position)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def _time_stats(prefix: str, seconds: list[float]) -> dict:
    mean = sum(seconds) / len(seconds) if seconds else None
    return {
        f"{prefix}_p50_seconds": rounded(percentile(seconds, 0.5), 1),
        f"{prefix}_p90_seconds": rounded(percentile(seconds, 0.9), 1),
        f"{prefix}_mean_seconds": rounded(mean, 1),
    }


HANDOFF_TIME_COLUMNS = (
    "handoffs",
    "claimed",
    "resolved",
    *(f"{kind}_{stat}_seconds" for kind in ("wait", "handle") for stat in ("p50", "p90", "mean")),
)


def _handoff_time_row(times: Iterable[tuple[datetime, datetime | None, datetime | None]]) -> dict:
    times = list(times)
    waits = [(claimed - created).total_seconds() for created, claimed, _ in times if claimed is not None]
    handles = [(resolved - claimed).total_seconds() for _, claimed, resolved in times if claimed and resolved]
    return {
        "handoffs": len(times),
        "claimed": len(waits),
        "resolved": len(handles),
        **_time_stats("wait", waits),
        **_time_stats("handle", handles),
    }


def _handoff_times_in(session: Session, period: Period):
    return session.execute(
        select(week_index(Handoff.created_at, period), Handoff.created_at, Handoff.claimed_at, Handoff.resolved_at).where(
            period.contains(Handoff.created_at)
        )
    ).all()


def handoff_times(session: Session, period: Period) -> Table:
    """Per week of the request: wait (requested → claimed) and handle (claimed → resolved) times.

    A request still waiting has no wait time yet, one closed without a claim
    (the customer left) no handle time.
    """
    by_week: dict[int, list] = {}
    for index, *times in _handoff_times_in(session, period):
        by_week.setdefault(index, []).append(times)
    rows = [{"week": monday, **_handoff_time_row(by_week.get(index, []))} for index, monday in enumerate(period.weeks())]
    return Table(("week", *HANDOFF_TIME_COLUMNS), rows)


# --- Customers: tiers, segments, churn risk (as they are now) -------------------


def _mix(session: Session, column, order: Sequence[str] = ()) -> list[dict]:
    rows = session.execute(
        select(column, func.count(Customer.id), func.sum(Customer.lifetime_value), func.avg(Customer.churn_risk)).group_by(
            column
        )
    ).all()
    total = sum(count for _, count, _, _ in rows)
    rank = {name: position for position, name in enumerate(order)}

    def sort_key(row):
        name = row[0]
        return (name is None, rank.get(name, len(rank)), -row[1], name or "")

    return [
        {
            "name": name if name is not None else NOT_SCORED,
            "customers": count,
            "share": share(count, total),
            "lifetime_value": rounded(value or 0),
            "average_churn_risk": rounded(risk, 3),
        }
        for name, count, value, risk in sorted(rows, key=sort_key)
    ]


def _renamed(rows: list[dict], key: str) -> list[dict]:
    return [{key: row.pop("name"), **row} for row in rows]


MIX_COLUMNS = ("customers", "share", "lifetime_value", "average_churn_risk")


def tiers(session: Session) -> Table:
    """Customers by loyalty tier (gold, silver, bronze, then not scored), with their lifetime value."""
    return Table(("tier", *MIX_COLUMNS), _renamed(_mix(session, Customer.loyalty_tier, LOYALTY_TIERS), "tier"))


def segments(session: Session) -> Table:
    """Customers by segment, largest first, with their lifetime value."""
    return Table(("segment", *MIX_COLUMNS), _renamed(_mix(session, Customer.segment), "segment"))


CHURN_COLUMNS = (
    "customer_id",
    "name",
    "email",
    "churn_risk",
    "loyalty_tier",
    "segment",
    "lifetime_value",
    "spent_to_date",
    "last_order_at",
    "open_tickets",
)


def _spent_to_date(customer: Customer) -> float | None:
    monetary = ((customer.insights or {}).get("rfm") or {}).get("monetary")
    return rounded(monetary) if monetary is not None else None


def churn_risk(session: Session, limit: int = 20) -> Table:
    """The ``limit`` customers most likely to leave, with what an agent needs to act on it."""
    last_order = (
        select(func.max(Order.ordered_at))
        .where(Order.customer_id == Customer.id, Order.status != "cancelled")
        .correlate(Customer)
        .scalar_subquery()
    )
    open_tickets = (
        select(func.count(Ticket.id))
        .where(Ticket.customer_id == Customer.id, Ticket.status.in_(OPEN_TICKET_STATUSES))
        .correlate(Customer)
        .scalar_subquery()
    )
    query = (
        select(Customer, last_order, open_tickets)
        .where(Customer.churn_risk.is_not(None))
        .order_by(Customer.churn_risk.desc(), Customer.lifetime_value.desc().nulls_last(), Customer.id)
        .limit(limit)
    )
    rows = [
        {
            "customer_id": customer.id,
            "name": customer.name,
            "email": customer.email,
            "churn_risk": rounded(customer.churn_risk, 3),
            "loyalty_tier": customer.loyalty_tier,
            "segment": customer.segment,
            "lifetime_value": rounded(customer.lifetime_value),
            # What they have spent (net of refunds): the lifetime value above is
            # what they are still expected to spend, near zero for those leaving.
            "spent_to_date": _spent_to_date(customer),
            "last_order_at": ordered_at,
            "open_tickets": count,
        }
        for customer, ordered_at, count in session.execute(query)
    ]
    return Table(CHURN_COLUMNS, rows)


# --- The period in a few numbers ----------------------------------------------


SUMMARY_TIMES = ("handoffs", "wait_p50_seconds", "wait_p90_seconds", "handle_p50_seconds", "handle_p90_seconds")


def summary(session: Session, period: Period) -> Table:
    """One row: the headline figures of the period (tickets, CSAT, containment, handoff times)."""
    tickets = session.execute(select(func.count(Ticket.id)).where(period.contains(Ticket.created_at))).scalar_one()
    responses, satisfied = session.execute(
        select(func.count(Feedback.id), func.sum(case((Feedback.score >= SATISFIED_SCORE, 1), else_=0))).where(
            period.contains(Feedback.created_at)
        )
    ).one()
    conversations, handed_off = session.execute(
        select(func.count(Conversation.id), func.sum(case((Conversation.handed_off, 1), else_=0))).where(
            period.contains(Conversation.started_at), Conversation.user_messages > 0
        )
    ).one()
    times = _handoff_time_row(times for _, *times in _handoff_times_in(session, period))
    row = {
        "since": period.since,
        "until": period.until,
        "tickets": tickets,
        "responses": responses,
        "csat": share(int(satisfied or 0), responses),
        "conversations": conversations,
        "containment_rate": share(conversations - int(handed_off or 0), conversations),
        **{key: times[key] for key in SUMMARY_TIMES},
    }
    return Table(tuple(row), [row])
