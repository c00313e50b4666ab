"""The generated demo history (`crm seed-demo`): believable, deterministic, seeded once."""

import json
import random
import statistics
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from conftest import POSTGRES, _make_app
from postgres_support import temporary_database
from sqlalchemy import Integer, func, select

from crm_backend import migrate, seed
from crm_backend.db import get_session
from crm_backend.demo import history, planner
from crm_backend.models import E164, Agent, Conversation, Customer, Feedback, Handoff, HandoffMessage, InsightModel, Order, Ticket

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
HALF_YEAR = timedelta(days=180)


@contextmanager
def seeded_database(tmp_path, name: str, *, seed_value: int = history.DEFAULT_SEED):
    """A migrated database with the demo customers, tickets and agent, then the history as of NOW."""
    if POSTGRES:
        with temporary_database(POSTGRES) as url:
            yield from _seeded(url, seed_value)
    else:
        yield from _seeded(f"sqlite:///{tmp_path / name}", seed_value)


def _seeded(url: str, seed_value: int):
    # A session of its own, not the app context's: an app context left pushed
    # for the module would capture the `crm` commands of other tests.
    database = _make_app(url).extensions["crm_db"]
    migrate.upgrade_to_head(database.engine)
    try:
        with database.sessionmaker() as session:
            seed.seed_customers(session)
            seed.seed_tickets(session)
            seed.seed_agent(session)
            yield session, history.seed_history(session, now=NOW, seed=seed_value)
    finally:
        database.engine.dispose()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    with seeded_database(tmp_path_factory.mktemp("history"), "crm.db") as (session, added):
        yield session, added


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def first_rows(session) -> list[tuple]:
    return [
        *session.execute(select(Customer.name, Customer.email, Customer.phone).order_by(Customer.id).limit(12)),
        *session.execute(select(Order.external_id, Order.amount, Order.ordered_at, Order.status).order_by(Order.id).limit(5)),
        # The demo tickets of tickets.json (ids 1-5) are dated when seeded, not from NOW.
        *session.execute(select(Ticket.subject, Ticket.category, Ticket.status, Ticket.created_at).where(Ticket.id > 5).order_by(Ticket.id).limit(10)),
        *session.execute(select(Feedback.score, Feedback.comment, Feedback.created_at).order_by(Feedback.id).limit(5)),
    ]


def test_the_history_has_the_sizes_of_two_years_of_a_small_shop(seeded):
    session, added = seeded

    assert added["customers"] == 400 and added["agents"] == 4
    assert 3000 <= added["orders"] <= 5000
    assert 1300 <= added["tickets"] <= 2100
    assert 4800 <= added["conversations"] <= 5200
    assert 1000 <= added["handoffs"] <= 1500
    assert added == {
        "customers": count(session, Customer) - 6,
        "orders": count(session, Order),
        "tickets": count(session, Ticket) - 5,
        "conversations": count(session, Conversation),
        "handoffs": count(session, Handoff),
        "handoff_messages": count(session, HandoffMessage),
        "feedback": count(session, Feedback),
        "agents": count(session, Agent) - 1,
    }


def test_bot_containment_and_rating_shares_are_plausible(seeded):
    session, added = seeded

    contained = count(session, Conversation, Conversation.handed_off.is_(False))
    written_tickets = count(session, Ticket, Ticket.channel != "chat")
    assert 0.70 <= contained / added["conversations"] <= 0.80
    assert 0.30 <= added["feedback"] / (added["conversations"] + written_tickets) <= 0.40


def test_the_same_seed_and_time_give_the_same_history_and_another_seed_another(seeded, tmp_path):
    session, added = seeded

    with seeded_database(tmp_path, "again.db") as (again, added_again):
        assert added_again == added
        assert first_rows(again) == first_rows(session)
    with seeded_database(tmp_path, "other.db", seed_value=7) as (other, _):
        assert first_rows(other) != first_rows(session)


def test_seeding_again_adds_nothing(seeded):
    session, added = seeded
    orders = count(session, Order)

    assert history.seed_history(session, now=NOW) == {}
    assert history.seed_history(session) == {}
    assert count(session, Order) == orders


def test_the_demo_customers_keep_exactly_their_tickets_but_have_orders(seeded):
    session, _ = seeded
    records = json.loads(seed.DEMO_TICKETS.read_text(encoding="utf-8"))

    tickets = session.execute(select(Customer.email, Ticket.subject).join(Ticket.customer).where(Ticket.id <= 5)).all()
    demo_emails = [record["email"] for record in json.loads(seed.DEMO_CUSTOMERS.read_text(encoding="utf-8"))]
    demo_ids = select(Customer.id).where(Customer.email.in_(demo_emails))
    assert sorted(tickets) == sorted((record["customer_email"], record["subject"]) for record in records)
    assert count(session, Ticket, Ticket.customer_id.in_(demo_ids)) == len(records)
    assert count(session, Handoff, Handoff.customer_id.in_(demo_ids)) == 0
    for email in demo_emails:
        customer_id = session.scalar(select(Customer.id).where(Customer.email == email))
        assert count(session, Order, Order.customer_id == customer_id) >= 1, email


