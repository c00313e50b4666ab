"""Churn model, segments, refreshing customers, ticket priority, the API and the commands.

A synthetic shop history stands in for real data: half the customers keep
ordering, the other half stop ordering (after complaints and poor scores)
before the training cutoff, so a working churn model must tell them apart.
"""

import json
import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pytest
from sqlalchemy import event, func, insert, select

from crm_backend.db import get_engine, get_session
from crm_backend.insights import churn, formulas, segments, service
from crm_backend.insights.history import History, OrderFact, TicketFact
from crm_backend.models import Customer, Feedback, InsightModel, Order, Ticket
from test_inbound import ORDER, add_source, send, shop  # noqa: F401  (fixtures)

# The commands compute at the real time, so the history ends now.
NOW = datetime.now(timezone.utc).replace(microsecond=0)
CUSTOMERS = "/api/v1/customers"


def _order(customer: Customer, number: str, day: datetime, amount: int) -> Order:
    return Order(
        customer=customer, source="shop", external_id=number, amount=Decimal(amount),
        refunded_amount=Decimal(0), currency="GBP", status="paid", ordered_at=day,
    )


def add_history(session, customers: int = 80, seed: int = 7) -> None:
    """Odd customers stop ordering 220-400 days before NOW, after a complaint and a poor score."""
    rng = random.Random(seed)
    for index in range(customers):
        stops = index % 2 == 1
        customer = Customer(name=f"Customer {index}", email=f"customer{index}@example.com")
        session.add(customer)
        day = NOW - timedelta(days=rng.randint(500, 700))
        last = NOW - timedelta(days=rng.randint(220, 400)) if stops else NOW - timedelta(days=1)
        gap, number = rng.randint(20, 60), 0
        while day < last:
            session.add(_order(customer, f"{index}-{number}", day, rng.randint(20, 200)))
            day += timedelta(days=gap + rng.randint(-10, 10))
            number += 1
        rated = last - timedelta(days=rng.randint(5, 30))
        if stops:
            session.add(Ticket(customer=customer, subject="Broken", description="It broke.", category="damaged_or_defective", created_at=rated))
        session.add(Feedback(score=rng.randint(1, 2) if stops else rng.randint(4, 5), customer=customer, created_at=rated))
    session.commit()


@pytest.fixture
def history(app):
    with app.app_context():
        add_history(get_session())


def stored(app, model):
    with app.app_context():
        return list(get_session().scalars(select(model).order_by(model.id)))


# --- churn -------------------------------------------------------------------


def test_churn_features_see_only_what_was_known_at_the_cutoff():
    day = lambda n: NOW - timedelta(days=n)  # noqa: E731
    history = History(
        orders=[OrderFact(Decimal("50"), Decimal("0"), "GBP", "paid", day(400)), OrderFact(Decimal("30"), Decimal("10"), "GBP", "paid", day(100))],
        tickets=[TicketFact(day(90), "refund"), TicketFact(day(50), "order_status"), TicketFact(day(10), "refund")],
    )
    cutoff = day(20)

    features = churn.features(history, cutoff, currency="GBP", churn_days=180, complaint_needs={"refund"})

    assert features == {
        "recency_days": 80, "frequency": 2, "monetary": 70.0, "tenure_days": 380, "recent_orders": 1,
        "recent_tickets": 2, "recent_complaints": 1, "csat_mean": None, "csat_last": None,
    }
    assert churn.churned(history, cutoff, currency="GBP", churn_days=180)
    assert not churn.churned(history, day(120), currency="GBP", churn_days=180)


def test_churn_model_tells_churners_apart_on_the_synthetic_history(app, history):
    with app.app_context():
        training = service.fit_models(get_session(), NOW)

    metrics = training.churn_fit.metrics
    assert metrics["auc"] > 0.8
    assert metrics["base_rate"] == pytest.approx(0.5, abs=0.05)
    assert metrics["rows"] == 80 and metrics["test_rows"] == 20
    assert training.problems == []


