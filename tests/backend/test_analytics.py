"""Support analytics (crm_backend/analytics): each table from hand-built rows,
the /api/v1/analytics endpoints (scope, 422s, CSV) and the console's
dashboard page and its CSV downloads."""

import csv
import io
import itertools
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from crm_backend.agents.service import create_agent
from crm_backend.analytics import queries
from crm_backend.analytics.export import to_csv
from crm_backend.analytics.queries import Period, Table
from crm_backend.db import get_session
from crm_backend.models import Agent, Conversation, Customer, Feedback, Handoff, Order, Ticket

# Three weeks: Monday 6 January to Sunday 26 January 2025.
PERIOD = Period(date(2025, 1, 6), date(2025, 1, 26))
WEEK_1, WEEK_2, WEEK_3 = date(2025, 1, 6), date(2025, 1, 13), date(2025, 1, 20)
_numbers = itertools.count(1)


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    """A moment in January 2025, UTC."""
    return datetime(2025, 1, day, hour, minute, second, tzinfo=timezone.utc)


@pytest.fixture
def db(app):
    with app.app_context():
        session = get_session()
        yield session
        session.rollback()


def customer(session, name="Ada Lovelace", **insights) -> Customer:
    record = Customer(name=name, email=f"c{next(_numbers)}@example.com", **insights)
    session.add(record)
    session.flush()
    return record


def agent(session, name: str) -> Agent:
    return create_agent(session, email=f"{name.split()[0].lower()}@example.com", password="a long password 1", name=name)


def scores(session, *pairs, **fields) -> None:
    for moment, score in pairs:
        session.add(Feedback(score=score, created_at=moment, **fields))
    session.flush()


def ticket(session, who: Customer, category: str, created_at: datetime, status: str = "open") -> Ticket:
    record = Ticket(customer_id=who.id, subject="s", description="d", category=category, status=status, created_at=created_at)
    session.add(record)
    session.flush()
    return record


def handoff(session, who: Customer, created_at, claimed_at=None, resolved_at=None, category="refund") -> Handoff:
    status = "resolved" if resolved_at else "claimed" if claimed_at else "queued"
    record = Handoff(
        conversation_id=f"conv-{next(_numbers)}",
        customer_id=who.id,
        reason="help",
        category=category,
        status=status,
        created_at=created_at,
        claimed_at=claimed_at,
        resolved_at=resolved_at,
    )
    session.add(record)
    session.flush()
    return record


def conversation(session, started_at, user_messages=1, handed_off=False) -> None:
    session.add(
        Conversation(
            conversation_id=f"chat-{next(_numbers)}",
            started_at=started_at,
            last_message_at=started_at,
            user_messages=user_messages,
            handed_off=handed_off,
        )
    )
    session.flush()


# --- Periods and weeks ---------------------------------------------------------


def test_weeks_start_on_monday_and_a_period_covers_whole_days():
    period = Period(date(2025, 1, 8), date(2025, 1, 20))  # a Wednesday to a Monday
    assert period.weeks() == [WEEK_1, WEEK_2, WEEK_3]
    assert period.start == at(8, 0)
    assert period.end == at(21, 0)


def test_the_last_weeks_end_today_and_start_on_a_monday():
    period = Period.last_weeks(4, today=date(2025, 1, 23))  # a Thursday
    assert (period.since, period.until) == (date(2024, 12, 30), date(2025, 1, 23))
    assert len(period.weeks()) == 4


# --- CSAT -------------------------------------------------------------------------


def test_csat_by_week_is_the_share_of_scores_of_four_or_five(db):
    scores(db, (at(6), 5), (at(8), 4), (at(10), 3), (at(12, 23, 59, 59), 1))  # week 1: 2 of 4
    scores(db, (at(20, 0), 4), (at(21), 4), (at(22), 5), (at(24), 2), (at(26, 23), 5))  # week 3: 4 of 5
    scores(db, (at(5, 23, 59), 5), (at(27, 0), 1))  # just outside the period
    rows = queries.csat(db, PERIOD, by="week").rows
    assert rows == [
        {"week": WEEK_1, "responses": 4, "satisfied": 2, "csat": 0.5, "mean_score": 3.25},
        {"week": WEEK_2, "responses": 0, "satisfied": 0, "csat": None, "mean_score": None},
        {"week": WEEK_3, "responses": 5, "satisfied": 4, "csat": 0.8, "mean_score": 4.0},
    ]


