"""Talk to a human, through the real stack: the handoff reaches the CRM, the
bot goes silent, the agent's reply reaches the customer's socket, resolving
brings the bot back to ask for a score, and the score lands in the CRM."""

import time
import uuid

import pytest
import requests

from harness.widget_client import WidgetClient
from tests.e2e.test_conversation import texts


@pytest.fixture(scope="module")
def console(stack):
    """Headers of an integration acting for agents (as the console will)."""
    key = stack.api_key("e2e-console", "handoffs:read", "handoffs:write", "feedback:read")
    return {"Authorization": f"Bearer {key}"}


def handoffs_of(stack, console, conversation_id: str) -> list[dict]:
    response = requests.get(
        f"{stack.crm_url}/api/v1/handoffs", params={"conversation_id": conversation_id}, headers=console, timeout=10
    )
    response.raise_for_status()
    return response.json()["items"]


def test_the_whole_handoff_round_trip_over_socketio(stack, console):
    # Ada is signed in on the shop: the page gives the widget her signed identity.
    token = stack.identity_token("ada@example.com", "Ada Lovelace")
    client = WidgetClient(stack.rasa_url, custom_data={"identity_token": token})
    session_id = client.session_id
    api = f"{stack.crm_url}/api/v1"
    try:
        client.send("I need to talk to a person about my refund for the kettle")
        queued_reply = " ".join(m.get("text", "") for m in client.replies_until_quiet())
        assert "A person will reply right here" in queued_reply

        [handoff] = handoffs_of(stack, console, session_id)
        assert handoff["status"] == "queued"
        assert handoff["customer_email"] == "ada@example.com"
        assert "refund" in handoff["reason"]
        assert handoff["category"] != ""
        detail = requests.get(f"{api}/handoffs/{handoff['id']}", headers=console, timeout=10).json()
        assert detail["transcript"][0] == {
            "sender": "customer",
            "text": "I need to talk to a person about my refund for the kettle",
            "timestamp": detail["transcript"][0]["timestamp"],
        }

        # While a person has the conversation the bot says nothing...
        client.send("hello? are you there?")
        assert client.replies_until_quiet(first_timeout=4) == []
        tracker = requests.get(
            f"{stack.rasa_url}/conversations/{session_id}/tracker", params={"token": stack.rasa_token}, timeout=10
        ).json()
        assert tracker["paused"] is True
        assert [e["text"] for e in tracker["events"] if e["event"] == "user"][-1] == "hello? are you there?"

        # ...but what the customer writes reaches the handoff (Rasa's event
        # broker -> `crm handoffs follow`) within a couple of seconds.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            detail = requests.get(f"{api}/handoffs/{handoff['id']}", headers=console, timeout=10).json()
            if any(m["sender"] == "customer" for m in detail["messages"]):
                break
            time.sleep(0.25)
        # The assistant's own words after the handoff reach the agent too.
        assert [(m["sender"], m["text"]) for m in detail["messages"]] == [
            ("bot", queued_reply.strip()),
            ("customer", "hello? are you there?"),
        ]

        # ...and the agent's reply reaches the customer's socket, with the agent's name.
        claimed = requests.post(
            f"{api}/handoffs/{handoff['id']}/claim", json={"agent_email": "agent@example.com"}, headers=console, timeout=10
        )
        assert claimed.status_code == 200 and claimed.json()["status"] == "claimed"
        # The customer's chat is told that a person joined.
        assert client.replies.get(timeout=10) == {"presence": "joined", "agent_name": "Demo Agent"}
        sent = requests.post(
            f"{api}/handoffs/{handoff['id']}/messages",
            json={"agent_email": "agent@example.com", "text": "Hi Ada, I'm sorting out your refund now."},
            headers=console,
            timeout=10,
        )
        assert sent.status_code == 201, sent.text
        agent_message = client.replies.get(timeout=10)
        assert agent_message == {"text": "Hi Ada, I'm sorting out your refund now.", "agent_name": "Demo Agent"}

        # Resolving brings the bot back: it thanks the customer and asks for a score.
        resolved = requests.post(
            f"{api}/handoffs/{handoff['id']}/resolve", json={"agent_email": "agent@example.com"}, headers=console, timeout=15
        )
        assert resolved.status_code == 200, resolved.text
        back = client.replies_until_quiet()
        # First that the person left, then the assistant's own words.
        assert back[0] == {"presence": "left", "agent_name": "Demo Agent"}
        assert "Demo Agent" in back[1]["text"]
        score_question = back[-1]
        assert "1 (poor) to 5 (excellent)" in score_question["text"]
        assert [b["title"] for b in score_question["quick_replies"]][:5] == ["1", "2", "3", "4", "5"]

        client.send('/inform{"feedback_score":"5"}')
        assert "anything you'd like to tell us" in client.replies_until_quiet()[-1]["text"]
        client.send("Quick and kind, thank you")
        assert "Thanks for your feedback" in client.replies_until_quiet()[-1]["text"]
        # The whole conversation after the handoff, in order, from both sides.
        detail = requests.get(f"{api}/handoffs/{handoff['id']}", headers=console, timeout=10).json()
        assert [(m["sender"], m["text"]) for m in detail["messages"]] == [
            ("bot", queued_reply.strip()),
            ("customer", "hello? are you there?"),
            ("agent", "Hi Ada, I'm sorting out your refund now."),
        ]
    finally:
        client.close()

    feedback = requests.get(f"{api}/feedback", params={"conversation_id": session_id}, headers=console, timeout=10).json()
    [entry] = feedback["items"]
    assert (entry["score"], entry["comment"], entry["agent"], entry["customer_email"]) == (
        5,
        "Quick and kind, thank you",
        "agent@example.com",
        "ada@example.com",
    )
    assert entry["handoff_id"] == handoff["id"]


