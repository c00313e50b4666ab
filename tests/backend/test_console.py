"""The agent console (/console) with the Flask test client: sign-in, CSRF,
the queue, claim, reply, resolve, tickets and need corrections, the live
event stream."""

import json
import re
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from crm_backend.agents.service import create_agent
from crm_backend.needs.corrections import ticket_corrections
from crm_backend.db import get_session
from crm_backend.handoffs import service as handoffs
from crm_backend.models import Agent, AuditEvent, Customer, Handoff, HandoffMessage, Ticket
from fakes import FakeRasa
from test_insights_models import _everyone_at_risk_and_top, _order

ALEX = ("alex@example.com", "correct horse 1")
SAM = ("sam@example.com", "correct horse 2")


@pytest.fixture
def console_app(app, tmp_path):
    app.config.update(
        CANNED_REPLIES_PATH=str(tmp_path / "canned_replies.json"),
        CONSOLE_SSE_POLL_SECONDS=0.02,
        CONSOLE_SSE_HEARTBEAT_SECONDS=0.1,
        CONSOLE_SSE_MAX_SECONDS=5,
    )
    with app.app_context():
        session = get_session()
        create_agent(session, email=ALEX[0], password=ALEX[1], name="Alex Agent")
        create_agent(session, email=SAM[0], password=SAM[1], name="Sam Agent")
        session.commit()
    return app


@pytest.fixture
def fake_rasa(monkeypatch):
    fake = FakeRasa()
    monkeypatch.setattr("crm_backend.console.api.rasa_client", lambda: fake)
    return fake


def sign_in(client, email: str, password: str, **extra):
    form = client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    return client.post("/console/login", data={"email": email, "password": password, "csrf_token": token, **extra})


class Agent_:
    """A browser of one agent: a test client with a session and its CSRF token."""

    def __init__(self, app, email: str, password: str):
        self.client = app.test_client()
        assert sign_in(self.client, email, password).status_code == 302
        page = self.client.get("/console")
        self.token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)

    def post(self, url: str, body: dict | None = None, **kwargs):
        return self.client.post(url, json=body or {}, headers={"X-CSRF-Token": self.token}, **kwargs)

    def patch(self, url: str, body: dict):
        return self.client.patch(url, json=body, headers={"X-CSRF-Token": self.token})

    def put(self, url: str, body: dict):
        return self.client.put(url, json=body, headers={"X-CSRF-Token": self.token})


@pytest.fixture
def alex(console_app):
    return Agent_(console_app, *ALEX)


@pytest.fixture
def sam(console_app):
    return Agent_(console_app, *SAM)


TRANSCRIPT = [
    {"sender": "customer", "text": "my blender arrived cracked"},
    {"sender": "bot", "text": "Sorry to hear that! Shall I open a ticket?"},
    {"sender": "customer", "text": "no, I want to talk to a real person"},
]


@pytest.fixture
def queue_handoff(console_app, fake_classifier):
    """Queue a handoff as the bot would; returns its id."""

    def queue(conversation_id: str = "conv-1", email: str = "ada@example.com", name: str = "Ada Lovelace", **fields) -> int:
        with console_app.app_context():
            session = get_session()
            customer = session.scalars(select(Customer).where(Customer.email == email)).one_or_none()
            if customer is None:
                customer = Customer(name=name, email=email)
                session.add(customer)
                session.flush()
            handoff = handoffs.request_handoff(
                session,
                conversation_id=conversation_id,
                reason=fields.pop("reason", "wants a refund for a cracked blender"),
                customer=customer,
                transcript=fields.pop("transcript", TRANSCRIPT),
                **fields,
            )
            session.commit()
            return handoff.id

    return queue


def audit_actors(app, action: str) -> list[tuple[str, str]]:
    with app.app_context():
        events = get_session().scalars(select(AuditEvent).where(AuditEvent.action == action)).all()
        return [(event.actor_type, event.actor_name) for event in events]


# --- signing in and out ------------------------------------------------------