def test_csat_by_agent_names_the_agent_and_keeps_the_assistants_own_scores_apart(db):
    sam = agent(db, "Sam Rivera")
    scores(db, (at(7), 5), (at(8), 2), agent_id=sam.id)
    scores(db, (at(9), 4), (at(9), 5), (at(9), 4))
    table = queries.csat(db, PERIOD, by="agent")
    assert table.columns[:2] == ("agent", "agent_email")
    assert [(row["agent"], row["responses"], row["csat"]) for row in table.rows] == [
        (queries.NO_AGENT, 3, 1.0),
        ("Sam Rivera", 2, 0.5),
    ]
    assert table.rows[1]["agent_email"] == "sam@example.com"


def test_csat_by_category_uses_the_comments_need_else_the_handoffs(db):
    who = customer(db)
    refund = handoff(db, who, at(6), at(6, 12, 5), at(6, 12, 20), category="refund")
    scores(db, (at(7), 5), category="billing")
    scores(db, (at(7), 2), handoff_id=refund.id)
    scores(db, (at(7), 4))
    rows = queries.csat(db, PERIOD, by="category").rows
    assert {row["category"]: (row["responses"], row["csat"]) for row in rows} == {
        "billing": (1, 1.0),
        "refund": (1, 0.0),
        queries.UNCLASSIFIED: (1, 1.0),
    }


def test_csat_by_channel(db):
    scores(db, (at(7), 5), (at(8), 1), channel="chat")
    scores(db, (at(7), 4), channel="email")
    rows = queries.csat(db, PERIOD, by="channel").rows
    assert [(row["channel"], row["responses"], row["csat"]) for row in rows] == [("chat", 2, 0.5), ("email", 1, 1.0)]


def test_csat_refuses_an_unknown_grouping(db):
    with pytest.raises(ValueError, match="week, category, agent, channel"):
        queries.csat(db, PERIOD, by="colour")


# --- Needs ----------------------------------------------------------------------


def test_needs_give_the_distribution_and_a_complete_weekly_grid(db):
    who = customer(db)
    for moment, category in [(at(6), "refund"), (at(7), "refund"), (at(14), "billing"), (at(21), "refund"), (at(27), "other")]:
        ticket(db, who, category, moment)
    assert queries.needs(db, PERIOD).rows == [
        {"category": "refund", "tickets": 3, "share": 0.75},
        {"category": "billing", "tickets": 1, "share": 0.25},
    ]
    trend = queries.needs_trend(db, PERIOD).rows
    assert [(row["week"], row["category"], row["tickets"]) for row in trend] == [
        (WEEK_1, "refund", 2),
        (WEEK_1, "billing", 0),
        (WEEK_2, "refund", 0),
        (WEEK_2, "billing", 1),
        (WEEK_3, "refund", 1),
        (WEEK_3, "billing", 0),
    ]


# --- Containment ----------------------------------------------------------------


def test_containment_is_the_share_of_conversations_no_person_had_to_take(db):
    for _ in range(3):
        conversation(db, at(7))
    conversation(db, at(8), user_messages=4, handed_off=True)
    conversation(db, at(9), user_messages=0)  # the customer never wrote: not counted
    conversation(db, at(22), handed_off=True)
    rows = queries.containment(db, PERIOD).rows
    assert rows[0] == {"week": WEEK_1, "conversations": 4, "contained": 3, "handed_off": 1, "containment_rate": 0.75}
    assert rows[1]["conversations"] == 0 and rows[1]["containment_rate"] is None
    assert rows[2]["containment_rate"] == 0.0


# --- Handoff times --------------------------------------------------------------


def test_percentiles_interpolate_between_ranks():
    waits = [600, 60, 240, 120, 180]
    assert queries.percentile(waits, 0.5) == 180
    assert queries.percentile(waits, 0.9) == pytest.approx(456)  # 240 + 0.6 × (600 − 240)
    assert queries.percentile([42.0], 0.9) == 42.0
    assert queries.percentile([], 0.5) is None