def test_churn_model_is_plain_json_that_numpy_applies_like_sklearn(app, history):
    with app.app_context():
        training = service.fit_models(get_session(), NOW)
    params = json.loads(json.dumps(training.churn_fit.params))
    rows = [
        {"recency_days": 5, "frequency": 12, "monetary": 1500, "tenure_days": 600, "recent_orders": 4,
         "recent_tickets": 0, "recent_complaints": 0, "csat_mean": 4.5, "csat_last": 5},
        {"recency_days": 300, "frequency": 3, "monetary": 200, "tenure_days": 600, "recent_orders": 0,
         "recent_tickets": 1, "recent_complaints": 1, "csat_mean": None, "csat_last": None},
    ]

    loyal, lapsed = churn.predict(params, rows)

    assert loyal.probability < 0.5 < lapsed.probability
    assert len(lapsed.factors) == churn.TOP_FACTORS
    assert all(abs(a.effect) >= abs(b.effect) for a, b in zip(lapsed.factors, lapsed.factors[1:]))


def test_too_little_history_trains_no_churn_model_and_says_why(app):
    with app.app_context():
        add_history(get_session(), customers=12)
        metrics = service.refresh_all(get_session(), now=NOW)
        customers = list(get_session().scalars(select(Customer)))

    assert metrics["churn_trained"] is False
    assert "Churn model not trained: only 12 customers had orders before the training cutoff" in metrics["problems"][0]
    assert all(customer.churn_risk is None for customer in customers)
    assert all(customer.lifetime_value is not None for customer in customers)


# --- segments ----------------------------------------------------------------


def _blob(rng: np.random.Generator, recency: float, frequency: float, monetary: float, size: int = 30) -> list[list[float]]:
    centre = np.log1p([recency, frequency, monetary])
    return (centre + rng.normal(0, 0.08, size=(size, 3))).tolist()


def test_segments_choose_k_by_silhouette_and_are_named_by_their_centroids():
    rng = np.random.default_rng(0)
    vectors = _blob(rng, 5, 20, 2000) + _blob(rng, 400, 1, 30) + _blob(rng, 7, 1, 40)

    fit = segments.fit(vectors)

    assert fit.metrics["k"] == 3
    assert fit.metrics["silhouette"] == max(fit.metrics["silhouette_by_k"].values())


def test_segments_prefer_the_finer_k_on_a_near_tie(monkeypatch):
    scores = {2: 0.386, 3: 0.3859, 4: 0.3819, 5: 0.36, 6: 0.35}
    monkeypatch.setattr(segments, "_silhouette", lambda z, labels: scores[len(set(labels))])
    rng = np.random.default_rng(1)
    vectors = _blob(rng, 5, 20, 2000) + _blob(rng, 400, 1, 30) + _blob(rng, 7, 1, 40)

    fit = segments.fit(vectors)

    # 0.3819 is within 1 % of 0.386 (>= 0.38214 is needed): not enough; 0.3859 is.
    assert fit.metrics["k"] == 3
    assert sorted(fit.params["names"]) == ["lapsed", "loyal high spenders", "new customers"]
    assert segments.assign(fit.params, [np.log1p([6, 18, 1800]).tolist()]) == ["loyal high spenders"]


@pytest.mark.parametrize(
    ("centroid", "name"),
    [
        ((-0.8, 1.4, 1.4), "loyal high spenders"),
        ((-0.5, 0.2, -0.1), "active regulars"),
        ((-0.6, -0.7, -0.6), "new customers"),
        ((0.0, 0.9, 0.1), "big spenders"),
        ((0.1, -0.1, -0.3), "regulars"),
        ((0.4, -0.6, -0.4), "occasional low spenders"),
        ((1.2, 0.6, 0.9), "at-risk big spenders"),
        ((0.9, 0.3, 0.4), "fading regulars"),
        ((1.4, -0.7, -0.8), "lapsed"),
    ],
)
def test_segment_names_follow_the_centroid_rules(centroid, name):
    assert segments.name_centroid(*centroid) == name