def test_without_a_session_pages_redirect_to_sign_in_and_the_api_answers_401(console_app, queue_handoff):
    client = console_app.test_client()
    handoff_id = queue_handoff()

    page = client.get(f"/console/handoffs/{handoff_id}")
    api = client.get(f"/console/api/handoffs/{handoff_id}")
    events = client.get("/console/events")

    assert page.status_code == 302
    assert page.headers["Location"] == f"/console/login?next=/console/handoffs/{handoff_id}"
    assert api.status_code == events.status_code == 401
    assert api.content_type == "application/problem+json"
    assert "Sign in" in api.json["detail"]


def test_an_agent_signs_in_with_a_hardened_cookie_and_signs_out(console_app):
    client = console_app.test_client()

    signed_in = sign_in(client, "ALEX@example.com ", ALEX[1])
    cookie = signed_in.headers["Set-Cookie"]
    queue = client.get("/console")
    token = re.search(r'name="csrf_token" value="([^"]+)"', queue.text).group(1)
    signed_out = client.post("/console/logout", data={"csrf_token": token})
    after = client.get("/console")

    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/console"
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert queue.status_code == 200 and "Alex Agent" in queue.text
    assert queue.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in queue.headers["Content-Security-Policy"]
    assert signed_out.status_code == 302 and signed_out.headers["Location"] == "/console/login?notice=signed_out"
    assert after.status_code == 302


def test_a_wrong_password_and_an_unknown_agent_get_the_same_refusal(console_app):
    wrong = sign_in(console_app.test_client(), ALEX[0], "not the password")
    unknown = sign_in(console_app.test_client(), "nobody@example.com", ALEX[1])

    assert wrong.status_code == unknown.status_code == 401
    message = "That e-mail address and password do not match an agent account."
    assert message in wrong.text and message in unknown.text
    assert console_app.test_client().get("/console").status_code == 302


def test_sign_in_goes_back_to_the_page_asked_for_but_never_off_the_console(console_app):
    inside = sign_in(console_app.test_client(), *ALEX, next="/console/handoffs/7")
    outside = sign_in(console_app.test_client(), *ALEX, next="https://evil.example/console")
    sneaky = sign_in(console_app.test_client(), *ALEX, next="//evil.example/console")

    assert inside.headers["Location"] == "/console/handoffs/7"
    assert outside.headers["Location"] == sneaky.headers["Location"] == "/console"


# Failed sign-ins slow down per (e-mail, address) instead of locking out:
# tests/backend/test_console_sessions.py.


def test_successful_sign_ins_do_not_count_against_the_limit(console_app):
    statuses = [sign_in(console_app.test_client(), *ALEX).status_code for _ in range(8)]
    assert statuses == [302] * 8


def test_a_changed_password_ends_existing_sessions(console_app, alex):
    with console_app.app_context():
        session = get_session()
        agent = session.scalars(select(Agent).where(Agent.email == ALEX[0])).one()
        agent.password_hash = agent.password_hash + "x"  # as if changed
        session.commit()

    assert alex.client.get("/console").status_code == 302


# --- CSRF ---------------------------------------------------------------------


def test_changes_without_the_sessions_csrf_token_are_refused(console_app, alex, queue_handoff, fake_rasa):
    handoff_id = queue_handoff()
    other = Agent_(console_app, *SAM)  # a valid token, but of another session

    missing = alex.client.post(f"/console/api/handoffs/{handoff_id}/claim", json={})
    foreign = alex.client.post(f"/console/api/handoffs/{handoff_id}/claim", json={}, headers={"X-CSRF-Token": other.token})
    forged_logout = alex.client.post("/console/logout", data={})

    assert missing.status_code == foreign.status_code == 403
    assert missing.content_type == "application/problem+json"
    assert "CSRF" in missing.json["detail"]
    assert forged_logout.status_code == 403
    assert alex.client.get("/console").status_code == 200  # still signed in
    with console_app.app_context():
        assert get_session().get(Handoff, handoff_id).status == "queued"


def test_a_sign_in_form_without_its_token_is_refused(console_app):
    response = console_app.test_client().post("/console/login", data={"email": ALEX[0], "password": ALEX[1]})
    assert response.status_code == 403
    assert "expired" in response.text