def test_handoff_wait_and_handle_times_per_week(db):
    who = customer(db)
    start = at(7, 10)
    for wait in (60, 120, 180, 240, 600):
        claimed = start + timedelta(seconds=wait)
        handoff(db, who, start, claimed, claimed + timedelta(seconds=wait * 10))
    handoff(db, who, start)  # still waiting: no wait time yet
    handoff(db, who, at(15), at(15, 12, 1))  # week 2: claimed, not resolved
    rows = queries.handoff_times(db, PERIOD).rows
    assert rows[0] == {
        "week": WEEK_1,
        "handoffs": 6,
        "claimed": 5,
        "resolved": 5,
        "wait_p50_seconds": 180.0,
        "wait_p90_seconds": 456.0,
        "wait_mean_seconds": 240.0,
        "handle_p50_seconds": 1800.0,
        "handle_p90_seconds": 4560.0,
        "handle_mean_seconds": 2400.0,
    }
    assert (rows[1]["claimed"], rows[1]["wait_p50_seconds"], rows[1]["handle_p50_seconds"]) == (1, 60.0, None)
    assert rows[2]["handoffs"] == 0


# --- Customers ------------------------------------------------------------------


def test_tier_mix_counts_customers_and_sums_their_value_in_tier_order(db):
    customer(db, loyalty_tier="silver", lifetime_value=Decimal("100.50"), churn_risk=0.5)
    customer(db, loyalty_tier="gold", lifetime_value=Decimal("900"), churn_risk=0.1)
    customer(db, loyalty_tier="gold", lifetime_value=Decimal("600"), churn_risk=0.3)
    customer(db)  # insights not computed yet
    table = queries.tiers(db)
    assert table.columns == ("tier", "customers", "share", "lifetime_value", "average_churn_risk")
    assert table.rows == [
        {"tier": "gold", "customers": 2, "share": 0.5, "lifetime_value": 1500.0, "average_churn_risk": 0.2},
        {"tier": "silver", "customers": 1, "share": 0.25, "lifetime_value": 100.5, "average_churn_risk": 0.5},
        {"tier": queries.NOT_SCORED, "customers": 1, "share": 0.25, "lifetime_value": 0.0, "average_churn_risk": None},
    ]


def test_segment_mix_puts_the_largest_segment_first(db):
    customer(db, segment="bargain hunters")
    customer(db, segment="loyal", lifetime_value=Decimal("10"))
    customer(db, segment="loyal", lifetime_value=Decimal("5"))
    rows = queries.segments(db).rows
    assert [(row["segment"], row["customers"], row["lifetime_value"]) for row in rows] == [
        ("loyal", 2, 15.0),
        ("bargain hunters", 1, 0.0),
    ]


def test_the_churn_list_ranks_by_risk_with_last_order_and_open_tickets(db):
    likely = customer(db, "Likely Leaver", churn_risk=0.91, loyalty_tier="silver", segment="lapsing", lifetime_value=Decimal("250"))
    unlikely = customer(db, "Staying Put", churn_risk=0.12, loyalty_tier="gold")
    customer(db, "Not Scored")
    for moment in (at(3), at(9)):
        db.add(Order(customer_id=likely.id, source="shop", external_id=f"o{next(_numbers)}", amount=Decimal("10"), currency="GBP", status="paid", ordered_at=moment))
    for status in ("open", "pending", "solved", "closed"):
        ticket(db, likely, "refund", at(9), status=status)
    db.flush()
    table = queries.churn_risk(db, limit=5)
    assert [row["name"] for row in table.rows] == ["Likely Leaver", "Staying Put"]
    first = table.rows[0]
    assert first["customer_id"] == likely.id
    assert (first["churn_risk"], first["loyalty_tier"], first["segment"], first["lifetime_value"]) == (0.91, "silver", "lapsing", 250.0)
    assert first["last_order_at"] == at(9)
    assert first["open_tickets"] == 2
    assert table.rows[1]["open_tickets"] == 0 and table.rows[1]["last_order_at"] is None
    # Spent to date comes from the insights' RFM figures; none computed yet here.
    assert first["spent_to_date"] is None
    likely.insights = {"rfm": {"monetary": "20.00", "frequency": 2}}
    db.flush()
    assert queries.churn_risk(db, limit=1).rows[0]["spent_to_date"] == 20.0
    assert [row["name"] for row in queries.churn_risk(db, limit=1).rows] == ["Likely Leaver"]
    assert unlikely.id == table.rows[1]["customer_id"]