def test_a_stranger_is_asked_for_email_and_reason_over_rest(stack, console):
    sender = f"rest-visitor-{uuid.uuid4().hex[:8]}"
    asked_email = texts(stack.say(sender, "can I speak to a human"))
    asked_reason = texts(stack.say(sender, "mo.salah@example.com"))
    queued = texts(stack.say(sender, "my refund for the returned boots never arrived"))
    silent = stack.say(sender, "anyone?")

    assert "email" in asked_email
    assert "what would you like help with" in asked_reason
    assert "A person will reply right here" in queued
    assert silent == []
    [handoff] = handoffs_of(stack, console, sender)
    assert handoff["customer_email"] == "mo.salah@example.com"
    assert handoff["reason"] == "my refund for the returned boots never arrived"
    assert handoff["category"] == "refund"


def test_frustration_is_offered_a_person(stack):
    reply = stack.say(f"angry-{uuid.uuid4().hex[:8]}", "this is useless, you're not helping at all")
    assert "talk to a person" in texts(reply)
    assert [b["payload"] for b in reply[0]["buttons"]] == ["/request_human", "/deny"]


def test_two_messages_not_understood_lead_to_the_offer_of_a_person(stack):
    sender = f"confused-{uuid.uuid4().hex[:8]}"
    first = texts(stack.say(sender, "blorf zingle wop"))
    second = stack.say(sender, "qwxz plim vrrp")
    assert "put it another way" in first
    assert "bring in a person" in texts(second)


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert('x')</script><img src=x onerror=alert(1)>",
        "'; DROP TABLE customers; --",
        "🤬🔥💩" * 30,
        "refund " * 800,
        "\u202e\u0000 weird \ufeff control",
    ],
)
def test_hostile_input_gets_a_polite_answer_and_breaks_nothing(stack, hostile):
    sender = f"hostile-{uuid.uuid4().hex[:8]}"
    reply = stack.say(sender, hostile)
    assert reply and all(isinstance(m.get("text"), str) and m["text"] for m in reply)
    # The bot is still there afterwards.
    assert texts(stack.say(sender, "hi"))
    assert requests.get(f"{stack.crm_url}/healthz", timeout=5).status_code == 200