# --- the queue ------------------------------------------------------------------


def test_the_queue_shows_queued_and_claimed_handoffs_oldest_first(console_app, alex, sam, queue_handoff, fake_rasa):
    ada = queue_handoff("conv-1", reason="refund for the blender please")
    grace = queue_handoff("conv-2", "grace@example.com", "Grace Hopper", reason="where is my order")
    alan = queue_handoff("conv-3", "alan@example.com", "Alan Turing", reason="I was charged twice")
    assert sam.post(f"/console/api/handoffs/{grace}/claim").status_code == 200
    assert alex.post(f"/console/api/handoffs/{alan}/claim").status_code == 200
    assert alex.post(f"/console/api/handoffs/{alan}/resolve").status_code == 200

    page = alex.client.get("/console").text

    names = re.findall(r'<strong class="qi-name">([^<]+)</strong>', page)
    assert names == ["Ada Lovelace", "Grace Hopper"]
    assert f'data-handoff-id="{ada}"' in page and "refund for the blender please" in page
    assert "Refund" in page  # the need, from the classified reason
    assert "Waiting" in page and "Sam Agent" in page
    assert 'data-count="queued">1<' in page


def test_the_conversation_page_shows_the_transcript_and_later_messages_escaped(console_app, alex, queue_handoff):
    handoff_id = queue_handoff(transcript=[{"sender": "customer", "text": "<script>alert('x')</script> help"}])
    with console_app.app_context():
        session = get_session()
        handoffs.add_customer_message(session, session.get(Handoff, handoff_id), "hello? anyone there?", "event-1")
        session.commit()

    page = alex.client.get(f"/console/handoffs/{handoff_id}")

    assert page.status_code == 200
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; help" in page.text
    assert "<script>alert" not in page.text
    assert "hello? anyone there?" in page.text
    assert "Handed to a person" in page.text
    assert alex.client.get("/console/handoffs/999").status_code == 404


# --- claim, reply, resolve -------------------------------------------------------


def test_of_two_agents_only_the_first_claims_and_the_second_is_told_who(console_app, alex, sam, queue_handoff):
    handoff_id = queue_handoff()

    first = alex.post(f"/console/api/handoffs/{handoff_id}/claim")
    second = sam.post(f"/console/api/handoffs/{handoff_id}/claim")

    assert first.status_code == 200
    assert (first.json["status"], first.json["agent_name"], first.json["mine"]) == ("claimed", "Alex Agent", True)
    assert second.status_code == 409
    assert second.json["detail"] == "Alex Agent (alex@example.com) already claimed this conversation."
    assert second.json["agent_name"] == "Alex Agent"
    assert audit_actors(console_app, "handoff.claimed") == [("agent", "alex@example.com")]


