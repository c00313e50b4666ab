"""A person visibly there (issue 21): the customer's chat is told when an agent
joins, types and leaves, and where it stands in the queue with the measured
wait; the agent reads what the customer said in words (buttons by their
titles) and a reason and ticket built from the problem, not from "this bot is
useless"."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from crm_backend import rasa
from crm_backend.db import get_session, utcnow
from crm_backend.handoffs import queue, summary
from crm_backend.handoffs import service as handoffs
from crm_backend.models import Customer, Handoff, HandoffMessage
from fakes import FakeRasa
from test_console import SAM, Agent_, alex, console_app, sign_in  # noqa: F401  (fixtures)

HANDOFFS = "/api/v1/handoffs"


@pytest.fixture
def rasa_double(monkeypatch):
    fake = FakeRasa()
    monkeypatch.setattr("crm_backend.handoffs.views.rasa_client", lambda: fake)
    monkeypatch.setattr("crm_backend.console.api.rasa_client", lambda: fake)
    return fake


@pytest.fixture
def needs(monkeypatch):
    """A need classifier that reads needs the way the demo model does, by keywords."""
    from crm_backend.needs import Prediction, service

    rules = [
        ("useless", "service_complaint", 0.95),
        ("rude", "service_complaint", 0.9),
        ("parcel", "delivery_problem", 0.97),
        ("refund", "refund", 0.91),
        ("arrived", "delivery_problem", 0.93),
        ("cracked", "damaged_or_defective", 0.88),
        ("person", "service_complaint", 0.8),
    ]

    def classify(text: str):
        for word, label, confidence in rules:
            if word in text.lower():
                return Prediction(label=label, confidence=confidence, top=[(label, confidence)])
        return Prediction(label="other", confidence=0.9, top=[("other", 0.9)])

    monkeypatch.setattr(service, "classify", classify)


def queue_one(app, conversation_id="conv-1", reason="wants a refund", transcript=None, created_at=None) -> int:
    with app.app_context():
        session = get_session()
        customer = session.scalars(select(Customer).where(Customer.email == "ada@example.com")).one_or_none()
        if customer is None:
            customer = Customer(name="Ada Lovelace", email="ada@example.com")
            session.add(customer)
            session.flush()
        handoff = handoffs.request_handoff(
            session, conversation_id=conversation_id, reason=reason, customer=customer, transcript=transcript or []
        )
        if created_at is not None:
            handoff.created_at = created_at
        session.commit()
        return handoff.id


# ---- the widget is told: joined, typing, left -----------------------------------------------


def test_claiming_tells_the_customers_chat_that_the_agent_joined(console_app, alex, needs, rasa_double):
    handoff_id = queue_one(console_app)
    assert alex.post(f"/console/api/handoffs/{handoff_id}/claim").status_code == 200
    assert rasa_double.presence == [("conv-1", "joined", "Alex Agent")]
    # Claiming again (a second tab) does not say it twice.
    alex.post(f"/console/api/handoffs/{handoff_id}/claim")
    assert rasa_double.presence == [("conv-1", "joined", "Alex Agent")]


def test_a_claim_stands_when_the_chat_cannot_be_told(console_app, alex, needs, rasa_double):
    handoff_id = queue_one(console_app)
    rasa_double.down = True
    claimed = alex.post(f"/console/api/handoffs/{handoff_id}/claim")
    assert claimed.status_code == 200 and claimed.json["status"] == "claimed"


def test_the_api_claim_tells_the_customer_too(console_app, client, bearer, needs, rasa_double):
    handoff_id = queue_one(console_app)
    response = client.post(
        f"{HANDOFFS}/{handoff_id}/claim", json={"agent_email": "sam@example.com"}, headers=bearer("handoffs:write")
    )
    assert response.status_code == 200
    assert rasa_double.presence == [("conv-1", "joined", "Sam Agent")]


def test_typing_is_shown_to_the_customer_at_most_every_few_seconds(console_app, alex, needs, rasa_double, monkeypatch):
    from crm_backend.console import api

    clock = [1000.0]
    monkeypatch.setattr(api.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(api, "_typing_sent", {})
    handoff_id = queue_one(console_app)
    alex.post(f"/console/api/handoffs/{handoff_id}/claim")
    url = f"/console/api/handoffs/{handoff_id}/typing"

    assert alex.post(url).json == {"sent": True}
    assert alex.post(url).json == {"sent": False}  # a keystroke later
    clock[0] += api.TYPING_INTERVAL_SECONDS
    assert alex.post(url).json == {"sent": True}
    assert [p for p in rasa_double.presence if p[1] == "typing"] == [("conv-1", "typing", "Alex Agent")] * 2


def test_only_the_agent_who_has_the_conversation_is_shown_typing(console_app, alex, needs, rasa_double, monkeypatch):
    from crm_backend.console import api

    monkeypatch.setattr(api, "_typing_sent", {})
    handoff_id = queue_one(console_app)
    url = f"/console/api/handoffs/{handoff_id}/typing"
    assert alex.post(url).status_code == 409  # not claimed yet
    sam = Agent_(console_app, *SAM)
    sam.post(f"/console/api/handoffs/{handoff_id}/claim")
    assert alex.post(url).status_code == 409  # Sam's
    assert alex.post("/console/api/handoffs/99999/typing").status_code == 404
    # Without the session's CSRF token nothing is sent.
    assert sam.client.post(url).status_code == 403
    assert [p for p in rasa_double.presence if p[1] == "typing"] == []


def test_resolving_says_the_person_left_before_the_assistant_speaks_again(console_app, alex, needs, rasa_double):
    handoff_id = queue_one(console_app)
    alex.post(f"/console/api/handoffs/{handoff_id}/claim")
    assert alex.post(f"/console/api/handoffs/{handoff_id}/resolve").status_code == 200
    assert rasa_double.presence == [("conv-1", "joined", "Alex Agent"), ("conv-1", "left", "Alex Agent")]
    assert rasa_double.resumed == [("conv-1", "Alex Agent")]


def test_closing_a_request_nobody_claimed_says_nobody_left(console_app, alex, needs, rasa_double):
    handoff_id = queue_one(console_app)
    assert alex.post(f"/console/api/handoffs/{handoff_id}/resolve").status_code == 200
    assert rasa_double.presence == []


def test_the_rasa_client_sends_presence_as_custom_data_without_text(rasa_posts):
    calls = rasa_posts
    client = rasa.RasaClient(url="http://rasa:5005", token="t")
    client.send_presence("conv 1", "joined", "Sam")
    client.send_presence("conv-1", "typing", "Sam")
    client.resume("conv-1", "Sam", person_left=True)

    joined, typing, resumed, triggered = calls
    assert joined[0] == "http://rasa:5005/conversations/conv%201/tracker/events"
    assert joined[1] == [
        {"event": "pause"},
        {"event": "bot", "text": None, "data": {"custom": {"data": {"presence": "joined", "agent_name": "Sam"}}}},
    ]
    assert joined[2] == {"output_channel": "socketio", "execute_side_effects": "true", "token": "t"}
    assert typing[1] == [{"event": "bot", "text": None, "data": {"custom": {"data": {"presence": "typing", "agent_name": "Sam"}}}}]
    assert resumed[1][0]["data"]["custom"]["data"] == {"presence": "left", "agent_name": "Sam"}
    assert [e["event"] for e in resumed[1]] == ["bot", "resume", "action"]
    assert resumed[2]["execute_side_effects"] == "true"
    assert triggered[0].endswith("/trigger_intent")
    with pytest.raises(ValueError):
        client.send_presence("conv-1", "dancing", "Sam")


# ---- the place in the queue and the measured wait ---------------------------------------------


def test_the_answer_to_a_handoff_request_says_its_place_and_no_wait_without_measurements(
    console_app, client, bearer, needs
):
    bot = bearer("handoffs:write", "customers:read")
    body = {"reason": "my refund is late", "customer_email": "ada@example.com"}
    first = client.post(HANDOFFS, json={**body, "conversation_id": "a"}, headers=bot).json
    second = client.post(HANDOFFS, json={**body, "conversation_id": "b"}, headers=bot).json
    assert first["queue"] == {"position": 1, "expected_wait_seconds": None}
    assert second["queue"] == {"position": 2, "expected_wait_seconds": None}


def test_the_expected_wait_is_the_median_of_recent_measured_waits(console_app, needs):
    now = utcnow()
    with console_app.app_context():
        session = get_session()
        customer = Customer(name="Ada", email="ada@example.com")
        session.add(customer)
        session.flush()
        # Claimed after 60, 120 and 600 seconds this week; one long ago that no longer counts.
        for index, (wait, age) in enumerate([(60, 1), (120, 2), (600, 3), (99999, 60)]):
            created = now - timedelta(days=age)
            session.add(
                Handoff(
                    conversation_id=f"old-{index}", customer_id=customer.id, reason="x", status="resolved",
                    created_at=created, claimed_at=created + timedelta(seconds=wait), resolved_at=created + timedelta(seconds=wait + 5),
                )
            )
        session.commit()
        assert queue.expected_wait_seconds(session, now=now) == 120.0
        # With fewer than three measurements there is no estimate.
        assert queue.expected_wait_seconds(session, now=now + timedelta(days=27)) is None


def test_a_claimed_handoff_has_no_place_in_the_queue(console_app, alex, needs, rasa_double):
    first, second = queue_one(console_app, "a"), queue_one(console_app, "b")
    alex.post(f"/console/api/handoffs/{first}/claim")
    with console_app.app_context():
        session = get_session()
        assert queue.position(session, session.get(Handoff, first)) is None
        assert queue.position(session, session.get(Handoff, second)) == 1


# ---- what the agent reads ---------------------------------------------------------------------

ANGRY = [
    {"sender": "customer", "text": "/greet"},
    {"sender": "bot", "text": "Hi! How can I help?"},
    {"sender": "customer", "text": "my parcel never came, it's been two weeks"},
    {"sender": "bot", "text": "Sorry! Delivery usually takes 3-5 days."},
    {"sender": "customer", "text": "I know. And the mug I did get arrived cracked"},
    {"sender": "customer", "text": "[request_human]"},
    {"sender": "customer", "text": "this bot is useless, get me a person"},
]


def test_the_reason_comes_from_the_problem_not_from_the_anger_at_the_bot(console_app, needs):
    handoff_id = queue_one(console_app, reason="this bot is useless, get me a person", transcript=ANGRY)
    with console_app.app_context():
        handoff = get_session().get(Handoff, handoff_id)
        assert handoff.reason == "my parcel never came, it's been two weeks · I know. And the mug I did get arrived cracked"
        assert handoff.category == "delivery_problem"


def test_a_reason_that_names_the_problem_is_kept(console_app, needs):
    handoff_id = queue_one(console_app, reason="a person please, my refund is late", transcript=ANGRY)
    with console_app.app_context():
        assert get_session().get(Handoff, handoff_id).reason == "a person please, my refund is late"


def test_a_complaint_about_the_service_itself_is_a_problem_to_solve(console_app, needs):
    assert summary.read_line("the driver was rude to my mother").substantive
    assert not summary.read_line("you're useless").substantive
    assert not summary.read_line("/request_human").substantive
    assert not summary.read_line("ada@example.com").substantive


def test_without_a_need_model_words_beyond_the_request_still_tell_the_problem(console_app, no_classifier):
    with console_app.app_context():
        assert summary.read_line("the kettle I got leaks everywhere").substantive
        assert not summary.read_line("get me a real human now").substantive
        assert summary.reason_for("human please", [{"sender": "customer", "text": "the kettle I got leaks everywhere"}]) == (
            "the kettle I got leaks everywhere",
            "other",
            None,
        )


def test_the_new_ticket_is_prefilled_from_what_the_customer_said(console_app, alex, needs, rasa_double):
    handoff_id = queue_one(console_app, reason="this bot is useless, get me a person", transcript=ANGRY)
    with console_app.app_context():
        session = get_session()
        session.add(HandoffMessage(handoff_id=handoff_id, sender="customer", text="also I want a refund for the mug"))
        session.commit()
    page = alex.client.get(f"/console/handoffs/{handoff_id}").text
    subject = re.search(r'id="ticket-subject"[^>]*value="([^"]*)"', page).group(1)
    description = re.search(r'id="ticket-description"[^>]*>([^<]*)</textarea>', page).group(1)
    assert subject == "my parcel never came, it&#39;s been two weeks"
    assert description.splitlines() == [
        "my parcel never came, it&#39;s been two weeks",
        "I know. And the mug I did get arrived cracked",
        "also I want a refund for the mug",
    ]
    assert "useless" not in description


def test_the_conversation_shows_buttons_by_meaning_and_hides_the_widgets_start(console_app, alex, needs):
    handoff_id = queue_one(console_app, reason="refund please", transcript=ANGRY)
    with console_app.app_context():
        session = get_session()
        session.add(HandoffMessage(handoff_id=handoff_id, sender="bot", text="I can open a ticket now."))
        session.add(HandoffMessage(handoff_id=handoff_id, sender="customer", text='/inform{"feedback_score":"5"}'))
        session.commit()
    page = alex.client.get(f"/console/handoffs/{handoff_id}").text
    log = page[page.index('id="log"') :]
    assert "/greet" not in log and "[greet]" not in log
    assert "[request_human]" not in log and "Chose: request human" in log
    assert "feedback_score" not in log and "Chose: inform" in log
    # The assistant's words after the handoff are shown, as the assistant's.
    assert re.search(r'msg-bot"[^>]*>\s*<span class="msg-who">Assistant</span>\s*<p class="bubble">I can open a ticket now.', log)
