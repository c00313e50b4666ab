"""A first real conversation through every hop: REST channel → Rasa → action
server → CRM (with the bot's API key) and back."""

import sqlite3

import requests


def texts(replies: list[dict]) -> str:
    return " ".join(reply.get("text", "") for reply in replies)


def test_a_signed_in_customer_the_crm_knows_is_greeted_by_first_name(stack):
    replies = stack.say_signed_in("shop-session-ada", "hi", "ada@example.com", "Ada Lovelace")

    assert "Hi Ada" in texts(replies)


def test_an_integration_with_the_channel_token_may_name_the_customer_in_metadata(stack):
    response = stack.post_message(
        "crm-integration-7",
        "hello",
        headers={"Authorization": f"Bearer {stack.rest_channel_token}"},
        metadata={"email": "Grace.Hopper@Example.com"},
    )

    assert response.status_code == 200
    assert "Hi Grace" in texts(response.json())


def test_an_unsigned_email_in_metadata_is_only_a_claim(stack):
    replies = stack.say("widget-visitor-7", "hello", metadata={"email": "Grace.Hopper@Example.com"})

    assert "Grace" not in texts(replies)
    assert texts(replies).startswith("Hi!")


def test_an_anonymous_visitor_gets_a_friendly_greeting(stack):
    replies = stack.say("visitor-without-email", "hello there")

    assert texts(replies).startswith("Hi! I'm the Northwind Goods assistant")


def test_goodbye_is_answered(stack):
    stack.say("visitor-bye", "hi")

    replies = stack.say("visitor-bye", "bye bye")

    assert any(word in texts(replies) for word in ("Goodbye", "Bye for now"))


def test_an_out_of_scope_question_gets_a_polite_answer_saying_what_the_bot_can_do(stack):
    replies = stack.say("visitor-oos", "can you book me a flight to Paris?")

    assert "Sorry" in texts(replies)
    assert "help with" in texts(replies) or "support ticket" in texts(replies)


def test_nonsense_never_breaks_the_conversation(stack):
    for message in ("<script>alert(1)</script>", "'; DROP TABLE events; --", "🙃🙃🙃", "x" * 5000):
        replies = stack.say("visitor-nonsense", message)
        assert texts(replies), f"no reply to {message[:30]!r}"

    assert "Hi" in texts(stack.say("visitor-nonsense", "hi"))


def test_the_bot_reached_the_crm_with_its_own_api_key(stack):
    stack.say_signed_in("visitor-key-check", "hi", "ada@example.com", "Ada Lovelace")
    key = (stack.var_dir / "crm_api_key").read_text().strip()

    with sqlite3.connect(stack.var_dir / "crm.db") as db:
        used = db.execute("SELECT last_used_at FROM api_keys WHERE name = 'bot'").fetchone()
    assert used is not None and used[0] is not None
    response = requests.get(
        f"{stack.crm_url}/api/v1/customers",
        params={"email": "ada@example.com"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["items"][0]["name"] == "Ada Lovelace"


def test_the_rasa_http_api_needs_the_token(stack):
    stack.say("visitor-api", "hi")
    url = f"{stack.rasa_url}/conversations/visitor-api/tracker"

    assert requests.get(url, timeout=10).status_code == 401
    tracker = requests.get(url, params={"token": stack.rasa_token}, timeout=10)
    assert tracker.status_code == 200
    assert any(e.get("event") == "user" and e.get("text") == "hi" for e in tracker.json()["events"])


def test_conversations_are_kept_in_the_sqlite_tracker_store_under_var(stack):
    stack.say("visitor-stored", "hi")

    with sqlite3.connect(stack.var_dir / "tracker.db") as db:
        count = db.execute("SELECT count(*) FROM events WHERE sender_id = 'visitor-stored'").fetchone()[0]
    assert count > 0


def test_every_service_reports_healthy(stack):
    assert requests.get(f"{stack.crm_url}/readyz", timeout=10).json()["status"] == "ready"
    assert requests.get(f"http://127.0.0.1:{stack.actions_port}/health", timeout=10).status_code == 200
    status = requests.get(f"{stack.rasa_url}/status", params={"token": stack.rasa_token}, timeout=10)
    assert status.json()["model_file"].endswith("helpdesk.tar.gz")


def test_faq_questions_get_the_shops_answers(stack):
    answers = {
        "how much does delivery cost?": "£3.95",
        "do you accept paypal?": "PayPal",
        "what is your return policy?": "30 days",
        "when is customer service open?": "Monday to Friday",
    }
    for question, expected in answers.items():
        assert expected in texts(stack.say("visitor-faq", question)), question