def test_segments_with_the_same_name_are_numbered_by_spend():
    names = segments.name_segments(np.array([[1.5, -1.0, -1.0], [1.2, -0.8, -0.2], [-1.0, 1.0, 1.0]]))

    assert names == ["lapsed 2", "lapsed 1", "loyal high spenders"]


def test_segments_need_enough_customers():
    with pytest.raises(segments.NotEnoughCustomers, match="only 5 customers with orders"):
        segments.fit([[1.0, 1.0, 1.0]] * 5)


# --- refreshing ----------------------------------------------------------------


def test_refresh_all_fits_the_models_and_fills_every_customers_figures(app, history):
    with app.app_context():
        session = get_session()
        before = {customer.id: customer.updated_at for customer in session.scalars(select(Customer))}
        metrics = service.refresh_all(session, now=NOW)
        customers = list(session.scalars(select(Customer).order_by(Customer.id)))
        kinds = sorted(session.scalars(select(InsightModel.kind)))

    assert kinds == ["churn", "population", "segments"]
    assert metrics["customers"] == 80 and metrics["auc"] > 0.8 and metrics["k"] in range(2, 7)
    assert sum(metrics["tiers"].values()) == 80
    for customer in customers:
        assert customer.lifetime_value >= 0 and 0 <= customer.loyalty_score <= 100
        assert customer.loyalty_tier == formulas.loyalty_tier(customer.loyalty_score)
        assert 0 <= customer.churn_risk <= 1 and customer.segment in metrics["segments"]
        assert customer.insights_updated_at == NOW
        assert customer.updated_at == before[customer.id]  # derived figures are not an edit
    stayed, stopped = customers[0], customers[1]
    assert stayed.churn_risk < 0.5 < stopped.churn_risk
    assert stayed.lifetime_value > stopped.lifetime_value
    assert stopped.insights["churn"]["factors"][0]["text"].endswith("the risk")


def test_refresh_without_models_computes_value_and_leaves_risk_and_segment_empty(app, history):
    with app.app_context():
        session = get_session()
        ids = list(session.scalars(select(Customer.id)))
        service.refresh_customers(session, ids[:3], now=NOW)
        session.commit()
        first = session.get(Customer, ids[0])

        assert first.lifetime_value > 0
        assert (first.churn_risk, first.segment, first.loyalty_score) == (None, None, None)
        assert "run `crm insights recompute`" in first.insights["notes"][0]
        assert session.get(Customer, ids[3]).insights_updated_at is None


def test_refresh_customers_of_a_thousand_ids_takes_a_few_queries(app):
    with app.app_context():
        session = get_session()
        session.execute(insert(Customer), [{"name": f"C{n}", "email": f"c{n}@example.com"} for n in range(1000)])
        ids = list(session.scalars(select(Customer.id)))
        session.execute(insert(Order), [
            {"customer_id": customer_id, "source": "shop", "external_id": str(customer_id), "amount": Decimal(10),
             "refunded_amount": Decimal(0), "currency": "GBP", "status": "paid", "ordered_at": NOW - timedelta(days=30)}
            for customer_id in ids[::2]
        ])
        statements = []
        record = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(get_engine(), "before_cursor_execute", record)
        service.refresh_customers(session, ids, now=NOW)
        event.remove(get_engine(), "before_cursor_execute", record)
        valued = session.scalar(select(func.count()).where(Customer.lifetime_value > 0))

    # The newest models, orders, tickets, feedback, customers; then one UPDATE per changed row at the flush.
    assert len(statements) == 5
    assert valued == 500


# --- ticket priority ---------------------------------------------------------


def _everyone_at_risk_and_top(session) -> None:
    """Stored models by hand: every buyer is at 88% churn risk and tops every loyalty measure."""
    features = list(churn.FEATURES)
    session.add(InsightModel(kind="churn", params={
        "features": features, "log_features": list(churn.LOG_FEATURES), "fill": {"csat_mean": 3.0, "csat_last": 3.0},
        "mean": [0.0] * len(features), "scale": [1.0] * len(features), "coef": [0.0] * len(features),
        "intercept": 2.0, "churn_days": 180, "complaint_needs": ["refund"],
    }))
    session.add(InsightModel(kind="population", params={
        "cut_points": {"recency_days": [1000.0] * 101, "frequency": [0.0] * 101, "monetary": [0.0] * 101},
        "window_churn": 0.4, "churn_days": 180,
    }))
    session.commit()


