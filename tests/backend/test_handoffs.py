"""Handoffs over HTTP: request with transcript, queue, claim once, reply through Rasa, resolve."""

import threading

import pytest
from sqlalchemy import func, select

from crm_backend import rasa
from crm_backend.agents.service import create_agent
from crm_backend.db import get_session
from crm_backend.models import AuditEvent, Customer, Handoff, HandoffMessage
from fakes import FakeRasa

HANDOFFS = "/api/v1/handoffs"


@pytest.fixture
def fake_rasa(monkeypatch):
    fake = FakeRasa()
    monkeypatch.setattr("crm_backend.handoffs.views.rasa_client", lambda: fake)
    return fake


@pytest.fixture
def agents(app):
    with app.app_context():
        session = get_session()
        create_agent(session, email="alex@example.com", password="correct horse 1", name="Alex Agent")
        create_agent(session, email="sam@example.com", password="correct horse 2", name="Sam Agent")
        session.commit()


@pytest.fixture
def bot(bearer):
    return bearer("handoffs:write", "customers:read")


@pytest.fixture
def console(bearer):
    return bearer("handoffs:read", "handoffs:write")


TRANSCRIPT = [
    {"sender": "customer", "text": "my blender arrived cracked", "timestamp": "2026-11-23T10:00:00Z"},
    {"sender": "bot", "text": "Sorry to hear that! Shall I open a ticket?"},
    {"sender": "customer", "text": "no, I want to talk to a real person"},
]


@pytest.fixture
def request_handoff(client, bot, fake_classifier):
    def request_(**fields) -> dict:
        body = {
            "conversation_id": "conv-1",
            "reason": "wants a refund for a cracked blender",
            "customer_email": "ada@example.com",
            "customer_name": "Ada Lovelace",
            "transcript": TRANSCRIPT,
            **fields,
        }
        response = client.post(HANDOFFS, json=body, headers=bot)
        assert response.status_code == 201, response.json
        return response.json

    return request_


def test_a_handoff_is_queued_with_customer_transcript_and_classified_reason(app, client, request_handoff, console, fake_classifier):
    handoff = request_handoff()
    assert handoff["status"] == "queued"
    assert handoff["customer_email"] == "ada@example.com"
    assert handoff["customer_name"] == "Ada Lovelace"
    assert (handoff["category"], handoff["category_confidence"]) == ("refund", 0.91)
    assert fake_classifier == ["wants a refund for a cracked blender"]
    assert [line["text"] for line in handoff["transcript"]] == [line["text"] for line in TRANSCRIPT]
    assert handoff["transcript"][0]["timestamp"].startswith("2026-11-23T10:00:00")
    assert handoff["messages"] == [] and handoff["agent"] is None and handoff["claimed_at"] is None
    assert handoff["wait_seconds"] >= 0 and handoff["handle_seconds"] is None

    fetched = client.get(f"{HANDOFFS}/{handoff['id']}", headers=console)
    assert fetched.status_code == 200 and fetched.json["transcript"] == handoff["transcript"]
    with app.app_context():
        session = get_session()
        assert session.scalar(select(Customer.name).where(Customer.email == "ada@example.com")) == "Ada Lovelace"
        assert session.scalar(select(func.count()).where(AuditEvent.action == "handoff.requested")) == 1


def test_a_conversation_has_one_open_handoff_at_a_time(client, request_handoff, bot):
    first = request_handoff()
    again = client.post(
        HANDOFFS, json={"conversation_id": "conv-1", "reason": "hello?", "customer_email": "ada@example.com"}, headers=bot
    )
    assert again.status_code == 409
    assert again.json["existing_id"] == first["id"]
    assert request_handoff(conversation_id="conv-2")["id"] != first["id"]