def test_no_handoff_waits_in_the_queue_and_every_handed_off_chat_says_so(seeded):
    session, _ = seeded

    assert count(session, Handoff, Handoff.status != "resolved") == 0
    handed_off = set(session.scalars(select(Conversation.conversation_id).where(Conversation.handed_off.is_(True))))
    assert set(session.scalars(select(Handoff.conversation_id))) == handed_off
    assert all(conversation_id.startswith("demo-") for conversation_id in handed_off)


def test_handoff_waits_are_minutes_with_a_long_tail_and_handling_takes_a_quarter_hour(seeded):
    session, _ = seeded
    handoffs = session.scalars(select(Handoff)).unique().all()
    waits = sorted(handoff.wait_seconds / 60 for handoff in handoffs)
    handles = [handoff.handle_seconds / 60 for handoff in handoffs]

    assert 2 <= statistics.median(waits) <= 6
    assert sum(1 <= wait <= 10 for wait in waits) / len(waits) >= 0.7
    assert waits[-1] > 30
    assert 8 <= statistics.median(handles) <= 20
    assert all(2 <= len(handoff.messages) <= 4 and handoff.transcript for handoff in handoffs[:50])


def test_orders_are_in_pounds_with_plausible_amounts_refunds_and_a_christmas_peak(seeded):
    session, _ = seeded
    orders = session.execute(select(Order.amount, Order.refunded_amount, Order.status, Order.currency, Order.ordered_at)).all()
    amounts = sorted(order.amount for order in orders)
    by_month: dict[tuple[int, int], int] = {}
    for order in orders:
        by_month[order.ordered_at.year, order.ordered_at.month] = by_month.get((order.ordered_at.year, order.ordered_at.month), 0) + 1
    full_months = sorted(by_month)[1:-1]
    december = by_month[NOW.year - 1, 12]

    assert {order.currency for order in orders} == {"GBP"}
    assert Decimal("8") <= amounts[0] and amounts[-1] <= Decimal("400")
    assert Decimal("25") <= statistics.median(amounts) <= Decimal("90")
    assert all(order.ordered_at <= NOW and order.ordered_at >= NOW - planner.SPAN for order in orders)
    refunded = [order for order in orders if order.status in ("refunded", "partially_refunded")]
    assert 0.03 <= len(refunded) / len(orders) <= 0.15
    assert all(Decimal("0") < order.refunded_amount <= order.amount for order in refunded)
    assert december > 1.4 * statistics.mean(by_month[month] for month in full_months)


def test_customers_who_stopped_buying_complained_more_and_scored_lower_than_frequent_ones(seeded):
    session, _ = seeded
    orders = session.execute(select(Order.customer_id, Order.ordered_at)).all()
    dates: dict[int, list[datetime]] = {}
    for customer_id, ordered_at in orders:
        dates.setdefault(customer_id, []).append(ordered_at)
    stopped = {c for c, ds in dates.items() if len(ds) >= 3 and max(ds) < NOW - HALF_YEAR}
    frequent = {c for c, ds in dates.items() if sum(d > NOW - 2 * HALF_YEAR for d in ds) >= 10}

    def mean_score(customers: set[int]) -> float:
        return float(session.scalar(select(func.avg(Feedback.score)).where(Feedback.customer_id.in_(customers))))

    def complaints_per_order(customers: set[int]) -> float:
        needs = ("service_complaint", "damaged_or_defective", "delivery_problem", "refund", "wrong_or_missing_item")
        complaints = count(session, Ticket, Ticket.customer_id.in_(customers), Ticket.category.in_(needs))
        return complaints / sum(len(dates[customer]) for customer in customers)

    assert len(stopped) >= 40 and len(frequent) >= 40
    assert mean_score(stopped) < mean_score(frequent) - 0.8
    assert complaints_per_order(stopped) > 2 * complaints_per_order(frequent)