@pytest.fixture
def valued_customer_at_risk(app):
    with app.app_context():
        session = get_session()
        customer = Customer(name="Ada Lovelace", email="ada@example.com")
        session.add(_order(customer, "A-1", datetime.now(timezone.utc) - timedelta(days=20), 400))
        _everyone_at_risk_and_top(session)
        return customer.id


def test_a_complaint_from_an_at_risk_gold_customer_is_urgent_with_the_reason(client, bearer, valued_customer_at_risk, fake_classifier):
    response = client.post(
        "/api/v1/tickets",
        json={"customer_id": valued_customer_at_risk, "subject": "Refund please", "description": "The kettle broke."},
        headers=bearer("tickets:write"),
    )

    assert response.status_code == 201, response.json
    assert response.json["priority"] == "urgent"
    assert response.json["priority_reason"].startswith("Urgent: a complaint about refund from a Gold customer at 88% churn risk")


def test_a_priority_given_by_the_client_is_kept_without_a_reason(client, bearer, valued_customer_at_risk, fake_classifier):
    response = client.post(
        "/api/v1/tickets",
        json={"customer_id": valued_customer_at_risk, "subject": "Refund please", "description": "x", "priority": "low"},
        headers=bearer("tickets:write"),
    )

    assert (response.json["priority"], response.json["priority_reason"]) == ("low", None)


def test_a_question_from_the_same_customer_stays_normal(client, bearer, valued_customer_at_risk, fake_classifier):
    response = client.post(
        "/api/v1/tickets",
        json={"customer_id": valued_customer_at_risk, "subject": "Where is it", "description": "My parcel?"},
        headers=bearer("tickets:write"),
    )

    assert (response.json["priority"], response.json["priority_reason"]) == ("normal", None)


def test_a_corrected_need_decides_an_automatic_priority_again_through_the_api(client, bearer, valued_customer_at_risk, fake_classifier):
    headers = bearer("tickets:write", "tickets:read")
    ticket = client.post(
        "/api/v1/tickets", json={"customer_id": valued_customer_at_risk, "subject": "Where is it", "description": "My parcel?"}, headers=headers
    ).json

    corrected = client.patch(f"/api/v1/tickets/{ticket['id']}", json={"category": "wrong_or_missing_item"}, headers=headers).json
    both = client.patch(f"/api/v1/tickets/{ticket['id']}", json={"category": "order_status", "priority": "low"}, headers=headers).json

    assert (ticket["priority"], ticket["priority_source"]) == ("normal", "automatic")
    assert (corrected["priority"], corrected["priority_source"]) == ("urgent", "automatic")
    assert corrected["priority_reason"].startswith("Urgent: a complaint about wrong or missing item")
    # The priority given with the correction wins, and is a person's from now on.
    assert (both["priority"], both["priority_source"], both["priority_reason"]) == ("low", "manual", None)


@pytest.mark.parametrize(
    ("tier", "risk", "priority"),
    [("gold", 0.5, "urgent"), ("gold", 0.3, "high"), ("silver", 0.3, "high"), ("silver", 0.29, "normal"),
     ("bronze", 0.49, "normal"), ("bronze", 0.5, "high"), ("gold", None, "normal")],
)
def test_ticket_priority_rule(app, tier, risk, priority):
    customer = Customer(name="X", email="x@example.com", loyalty_tier=tier, loyalty_score=80, churn_risk=risk, insights_updated_at=NOW)

    with app.app_context():
        assert service.ticket_priority(get_session(), customer, "refund")[0] == priority
        assert service.ticket_priority(get_session(), customer, "order_status") == ("normal", None)


# --- triggers and the API ------------------------------------------------------