def test_a_retried_request_with_the_same_idempotency_key_queues_one_handoff(app, client, bot, fake_classifier):
    body = {"conversation_id": "conv-9", "reason": "a person please", "customer_email": "ada@example.com"}
    headers = {**bot, "Idempotency-Key": "conv-9:handoff:1"}
    first = client.post(HANDOFFS, json=body, headers=headers)
    second = client.post(HANDOFFS, json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json["id"] == second.json["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    with app.app_context():
        assert get_session().scalar(select(func.count()).select_from(Handoff)) == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({"reason": "x", "customer_email": "ada@example.com"}, "conversation_id"),
        ({"conversation_id": "c", "customer_email": "ada@example.com"}, "reason"),
        ({"conversation_id": "c", "reason": "x", "customer_email": "not-an-email"}, "customer_email"),
        ({"conversation_id": "c", "reason": "x", "customer_email": "ada@example.com", "ticket": "TCK-999999"}, "ticket"),
        (
            {"conversation_id": "c", "reason": "x", "customer_email": "ada@example.com", "transcript": [{"sender": "martian", "text": "hi"}]},
            "transcript.0.sender",
        ),
    ],
)
def test_bad_requests_name_the_field_and_store_nothing(app, client, bot, fake_classifier, body, field):
    response = client.post(HANDOFFS, json=body, headers=bot)
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert field in {error["field"] for error in response.json["errors"]}
    with app.app_context():
        session = get_session()
        assert session.scalar(select(func.count()).select_from(Handoff)) == 0
        assert session.scalar(select(func.count()).select_from(Customer)) == 0


def test_the_queue_lists_oldest_first_and_filters_by_status(client, request_handoff, console, agents, fake_rasa):
    ids = [request_handoff(conversation_id=f"conv-{n}")["id"] for n in range(3)]
    client.post(f"{HANDOFFS}/{ids[1]}/claim", json={"agent_email": "alex@example.com"}, headers=console)
    queued = client.get(f"{HANDOFFS}?status=queued", headers=console).json["items"]
    assert [item["id"] for item in queued] == [ids[0], ids[2]]
    page = client.get(f"{HANDOFFS}?limit=2", headers=console).json
    assert [item["id"] for item in page["items"]] == ids[:2]
    rest = client.get(f"{HANDOFFS}?limit=2&cursor={page['next_cursor']}", headers=console).json
    assert [item["id"] for item in rest["items"]] == ids[2:] and rest["next_cursor"] is None
    mine = client.get(f"{HANDOFFS}?agent=ALEX@example.com", headers=console).json["items"]
    assert [item["id"] for item in mine] == [ids[1]]


def test_only_one_agent_can_claim_a_handoff(client, request_handoff, console, agents):
    handoff = request_handoff()
    url = f"{HANDOFFS}/{handoff['id']}/claim"
    first = client.post(url, json={"agent_email": "alex@example.com"}, headers=console)
    assert first.status_code == 200
    assert (first.json["status"], first.json["agent"], first.json["agent_name"]) == ("claimed", "alex@example.com", "Alex Agent")
    assert first.json["wait_seconds"] is not None and first.json["handle_seconds"] is not None
    assert client.post(url, json={"agent_email": "alex@example.com"}, headers=console).status_code == 200
    second = client.post(url, json={"agent_email": "sam@example.com"}, headers=console)
    assert second.status_code == 409
    assert "alex@example.com" in second.json["detail"]


