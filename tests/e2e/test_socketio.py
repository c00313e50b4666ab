"""The socket.io channel with session persistence, as a web widget uses it.

Guards the python-socketio==5.8.0 pin: with newer releases Rasa 3.6.21 never
joins the session's room and replies to a persistent session go nowhere.
Also the widget's resends (issue 11, bot/channels.py): a message sent again
with its message_id is answered once, and Rasa says when it has handled one.
"""

import uuid

import requests

from harness.widget_client import WidgetClient


def test_a_persistent_session_gets_its_reply(stack):
    client = WidgetClient(stack.rasa_url)
    try:
        reply = client.say("hi")
    finally:
        client.close()

    assert reply["text"].startswith("Hi")


def test_the_session_survives_a_reconnect_with_its_token(stack):
    first = WidgetClient(stack.rasa_url)
    first.say("hi")
    first.close()

    second = WidgetClient(stack.rasa_url, first.session_id, first.session_token)
    try:
        reply = second.say("bye")
    finally:
        second.close()

    assert second.session_id == first.session_id
    assert "ye" in reply["text"]  # "Goodbye…" or "Bye for now…"
    # Both turns are one conversation in the tracker store.
    said = [e["text"] for e in user_events(stack, first.session_id)]
    assert said == ["hi", "bye"]


def test_the_server_issues_the_session_id_and_says_what_it_supports(stack):
    client = WidgetClient(stack.rasa_url, session_id="chosen-by-the-client")
    try:
        features = client.features.get(timeout=5)
    finally:
        client.close()

    assert client.session_id != "chosen-by-the-client" and len(client.session_id) == 32
    assert client.session_token
    assert features["session_tokens"] is True and features["message_handled"] is True
    assert features["max_message_chars"] == 2000


def test_a_signed_identity_from_the_host_page_personalises_the_greeting(stack):
    token = stack.identity_token("ada@example.com", "Ada Lovelace")
    client = WidgetClient(stack.rasa_url, custom_data={"identity_token": token})
    try:
        reply = client.say("hello")
    finally:
        client.close()

    assert reply["text"].startswith("Hi Ada")
    [event] = user_events(stack, client.session_id)
    assert "identity_token" not in event["metadata"]  # tokens are never stored
    assert event["metadata"]["identity"]["email"] == "ada@example.com"


def user_events(stack, session_id: str) -> list[dict]:
    tracker = requests.get(
        f"{stack.rasa_url}/conversations/{session_id}/tracker",
        params={"token": stack.rasa_token},
        timeout=10,
    ).json()
    return [e for e in tracker["events"] if e.get("event") == "user"]


def test_a_message_resent_after_its_answer_is_not_processed_again_and_its_answer_is_replayed(stack):
    message_id = uuid.uuid4().hex
    client = WidgetClient(stack.rasa_url)
    session_id = client.session_id
    try:
        client.send("hi", message_id=message_id)
        answer = client.replies_until_quiet()
        # The widget got no reply (say its socket dropped) and sends the message again.
        client.send("hi", message_id=message_id, resend=True)
        replayed = client.replies_until_quiet(first_timeout=15)
    finally:
        client.close()

    assert answer and answer[0]["text"].startswith("Hi")
    assert replayed == [{**message, "replay_of": message_id} for message in answer]
    assert [(e["text"], e["message_id"]) for e in user_events(stack, session_id)] == [("hi", message_id)]


def test_a_resent_message_rasa_never_got_is_answered_once(stack):
    lost_id = uuid.uuid4().hex
    client = WidgetClient(stack.rasa_url)
    session_id = client.session_id
    try:
        # The first copy never arrived (the socket died under it): only the resend does.
        client.send("hi", message_id=lost_id, resend=True)
        answer = client.replies_until_quiet()
    finally:
        client.close()

    # Marked as a replay: the widget shows what it does not have yet (all of it here).
    assert answer and answer[0]["text"].startswith("Hi") and answer[0]["replay_of"] == lost_id
    assert [(e["text"], e["message_id"]) for e in user_events(stack, session_id)] == [("hi", lost_id)]


def test_rasa_says_when_it_has_handled_a_message_after_its_last_reply(stack):
    message_id = uuid.uuid4().hex
    client = WidgetClient(stack.rasa_url)
    try:
        client.send("hi", message_id=message_id)
        handled = client.handled.get(timeout=30)
        answer = client.replies_until_quiet(first_timeout=1, quiet=1)
        client.say("how long does shipping take")  # no message_id: nothing to say about it
        client.replies_until_quiet(first_timeout=1, quiet=1)
    finally:
        client.close()

    assert handled == {"message_id": message_id}
    assert answer and answer[0]["text"].startswith("Hi")
    # Announced before the session was confirmed; handled only after every reply.
    assert client.arrivals[:2] == ["session_features", "session_confirm"]
    assert client.arrivals.count("message_handled") == 1
    first_turn = client.arrivals[2 : client.arrivals.index("message_handled") + 1]
    assert first_turn[-1] == "message_handled" and set(first_turn[:-1]) == {"bot_uttered"}


def shown(message: dict) -> dict:
    """A bot message as the widget shows it: without the replay marker (bot/channels.py)."""
    return {key: value for key, value in message.items() if key != "replay_of"}


def test_a_handoff_request_resent_makes_one_handoff_in_the_crm(stack):
    message_id = uuid.uuid4().hex
    key = stack.api_key("e2e-resend", "handoffs:read")
    request = "I need to talk to a person about my refund for the kettle"
    # A signed-in customer: the handoff needs no email from them.
    token = stack.identity_token("ada@example.com", "Ada Lovelace")
    client = WidgetClient(stack.rasa_url, custom_data={"identity_token": token})
    session_id = client.session_id
    try:
        client.send(request, message_id=message_id)
        answer = client.replies_until_quiet()
        client.send(request, message_id=message_id, resend=True)
        replayed = client.replies_until_quiet(first_timeout=15)
    finally:
        client.close()

    handoffs = requests.get(
        f"{stack.crm_url}/api/v1/handoffs",
        params={"conversation_id": session_id},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    ).json()["items"]
    assert "A person will reply right here" in " ".join(m.get("text", "") for m in answer)
    # The replay is the same answer: the texts and the queue's custom message
    # ({"presence": "queued", ...}, docs/widget.md), each marked as a replay.
    assert [shown(m) for m in replayed] == [shown(m) for m in answer]
    assert {"presence": "queued"}.items() <= next(m for m in answer if "presence" in m).items()
    assert len(handoffs) == 1
    assert [e["message_id"] for e in user_events(stack, session_id)] == [message_id]