def test_an_order_event_recomputes_the_customers_value(app, send, shop):
    response = send("shop", shop, "order.created", {**ORDER, "currency": "GBP", "amount": "100.00"})

    with app.app_context():
        customer = get_session().get(Order, response.json["order_id"]).customer
        # One order: a year's revenue of 100 over 3 years at 10%, no attrition known yet.
        assert customer.lifetime_value == formulas.lifetime_value(100.0, 1.0, 0.10, 3)
        assert customer.insights["rfm"]["frequency"] == 1


def test_a_cancelled_order_stops_counting_towards_the_customers_figures(app, send, shop):
    send("shop", shop, "order.created", {**ORDER, "currency": "GBP", "amount": "100.00"})
    order_id = send("shop", shop, "order.created", {**ORDER, "id": "NW-2", "currency": "GBP", "amount": "900.00"}).json["order_id"]
    with app.app_context():
        before = get_session().get(Order, order_id).customer.insights["rfm"]

    response = send("shop", shop, "order.cancelled", {"id": "NW-2"})

    assert response.status_code == 200, response.json
    with app.app_context():
        customer = get_session().get(Order, order_id).customer
        assert (before["frequency"], before["monetary"]) == (2, "1000.00")
        assert (customer.insights["rfm"]["frequency"], customer.insights["rfm"]["monetary"]) == (1, "100.00")
        assert customer.lifetime_value == formulas.lifetime_value(100.0, 1.0, 0.10, 3)


def test_an_order_update_recomputes_the_customers_value(app, send, shop):
    order_id = send("shop", shop, "order.created", {**ORDER, "currency": "GBP", "amount": "100.00", "status": "placed"}).json["order_id"]

    send("shop", shop, "order.updated", {"id": ORDER["id"], "status": "paid", "amount": "150.00"})

    with app.app_context():
        customer = get_session().get(Order, order_id).customer
        assert customer.lifetime_value == formulas.lifetime_value(150.0, 1.0, 0.10, 3)


def test_cancelled_orders_are_neither_churn_features_nor_proof_of_staying():
    day = lambda n: NOW - timedelta(days=n)  # noqa: E731
    history = History(
        orders=[OrderFact(Decimal("50"), Decimal("0"), "GBP", "paid", day(300)), OrderFact(Decimal("80"), Decimal("0"), "GBP", "cancelled", day(100))],
        tickets=[],
    )

    features = churn.features(history, day(20), currency="GBP", churn_days=180, complaint_needs=set())

    assert (features["frequency"], features["monetary"], features["recent_orders"]) == (1.0, 50.0, 0.0)
    # A cancelled order after the cutoff is not an order placed: the customer churned.
    assert churn.churned(history, day(250), currency="GBP", churn_days=180)


def test_fitting_leaves_out_cancelled_orders(app):
    with app.app_context():
        session = get_session()
        add_history(session, customers=40)
        kept = service.fit_models(session, NOW)
        session.execute(insert(Order), [
            {"customer_id": customer_id, "source": "shop", "external_id": f"X-{customer_id}", "amount": Decimal(5000),
             "refunded_amount": Decimal(0), "currency": "GBP", "status": "cancelled", "ordered_at": NOW - timedelta(days=3)}
            for customer_id in session.scalars(select(Customer.id))
        ])
        with_cancelled = service.fit_models(session, NOW)

    assert with_cancelled.churn_fit.metrics == kept.churn_fit.metrics
    assert with_cancelled.population_fit.params == kept.population_fit.params
    assert with_cancelled.segment_fit.metrics == kept.segment_fit.metrics


def test_feedback_recomputes_the_customers_insights(app, client, bearer, add_customers):
    [customer_id] = add_customers(("Ada Lovelace", "ada@example.com"))

    client.post("/api/v1/feedback", json={"score": 2, "customer_id": customer_id}, headers=bearer("feedback:write"))

    with app.app_context():
        assert get_session().get(Customer, customer_id).insights_updated_at is not None