def test_concurrent_claims_have_exactly_one_winner(app, tmp_path, request_handoff, make_key, agents):
    handoff = request_handoff()
    key = make_key("handoffs:write")
    results: list[tuple[str, int]] = []
    barrier = threading.Barrier(4)

    def claim(agent_email: str) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            f"{HANDOFFS}/{handoff['id']}/claim",
            json={"agent_email": agent_email},
            headers={"Authorization": f"Bearer {key}"},
        )
        results.append((agent_email, response.status_code))

    threads = [threading.Thread(target=claim, args=(email,)) for email in ["alex@example.com", "sam@example.com"] * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(status in (200, 409) for _, status in results), results
    with app.app_context():
        stored = get_session().get(Handoff, handoff["id"])
        assert stored.status == "claimed"
        # Only the winner was told 200 (its own repeated claim is harmless);
        # both requests of the other agent were refused.
        assert {email for email, status in results if status == 200} == {stored.agent.email}
        assert [status for email, status in results if email != stored.agent.email] == [409, 409]


def test_an_unknown_agent_or_handoff_is_refused(client, request_handoff, console, agents):
    handoff = request_handoff()
    unknown_agent = client.post(f"{HANDOFFS}/{handoff['id']}/claim", json={"agent_email": "nobody@example.com"}, headers=console)
    assert unknown_agent.status_code == 422 and unknown_agent.json["errors"][0]["field"] == "agent_email"
    assert client.post(f"{HANDOFFS}/999/claim", json={"agent_email": "alex@example.com"}, headers=console).status_code == 404
    assert client.get(f"{HANDOFFS}/999", headers=console).status_code == 404


def test_the_claiming_agent_replies_through_rasa_and_the_reply_is_kept(app, client, request_handoff, console, agents, fake_rasa):
    handoff = request_handoff()
    url = f"{HANDOFFS}/{handoff['id']}"
    early = client.post(f"{url}/messages", json={"agent_email": "alex@example.com", "text": "hi"}, headers=console)
    assert early.status_code == 409 and "claim" in early.json["detail"]
    client.post(f"{url}/claim", json={"agent_email": "alex@example.com"}, headers=console)
    other = client.post(f"{url}/messages", json={"agent_email": "sam@example.com", "text": "hi"}, headers=console)
    assert other.status_code == 409

    sent = client.post(f"{url}/messages", json={"agent_email": "alex@example.com", "text": "Hi Ada, I'm Alex."}, headers=console)
    assert sent.status_code == 201
    assert (sent.json["sender"], sent.json["agent_name"], sent.json["text"]) == ("agent", "Alex Agent", "Hi Ada, I'm Alex.")
    assert fake_rasa.sent == [("conv-1", "Hi Ada, I'm Alex.", "Alex Agent")]
    assert [m["text"] for m in client.get(url, headers=console).json["messages"]] == ["Hi Ada, I'm Alex."]


def test_a_reply_that_cannot_reach_rasa_is_not_stored(app, client, request_handoff, console, agents, fake_rasa):
    handoff = request_handoff()
    url = f"{HANDOFFS}/{handoff['id']}"
    client.post(f"{url}/claim", json={"agent_email": "alex@example.com"}, headers=console)
    fake_rasa.down = True
    response = client.post(f"{url}/messages", json={"agent_email": "alex@example.com", "text": "hello?"}, headers=console)
    assert response.status_code == 503
    assert "Nothing was stored" in response.json["detail"]
    with app.app_context():
        assert get_session().scalar(select(func.count()).select_from(HandoffMessage)) == 0


def test_resolving_resumes_the_bot_and_frees_the_conversation(app, client, request_handoff, console, agents, fake_rasa):
    handoff = request_handoff()
    url = f"{HANDOFFS}/{handoff['id']}"
    client.post(f"{url}/claim", json={"agent_email": "alex@example.com"}, headers=console)
    assert client.post(f"{url}/resolve", json={"agent_email": "sam@example.com"}, headers=console).status_code == 409
    resolved = client.post(f"{url}/resolve", json={"agent_email": "alex@example.com"}, headers=console)
    assert resolved.status_code == 200
    assert resolved.json["status"] == "resolved" and resolved.json["resolved_at"] is not None
    assert resolved.json["handle_seconds"] >= 0
    assert fake_rasa.resumed == [("conv-1", "Alex Agent")]
    assert client.post(f"{url}/resolve", json={"agent_email": "alex@example.com"}, headers=console).status_code == 409
    assert client.post(f"{url}/messages", json={"agent_email": "alex@example.com", "text": "x"}, headers=console).status_code == 409
    # The conversation may ask for a person again.
    assert request_handoff()["id"] != handoff["id"]
    with app.app_context():
        actions = get_session().scalars(select(AuditEvent.action).where(AuditEvent.entity_type == "handoff")).all()
        assert actions == ["handoff.requested", "handoff.claimed", "handoff.resolved", "handoff.requested"]


def test_resolving_while_rasa_is_down_changes_nothing(app, client, request_handoff, console, agents, fake_rasa):
    handoff = request_handoff()
    url = f"{HANDOFFS}/{handoff['id']}"
    client.post(f"{url}/claim", json={"agent_email": "alex@example.com"}, headers=console)
    fake_rasa.down = True
    response = client.post(f"{url}/resolve", json={"agent_email": "alex@example.com"}, headers=console)
    assert response.status_code == 503
    assert client.get(url, headers=console).json["status"] == "claimed"


def test_a_stale_queued_handoff_can_be_closed_without_a_claim(client, request_handoff, console, agents, fake_rasa):
    handoff = request_handoff()
    resolved = client.post(f"{HANDOFFS}/{handoff['id']}/resolve", json={"agent_email": "sam@example.com"}, headers=console)
    assert resolved.status_code == 200 and resolved.json["agent"] == "sam@example.com"


def test_scopes_are_enforced(client, request_handoff, bearer):
    handoff = request_handoff()
    reader = bearer("handoffs:read")
    assert client.get(f"{HANDOFFS}/{handoff['id']}", headers=reader).status_code == 200
    forbidden = client.post(f"{HANDOFFS}/{handoff['id']}/claim", json={"agent_email": "a@example.com"}, headers=reader)
    assert forbidden.status_code == 403
    assert client.get(HANDOFFS, headers=bearer("tickets:read")).status_code == 403
    assert client.get(HANDOFFS).status_code == 401


def test_the_rasa_client_posts_a_bot_event_that_the_socket_shows_with_the_agent_name(rasa_posts):
    calls = rasa_posts
    client = rasa.RasaClient(url="http://rasa:5005", token="secret")
    client.send_agent_message("ada@example.com/1", "Hello", "Alex")
    url, (pause, event), params = calls[0]
    assert pause == {"event": "pause"}
    assert url == "http://rasa:5005/conversations/ada@example.com%2F1/tracker/events"
    assert params == {"output_channel": "socketio", "execute_side_effects": "true", "token": "secret"}
    assert event["event"] == "bot"
    # Rasa's socket.io output emits custom["data"] as the bot_uttered payload.
    assert event["data"]["custom"]["data"] == {"text": "Hello", "agent_name": "Alex"}
    # Rasa merges metadata into the message it sends: no second "text" there.
    assert event["text"] is None and "text" not in event["metadata"]

    calls.clear()
    client.resume("conv/1", "Alex")
    assert [call[1] for call in calls] == [
        [{"event": "resume"}, {"event": "action", "name": "action_listen"}],
        {"name": "give_feedback", "entities": {"agent_name": "Alex"}},
    ]
    assert calls[1][0].endswith("/conversations/conv%2F1/trigger_intent")


def test_the_rasa_client_reports_an_unreachable_server(monkeypatch):
    def post(*args, **kwargs):
        raise rasa.requests.ConnectionError("refused")

    monkeypatch.setattr(rasa.requests, "post", post)
    with pytest.raises(rasa.RasaUnavailable, match="could not be reached"):
        rasa.RasaClient(url="http://rasa:5005", token=None).resume("c", None)


def test_the_answer_says_whether_a_person_is_there(app, client, request_handoff, bot):
    app.config.update(SUPPORT_HOURS="", AGENT_ONLINE_SECONDS=120)  # always open
    nobody = request_handoff()["availability"]
    assert nobody == {"within_hours": True, "agents_online": 0, "available": False, "hours": ""}
    with app.app_context():
        from crm_backend.handoffs import availability

        session = get_session()
        agent = create_agent(session, email="alex@example.com", password="correct horse 1", name="Alex")
        session.flush()
        availability.mark_seen(session, agent.id)
        session.commit()
    assert client.get(f"{HANDOFFS}/availability", headers=bot).json["available"] is True