def test_summary_gives_the_headline_figures(db):
    who = customer(db)
    ticket(db, who, "refund", at(7))
    scores(db, (at(7), 5), (at(8), 3))
    conversation(db, at(7))
    conversation(db, at(8), handed_off=True)
    handoff(db, who, at(8), at(8, 12, 2), at(8, 12, 12))
    [row] = queries.summary(db, PERIOD).rows
    assert (row["tickets"], row["responses"], row["csat"], row["conversations"], row["containment_rate"]) == (1, 2, 0.5, 2, 0.5)
    assert (row["handoffs"], row["wait_p50_seconds"], row["handle_p50_seconds"]) == (1, 120.0, 600.0)


# --- CSV --------------------------------------------------------------------------


def test_csv_has_a_header_iso_dates_empty_nones_and_no_formulas():
    table = Table(("week", "name", "csat"), [{"week": WEEK_1, "name": "=HYPERLINK(\"x\")", "csat": None}])
    assert to_csv(table) == 'week,name,csat\r\n2025-01-06,"\'=HYPERLINK(""x"")",\r\n'


# --- The API ----------------------------------------------------------------------


@pytest.fixture
def recent(app):
    """Scores in this week and the last, where the default period (12 weeks) sees them."""
    with app.app_context():
        session = get_session()
        now = datetime.now(timezone.utc)
        scores(session, (now, 5), (now, 2), (now - timedelta(days=7), 4))
        session.commit()


ENDPOINTS = [
    "csat",
    "csat?by=category",
    "csat?by=agent",
    "csat?by=channel",
    "needs",
    "needs/trend",
    "containment",
    "handoff-times",
    "summary",
    "tiers",
    "segments",
    "churn-risk",
]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_every_report_answers_with_its_columns_and_rows(client, bearer, path):
    response = client.get(f"/api/v1/analytics/{path}", headers=bearer("analytics:read"))
    assert response.status_code == 200, response.text
    body = response.get_json()
    assert body["columns"] and isinstance(body["rows"], list)


def test_csat_over_the_api_counts_the_default_twelve_weeks(client, bearer, recent):
    body = client.get("/api/v1/analytics/csat", headers=bearer("analytics:read")).get_json()
    assert len(body["rows"]) == 12
    assert body["until"] == datetime.now(timezone.utc).date().isoformat()
    assert date.fromisoformat(body["since"]).weekday() == 0
    assert body["rows"][-1]["responses"] == 2 and body["rows"][-1]["csat"] == 0.5
    assert body["rows"][-2]["csat"] == 1.0


def test_reports_come_as_csv_with_format_csv_or_accept_text_csv(client, bearer, recent):
    headers = bearer("analytics:read")
    by_param = client.get("/api/v1/analytics/csat?weeks=2&format=csv", headers=headers)
    by_accept = client.get("/api/v1/analytics/csat?weeks=2", headers={**headers, "Accept": "text/csv"})
    for response in (by_param, by_accept):
        assert response.status_code == 200
        assert response.mimetype == "text/csv"
        assert re.match(r'attachment; filename="csat-by-week_\d{4}-\d\d-\d\d_\d{4}-\d\d-\d\d\.csv"', response.headers["Content-Disposition"])
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert list(rows[0]) == ["week", "responses", "satisfied", "csat", "mean_score"]
        assert [row["responses"] for row in rows] == ["1", "2"]


def test_reports_need_a_key_with_the_analytics_scope(client, bearer):
    assert client.get("/api/v1/analytics/csat").status_code == 401
    refused = client.get("/api/v1/analytics/csat", headers=bearer("tickets:read"))
    assert refused.status_code == 403
    assert "analytics:read" in refused.get_json()["detail"]
    assert client.get("/api/v1/analytics/csat", headers=bearer("admin")).status_code == 200