def test_customers_show_their_insights_and_can_be_filtered_by_them(app, client, bearer, history):
    with app.app_context():
        service.refresh_all(get_session(), now=NOW)
    reader = bearer("customers:read")

    one = client.get(f"{CUSTOMERS}/2", headers=reader).json
    risky = client.get(f"{CUSTOMERS}?min_churn_risk=0.5&limit=100", headers=reader).json["items"]
    in_segment = client.get(f"{CUSTOMERS}?segment={one['segment']}&limit=100", headers=reader).json["items"]
    bronze = client.get(f"{CUSTOMERS}?loyalty_tier=bronze&limit=100", headers=reader).json["items"]

    assert Decimal(one["lifetime_value"]) >= 0 and one["lifetime_value"].count(".") == 1
    assert one["loyalty_tier"] in ("gold", "silver", "bronze") and isinstance(one["loyalty_score"], int)
    assert one["churn_risk"] > 0.5 and one["insights"]["churn"]["factors"]
    assert datetime.fromisoformat(one["insights_updated_at"]) == NOW
    assert risky and all(customer["churn_risk"] >= 0.5 for customer in risky)
    assert one["id"] in [customer["id"] for customer in in_segment]
    assert all(customer["loyalty_tier"] == "bronze" for customer in bronze)


def test_unknown_tier_filter_is_422(client, bearer):
    response = client.get(f"{CUSTOMERS}?loyalty_tier=platinum", headers=bearer("customers:read"))

    assert response.status_code == 422


# --- commands ------------------------------------------------------------------


def test_recompute_prints_figures_and_a_json_last_line(run_cli, history):
    result = run_cli("insights", "recompute")

    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["customers"] == 80 and figures["churn_trained"] and figures["segments_trained"]
    assert "ROC AUC" in result.output and "chosen by silhouette" in result.output


def test_recompute_without_training_keeps_the_models(app, run_cli, history):
    run_cli("insights", "recompute")
    result = run_cli("insights", "recompute", "--no-train")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["churn_trained"] is False
    assert len(stored(app, InsightModel)) == 3


def test_evaluate_measures_without_saving_unless_asked(app, run_cli, history):
    measured = run_cli("insights", "evaluate")
    saved = run_cli("insights", "evaluate", "--save")

    figures = json.loads(measured.output.strip().splitlines()[-1])
    assert measured.exit_code == 0 and figures["auc"] > 0.8 and figures["base_rate"] == pytest.approx(0.5, abs=0.05)
    assert set(figures["silhouette_by_k"]) <= {"2", "3", "4", "5", "6"} and figures["k"] is not None
    assert saved.exit_code == 0 and len(stored(app, InsightModel)) == 3


def test_evaluate_on_an_empty_database_says_why_in_a_sentence(run_cli):
    result = run_cli("insights", "evaluate")

    assert result.exit_code == 0
    assert "Churn model not trained: only 0 customers had orders" in result.output
    assert "Segments not fitted: only 0 customers with orders" in result.output
    assert "Traceback" not in result.output


def test_commands_on_an_unmigrated_database_say_to_run_init_db(unmigrated_app):
    result = unmigrated_app.test_cli_runner().invoke(args=["insights", "recompute"])

    assert result.exit_code == 1
    assert result.output.strip() == "Error: database is not initialised; run `crm init-db`"


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [("CHURN_DAYS", 0, "CHURN_DAYS 0 is not"), ("INSIGHTS_CURRENCY", "POUNDS", "INSIGHTS_CURRENCY 'POUNDS' is not"),
     ("INSIGHTS_DISCOUNT_RATE", 1.5, "INSIGHTS_DISCOUNT_RATE 1.5 is not"), ("INSIGHTS_HORIZON_YEARS", 0, "INSIGHTS_HORIZON_YEARS 0 is not")],
)
def test_settings_that_cannot_work_stop_the_app_in_one_sentence(database_url, setting, value, message):
    from crm_backend import create_app

    with pytest.raises(service.SettingsError, match=message):
        create_app({"TESTING": True, "DATABASE_URL": database_url, setting: value})