def test_concurrent_claims_from_the_console_have_exactly_one_winner(console_app, queue_handoff):
    handoff_id = queue_handoff()
    browsers = [Agent_(console_app, *who) for who in (ALEX, SAM, ALEX, SAM)]
    barrier = threading.Barrier(len(browsers))
    statuses: list[int] = []

    def claim(browser):
        barrier.wait()
        statuses.append(browser.post(f"/console/api/handoffs/{handoff_id}/claim").status_code)

    threads = [threading.Thread(target=claim, args=(browser,)) for browser in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    with console_app.app_context():
        winner = get_session().get(Handoff, handoff_id).agent_email
    assert sorted(statuses) == [200, 200, 409, 409]  # the winner's second click is harmless
    assert len(audit_actors(console_app, "handoff.claimed")) == 1
    assert winner in (ALEX[0], SAM[0])


def test_a_reply_reaches_the_customer_through_rasa_with_the_agents_name(console_app, alex, queue_handoff, fake_rasa):
    handoff_id = queue_handoff()
    too_early = alex.post(f"/console/api/handoffs/{handoff_id}/messages", {"text": "Hello!"})
    alex.post(f"/console/api/handoffs/{handoff_id}/claim")

    sent = alex.post(f"/console/api/handoffs/{handoff_id}/messages", {"text": "  Hi Ada, I'm on it.  "})
    empty = alex.post(f"/console/api/handoffs/{handoff_id}/messages", {"text": "   "})

    assert too_early.status_code == 409 and "claim it" in too_early.json["detail"]
    assert sent.status_code == 201
    assert sent.json["message"]["text"] == "Hi Ada, I'm on it."
    assert "Hi Ada, I&#39;m on it." in sent.json["html"] and f'data-message-id="{sent.json["message"]["id"]}"' in sent.json["html"]
    assert fake_rasa.sent == [("conv-1", "Hi Ada, I'm on it.", "Alex Agent")]
    assert empty.status_code == 422
    with console_app.app_context():
        [message] = get_session().scalars(select(HandoffMessage)).all()
        assert (message.sender, message.agent_name) == ("agent", "Alex Agent")
    assert audit_actors(console_app, "handoff.message_sent") == [("agent", "alex@example.com")]


def test_a_reply_that_cannot_reach_rasa_is_not_stored_and_says_so(console_app, alex, queue_handoff, fake_rasa):
    handoff_id = queue_handoff()
    alex.post(f"/console/api/handoffs/{handoff_id}/claim")
    fake_rasa.down = True

    response = alex.post(f"/console/api/handoffs/{handoff_id}/messages", {"text": "Hello?"})

    assert response.status_code == 503
    assert "Nothing was stored" in response.json["detail"]
    with console_app.app_context():
        assert get_session().scalars(select(HandoffMessage)).all() == []


def test_only_the_claiming_agent_replies_or_resolves(console_app, alex, sam, queue_handoff, fake_rasa):
    handoff_id = queue_handoff()
    alex.post(f"/console/api/handoffs/{handoff_id}/claim")

    reply = sam.post(f"/console/api/handoffs/{handoff_id}/messages", {"text": "Hi"})
    resolve = sam.post(f"/console/api/handoffs/{handoff_id}/resolve")

    assert reply.status_code == resolve.status_code == 409
    assert fake_rasa.sent == [] and fake_rasa.resumed == []


def test_resolving_hands_the_conversation_back_to_the_assistant(console_app, alex, queue_handoff, fake_rasa):
    handoff_id = queue_handoff()
    alex.post(f"/console/api/handoffs/{handoff_id}/claim")

    resolved = alex.post(f"/console/api/handoffs/{handoff_id}/resolve")
    again = alex.post(f"/console/api/handoffs/{handoff_id}/resolve")

    assert resolved.status_code == 200 and resolved.json["status"] == "resolved"
    assert fake_rasa.resumed == [("conv-1", "Alex Agent")]
    assert again.status_code == 409
    assert audit_actors(console_app, "handoff.resolved") == [("agent", "alex@example.com")]
    assert 'class="qi-name"' not in alex.client.get("/console").text  # gone from the queue


# --- tickets and the need ----------------------------------------------------------


def test_a_ticket_is_opened_from_the_conversation_and_linked_to_it(console_app, alex, queue_handoff):
    handoff_id = queue_handoff()

    created = alex.post(
        f"/console/api/handoffs/{handoff_id}/ticket",
        {"subject": "Cracked blender", "description": "Arrived cracked; wants a refund.", "priority": "high", "category": None},
    )
    twice = alex.post(f"/console/api/handoffs/{handoff_id}/ticket", {"subject": "again", "description": "again"})
    panel = alex.client.get(f"/console/handoffs/{handoff_id}/panel")

    assert created.status_code == 201
    ticket = created.json
    assert (ticket["category"], ticket["category_source"]) == ("refund", "classifier")
    assert (ticket["channel"], ticket["conversation_id"], ticket["assignee"], ticket["priority"]) == (
        "chat",
        "conv-1",
        "alex@example.com",
        "high",
    )
    assert twice.status_code == 409 and ticket["number"] in twice.json["detail"]
    assert ticket["number"] in panel.text and "Update ticket" in panel.text
    with console_app.app_context():
        assert get_session().get(Handoff, handoff_id).ticket_number == ticket["number"]
    assert audit_actors(console_app, "ticket.created") == [("agent", "alex@example.com")]
    assert audit_actors(console_app, "handoff.updated") == [("agent", "alex@example.com")]


def test_the_linked_ticket_is_updated_with_the_ticket_rules(console_app, alex, queue_handoff):
    handoff_id = queue_handoff()
    ticket = alex.post(f"/console/api/handoffs/{handoff_id}/ticket", {"subject": "Cracked", "description": "Cracked."}).json

    updated = alex.patch(f"/console/api/tickets/{ticket['id']}", {"status": "pending", "priority": "urgent"})
    recategorised = alex.patch(f"/console/api/tickets/{ticket['id']}", {"category": "damaged_or_defective"})
    closed_too_early = alex.patch(f"/console/api/tickets/{ticket['id']}", {"status": "closed"})
    note = alex.post(f"/console/api/tickets/{ticket['id']}/notes", {"body": "Customer sent photos."})

    assert updated.status_code == 200 and (updated.json["status"], updated.json["priority"]) == ("pending", "urgent")
    assert recategorised.json["category"] == "damaged_or_defective"
    assert recategorised.json["category_source"] == "manual"
    assert closed_too_early.status_code == 409 and closed_too_early.content_type == "application/problem+json"
    assert note.status_code == 201
    with console_app.app_context():
        [comment] = get_session().get(Ticket, ticket["id"]).comments
        assert (comment.author_type, comment.author_name, comment.public) == ("agent", "Alex Agent", False)


def test_correcting_the_need_updates_the_handoff_and_teaches_the_classifier(console_app, alex, queue_handoff):
    handoff_id = queue_handoff()
    alex.post(f"/console/api/handoffs/{handoff_id}/ticket", {"subject": "Cracked blender", "description": "Cracked."})

    corrected = alex.post(f"/console/api/handoffs/{handoff_id}/category", {"category": "damaged_or_defective"})
    invalid = alex.post(f"/console/api/handoffs/{handoff_id}/category", {"category": "Not A Label!"})

    assert corrected.status_code == 200
    assert corrected.json["category"] == "damaged_or_defective"
    assert corrected.json["ticket"]["category_source"] == "manual"
    assert invalid.status_code == 422
    with console_app.test_request_context():
        assert [(c.text, c.label) for c in ticket_corrections()] == [("Cracked blender\nCracked.", "damaged_or_defective")]
    assert ("agent", "alex@example.com") in audit_actors(console_app, "ticket.updated")


@pytest.fixture
def ada_at_risk(console_app):
    """Ada, the customer of queue_handoff, a Gold customer at 88% churn risk (stored models by hand)."""
    with console_app.app_context():
        session = get_session()
        customer = Customer(name="Ada Lovelace", email="ada@example.com")
        session.add(_order(customer, "A-1", datetime.now(timezone.utc) - timedelta(days=20), 400))
        _everyone_at_risk_and_top(session)


def test_the_new_ticket_form_offers_the_automatic_priority_first(console_app, alex, queue_handoff):
    handoff_id = queue_handoff()

    panel = alex.client.get(f"/console/handoffs/{handoff_id}/panel").text

    select_ = re.search(r'<select id="ticket-new-priority".*?</select>', panel, re.S).group(0)
    assert re.findall(r'<option value="([a-z]*)"( selected)?>', select_) == [
        ("", " selected"), ("low", ""), ("normal", ""), ("high", ""), ("urgent", "")
    ]


def test_a_ticket_with_the_automatic_priority_gets_it_from_the_customers_figures_and_shows_why(console_app, alex, queue_handoff, ada_at_risk):
    handoff_id = queue_handoff()

    created = alex.post(f"/console/api/handoffs/{handoff_id}/ticket", {"subject": "Cracked blender", "description": "Wants a refund.", "priority": None})
    panel = alex.client.get(f"/console/handoffs/{handoff_id}/panel").text

    assert created.status_code == 201, created.json
    assert (created.json["category"], created.json["priority"], created.json["priority_source"]) == ("refund", "urgent", "automatic")
    assert "Priority: Urgent — a complaint about refund from a Gold customer at 88% churn risk" in panel


def test_the_agents_chosen_priority_is_kept(console_app, alex, queue_handoff, ada_at_risk):
    handoff_id = queue_handoff()

    created = alex.post(f"/console/api/handoffs/{handoff_id}/ticket", {"subject": "Cracked blender", "description": "Wants a refund.", "priority": "low"})
    corrected = alex.post(f"/console/api/handoffs/{handoff_id}/category", {"category": "damaged_or_defective"})
    panel = alex.client.get(f"/console/handoffs/{handoff_id}/panel").text

    assert (created.json["priority"], created.json["priority_source"], created.json["priority_reason"]) == ("low", "manual", None)
    # A person set it: a corrected need leaves it alone.
    assert (corrected.json["ticket"]["priority"], corrected.json["ticket"]["priority_reason"]) == ("low", None)
    assert "Priority: Low (set by hand)" in panel


def test_correcting_the_need_decides_the_automatic_priority_again_with_an_audit_trail(console_app, alex, queue_handoff, ada_at_risk):
    handoff_id = queue_handoff()
    ticket = alex.post(f"/console/api/handoffs/{handoff_id}/ticket", {"subject": "Cracked blender", "description": "Wants a refund.", "priority": None}).json

    to_question = alex.post(f"/console/api/handoffs/{handoff_id}/category", {"category": "product_question"}).json["ticket"]
    to_complaint = alex.post(f"/console/api/handoffs/{handoff_id}/category", {"category": "damaged_or_defective"}).json["ticket"]

    assert ticket["priority"] == "urgent"
    assert (to_question["priority"], to_question["priority_reason"], to_question["priority_source"]) == ("normal", None, "automatic")
    assert to_complaint["priority"] == "urgent"
    assert to_complaint["priority_reason"].startswith("Urgent: a complaint about damaged or defective from a Gold customer")
    with console_app.app_context():
        changes = [
            (event.actor_name, event.before.get("category"), event.after.get("category"), event.before.get("priority"), event.after.get("priority"))
            for event in get_session().scalars(select(AuditEvent).where(AuditEvent.action == "ticket.updated").order_by(AuditEvent.id))
        ]
    assert changes == [
        ("alex@example.com", "refund", "product_question", "urgent", "normal"),
        ("alex@example.com", "product_question", "damaged_or_defective", "normal", "urgent"),
    ]


def test_a_priority_changed_by_hand_is_no_longer_automatic(console_app, alex, queue_handoff, ada_at_risk):
    handoff_id = queue_handoff()
    ticket = alex.post(f"/console/api/handoffs/{handoff_id}/ticket", {"subject": "Cracked blender", "description": "Wants a refund.", "priority": None}).json

    changed = alex.patch(f"/console/api/tickets/{ticket['id']}", {"priority": "high"}).json
    corrected = alex.post(f"/console/api/handoffs/{handoff_id}/category", {"category": "product_question"}).json["ticket"]

    assert (changed["priority"], changed["priority_source"], changed["priority_reason"]) == ("high", "manual", None)
    assert corrected["priority"] == "high"


def test_a_need_corrected_before_there_is_a_ticket_stays_on_the_handoff(console_app, alex, queue_handoff):
    handoff_id = queue_handoff()

    corrected = alex.post(f"/console/api/handoffs/{handoff_id}/category", {"category": "billing"})

    assert corrected.status_code == 200 and corrected.json["ticket"] is None
    with console_app.app_context():
        handoff = get_session().get(Handoff, handoff_id)
        assert (handoff.category, handoff.category_confidence) == ("billing", None)


# --- canned replies --------------------------------------------------------------------


def test_canned_replies_start_from_the_defaults_and_can_be_edited(console_app, alex):
    defaults = alex.client.get("/console/api/canned-replies").json["replies"]

    saved = alex.put("/console/api/canned-replies", {"replies": [{"title": "Hi", "text": "Hi {first_name}!"}]})
    invalid = alex.put("/console/api/canned-replies", {"replies": [{"title": "", "text": "x"}]})

    assert len(defaults) >= 5 and all(reply["title"] and reply["text"] for reply in defaults)
    assert saved.status_code == 200
    assert alex.client.get("/console/api/canned-replies").json["replies"] == [{"title": "Hi", "text": "Hi {first_name}!"}]
    assert invalid.status_code == 422
    assert audit_actors(console_app, "canned_replies.updated") == [("agent", "alex@example.com")]


# --- live updates ---------------------------------------------------------------------------


def read_events(response, wanted: str, limit: int = 200) -> list[dict]:
    """Read the stream until an event named ``wanted`` arrives; every event so far."""
    seen, buffer = [], ""
    chunks = iter(response.response)
    for _ in range(limit):
        buffer += next(chunks).decode()
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
            if "event" in fields:
                seen.append({"event": fields["event"], "id": fields.get("id"), "data": json.loads(fields["data"])})
                if fields["event"] == wanted:
                    return seen
    raise AssertionError(f"no {wanted!r} event; saw {seen}")


def test_the_event_stream_shows_a_newly_queued_handoff(console_app, alex, queue_handoff):
    stream = alex.client.get("/console/events", buffered=False)
    try:
        first = read_events(stream, "queue")[-1]["data"]
        queue_handoff(reason="I need a person about my refund")
        second = read_events(stream, "queue")[-1]["data"]
    finally:
        stream.close()

    assert stream.mimetype == "text/event-stream"
    assert first["total"] == 0
    assert (second["total"], second["queued"], second["mine"]) == (1, 1, 0)
    assert "Ada Lovelace" in second["html"] and "I need a person about my refund" in second["html"]


def test_the_event_stream_of_a_conversation_brings_new_messages_and_claims(console_app, alex, sam, queue_handoff):
    handoff_id = queue_handoff()
    stream = alex.client.get(f"/console/events?handoff={handoff_id}&after=0", buffered=False)
    try:
        initial = read_events(stream, "handoff")
        with console_app.app_context():
            session = get_session()
            handoffs.add_customer_message(session, session.get(Handoff, handoff_id), "are you there?", "event-7")
            session.commit()
        message = read_events(stream, "message")[-1]
        sam.post(f"/console/api/handoffs/{handoff_id}/claim")
        claimed = read_events(stream, "handoff")[-1]["data"]
    finally:
        stream.close()

    assert initial[-1]["data"]["status"] == "queued"
    assert "are you there?" in message["data"]["html"] and message["data"]["sender"] == "customer"
    assert message["id"] == str(message["data"]["id"])  # resumable with Last-Event-ID
    assert (claimed["status"], claimed["agent_name"], claimed["mine"]) == ("claimed", "Sam Agent", False)


def test_a_reconnecting_stream_resumes_after_the_last_message_it_had(console_app, alex, queue_handoff):
    handoff_id = queue_handoff()
    with console_app.app_context():
        session = get_session()
        handoff = session.get(Handoff, handoff_id)
        first = handoffs.add_customer_message(session, handoff, "first", "e1")
        handoffs.add_customer_message(session, handoff, "second", "e2")
        session.commit()
        first_id = first.id

    stream = alex.client.get(f"/console/events?handoff={handoff_id}", headers={"Last-Event-ID": str(first_id)}, buffered=False)
    try:
        events = read_events(stream, "message")
    finally:
        stream.close()

    assert [e["data"]["html"] for e in events if e["event"] == "message"][0].count("second") == 1


def test_live_streams_are_bounded_per_worker(console_app, alex):
    console_app.extensions["console_sse_slots"] = threading.BoundedSemaphore(1)
    first = alex.client.get("/console/events", buffered=False)
    try:
        refused = alex.client.get("/console/events")
    finally:
        first.close()
    after_close = alex.client.get("/console/events", buffered=False)
    after_close.close()

    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert after_close.status_code == 200


def test_a_stream_ends_by_itself_after_its_lifetime(console_app, alex):
    console_app.config["CONSOLE_SSE_MAX_SECONDS"] = 0.2

    body = alex.client.get("/console/events").get_data(as_text=True)  # returns only because the server ends it

    assert body.startswith("retry: ")
    assert "event: queue" in body