@pytest.mark.parametrize(
    "query, field",
    [
        ("csat?by=colour", "by"),
        ("csat?weeks=0", "weeks"),
        ("csat?weeks=157", "weeks"),
        ("csat?since=2025-01-06&weeks=4", "weeks"),
        ("csat?since=2025-02-01&until=2025-01-01", "until"),
        ("needs?since=2020-01-06&until=2025-01-01", "since"),
        ("needs?since=yesterday", "since"),
        ("containment?format=xlsx", "format"),
        ("tiers?weeks=4", "weeks"),
        ("churn-risk?limit=0", "limit"),
    ],
)
def test_bad_parameters_are_a_422_problem_naming_the_field(client, bearer, query, field):
    response = client.get(f"/api/v1/analytics/{query}", headers=bearer("analytics:read"))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert [error["field"] for error in response.get_json()["errors"]] == [field]


def test_an_explicit_period_is_honoured(client, bearer, app):
    with app.app_context():
        session = get_session()
        scores(session, (at(7), 5), (at(14), 1))
        session.commit()
    body = client.get("/api/v1/analytics/csat?since=2025-01-06&until=2025-01-12", headers=bearer("analytics:read")).get_json()
    assert (body["since"], body["until"]) == ("2025-01-06", "2025-01-12")
    assert body["rows"] == [{"week": "2025-01-06", "responses": 1, "satisfied": 1, "csat": 1.0, "mean_score": 5.0}]


def test_the_openapi_document_describes_the_reports_and_their_csv(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/analytics/csat"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert {"/api/v1/analytics/needs/trend", "/api/v1/analytics/churn-risk", "/api/v1/analytics/handoff-times"} <= set(spec["paths"])


# --- The console's dashboard ----------------------------------------------------


@pytest.fixture
def signed_in(app, client):
    with app.app_context():
        session = get_session()
        create_agent(session, email="alex@example.com", password="correct horse 1", name="Alex Agent")
        session.commit()
    form = client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    client.post("/console/login", data={"email": "alex@example.com", "password": "correct horse 1", "csrf_token": token})
    return client


def test_the_dashboard_needs_a_signed_in_agent(client):
    for path in ("/console/dashboard", "/console/dashboard/csat-by-week.csv", "/console/customers/1"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/console/login" in response.headers["Location"]


def test_the_dashboard_shows_every_report_with_its_table_and_csv_link(signed_in, recent):
    page = signed_in.get("/console/dashboard?weeks=4")
    assert page.status_code == 200
    html = page.text
    assert 'aria-current="page">4 weeks<' in html
    assert 'href="/console/dashboard"' in html  # in the navigation
    for name in ("needs-trend", "needs", "csat-by-week", "containment", "handoff-times", "churn-risk"):
        assert f'href="/console/dashboard/{name}.csv?weeks=4"' in html
    assert '<canvas data-chart="csat-trend" data-source="data-csat-by-week"' in html
    assert "No tickets were opened in this period." in html  # empty states say what is missing
    assert "No conversations in this period." in html
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp


def test_the_dashboards_csv_downloads_are_the_same_tables(signed_in, recent):
    response = signed_in.get("/console/dashboard/csat-by-week.csv?weeks=4")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 4 and rows[-1]["responses"] == "2"
    assert signed_in.get("/console/dashboard/nonsense.csv").status_code == 404


def test_the_churn_list_links_to_a_customer_page(signed_in, app):
    with app.app_context():
        session = get_session()
        who = customer(session, "Likely Leaver", churn_risk=0.8, loyalty_tier="bronze", segment="lapsing")
        session.add(Order(customer=who, source="shop", external_id="NW-4711", amount=Decimal("12.50"), currency="GBP", status="paid", ordered_at=at(3)))
        session.commit()
        customer_id = who.id
    assert f'href="/console/customers/{customer_id}">Likely Leaver</a>' in signed_in.get("/console/dashboard").text
    page = signed_in.get(f"/console/customers/{customer_id}")
    assert page.status_code == 200 and "Likely Leaver" in page.text and "80.0%" in page.text
    assert "Recent orders" in page.text and "NW-4711" in page.text and "£12.50" in page.text
    assert signed_in.get("/console/customers/999999").status_code == 404