def test_every_lapsed_persona_stopped_buying_more_than_half_a_year_ago():
    staff = [planner.StaffMember(profile, number) for number, profile in enumerate(planner.AGENTS, start=1)]
    words = json.loads(planner.WORDS.read_text(encoding="utf-8"))

    plan = planner.Planner(random.Random(history.DEFAULT_SEED), words, NOW, staff).plan([])

    last_order: dict[int, datetime] = {}
    for order in plan.orders:
        last_order[id(order.shopper)] = order.ordered_at
    lapsed = [shopper for shopper in plan.shoppers if shopper.persona.name == "lapsed"]
    new = [shopper for shopper in plan.shoppers if shopper.persona.name == "new"]
    assert len(lapsed) == 68 and all(NOW - last_order[id(shopper)] > HALF_YEAR for shopper in lapsed)
    assert all(shopper.joined > NOW - timedelta(days=90) for shopper in new)
    assert all(id(shopper) in last_order for shopper in plan.shoppers)


def test_satisfaction_differs_by_need_and_agent_and_is_not_flat_over_time(seeded):
    session, _ = seeded

    def satisfied_share(column, *where) -> dict:
        rows = session.execute(
            select(column, func.avg((Feedback.score >= 4).cast(Integer)), func.count()).where(*where).group_by(column)
        ).all()
        return {key: float(share) for key, share, n in rows if n >= 20}

    by_need = satisfied_share(Feedback.category)
    by_agent = satisfied_share(Feedback.agent_id, Feedback.agent_id.is_not(None))
    first_year = satisfied_share(Feedback.channel, Feedback.created_at < NOW - timedelta(days=365))
    second_year = satisfied_share(Feedback.channel, Feedback.created_at >= NOW - timedelta(days=365))
    assert by_need["praise"] > 0.8 > 0.4 > by_need["service_complaint"]
    assert max(by_agent.values()) - min(by_agent.values()) >= 0.15
    assert second_year["chat"] - first_year["chat"] >= 0.05


def test_old_tickets_are_done_and_open_ones_recent(seeded):
    session, _ = seeded
    generated = Ticket.id > 5

    assert count(session, Ticket, generated, Ticket.created_at < NOW - timedelta(days=60), Ticket.status.not_in(("solved", "closed"))) == 0
    assert count(session, Ticket, generated, Ticket.status.in_(("open", "pending", "on_hold"))) >= 3
    assert {row for row in session.scalars(select(Ticket.channel).where(generated).distinct())} == {"chat", "email", "web"}
    assert count(session, Ticket, generated, Ticket.category_source != "manual") == 0


def test_generated_people_have_example_addresses_and_e164_phones(seeded):
    session, _ = seeded
    customers = session.execute(select(Customer.email, Customer.phone).where(Customer.id > 6)).all()

    assert {email.rsplit("@", 1)[1] for email, _ in customers} <= {"example.net", "example.org"}
    assert len({email for email, _ in customers}) == 400
    assert all(E164.match(phone) for _, phone in customers if phone)
    assert {email.rsplit("@", 1)[1] for email in session.scalars(select(Agent.email))} == {"example.com"}


def test_seed_demo_adds_the_history_once_then_refreshes_the_insights(run_cli, app, monkeypatch):
    from crm_backend.insights import service as insights

    refreshed = []

    def refresh_all(session, **_):
        refreshed.append(session)
        session.add(InsightModel(kind="segments", params={}, metrics={}))
        session.commit()
        return {"customers": 406}

    monkeypatch.setattr(insights, "refresh_all", refresh_all)

    first = run_cli("seed-demo")
    second = run_cli("seed-demo")

    assert first.exit_code == 0 and second.exit_code == 0, second.output
    assert "Demo history: 400 customers," in first.output
    assert "Customer insights: 406 customers refreshed." in first.output
    assert "Demo history: already present." in second.output
    # Nothing new and the models exist: no second training at every start.
    assert "Customer insights: already computed" in second.output
    assert len(refreshed) == 1


def test_seed_demo_without_history_adds_only_the_demo_data(run_cli, app, monkeypatch):
    from crm_backend.insights import service as insights

    monkeypatch.setattr(insights, "refresh_all", lambda session, **_: {"customers": 6})
    monkeypatch.setenv("SEED_DEMO_HISTORY", "0")

    from_env = run_cli("seed-demo")
    from_option = run_cli("seed-demo", "--no-history")

    assert from_env.exit_code == 0 and from_option.exit_code == 0, from_env.output
    assert "Demo history" not in from_env.output + from_option.output
    with app.app_context():
        # The demo customers' current orders (orders.json) are demo data, not history.
        demo_orders = len(json.loads(seed.DEMO_ORDERS.read_text(encoding="utf-8")))
        assert count(get_session(), Order) == demo_orders and count(get_session(), Customer) == 6
        assert count(get_session(), Order, Order.source != seed.DEMO_ORDER_SOURCE) == 0
