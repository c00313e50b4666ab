"""The REST channel (bot/rest_channel.py) through a real Sanic server: bodies
checked, limits before Rasa, the integration token, identities."""

import asyncio
import time

import jwt
from rasa.core.channels.rest import RestInput

from bot.rest_channel import HelpdeskRestInput
from tests.bot.chat_app import INTEGRATION_TOKEN, SECRET, ChatApp, domain, until

INTEGRATION = {"Authorization": f"Bearer {INTEGRATION_TOKEN}"}


def identity_token(email, secret=SECRET):
    return jwt.encode({"email": email, "exp": int(time.time()) + 600}, secret, algorithm="HS256")


def run(monkeypatch, requests, **env):
    """Posts each ``(body, headers, raw)`` in turn; returns the app and the answers."""

    async def scenario():
        async with ChatApp(monkeypatch, **env) as app:
            async with app.http() as http:
                answers = [await app.post(http, body, headers, raw) for body, headers, raw in requests]
            return app, answers

    return asyncio.run(scenario())


def test_keeps_the_stock_name_and_path():
    assert HelpdeskRestInput.name() == RestInput.name() == "rest"
    assert HelpdeskRestInput.from_credentials({}).url_prefix() == "rest"


def test_a_message_is_answered_as_by_rasas_channel(monkeypatch):
    app, [(status, _, replies, _)] = run(monkeypatch, [({"sender": "c-1", "message": "hi", "input_channel": "socketio"}, None, None)])

    assert (status, replies) == (200, [{"recipient_id": "c-1", "text": "answer to hi"}])
    [message] = app.agent.handled
    assert (message.sender_id, message.text, message.input_channel) == ("c-1", "hi", "rest")  # not the caller's choice


def test_bodies_that_are_not_a_message_get_400_problem_json_never_500(monkeypatch):
    bad = [
        ([1, 2, 3], None, None),
        (None, None, b"not json"),
        (None, None, b"[" * 100_000 + b"]" * 100_000),
        (None, None, b'{"sender": "c", "message": "\xff\xfe"}'),
        ({"message": "hi"}, None, None),
        ({"sender": 42, "message": "hi"}, None, None),
        ({"sender": "", "message": "hi"}, None, None),
        ({"sender": "c\x00", "message": "hi"}, None, None),
        ({"sender": "c\ud800", "message": "hi"}, None, None),
        ({"sender": "c" * 300, "message": "hi"}, None, None),
        ({"sender": "c"}, None, None),
        ({"sender": "c", "message": {"text": "hi"}}, None, None),
        ({"sender": "c", "message": None}, None, None),
    ]
    app, answers = run(monkeypatch, bad)

    assert [status for status, *_ in answers] == [400] * len(bad)
    assert {content_type for _, content_type, *_ in answers} == {"application/problem+json"}
    assert all(body["status"] == 400 and body["detail"] for _, _, body, _ in answers)
    assert app.agent.handled == []


def test_a_message_over_the_size_limit_is_answered_200_with_one_polite_reply(monkeypatch):
    app, [(status, _, replies, _)] = run(monkeypatch, [({"sender": "c-1", "message": "x" * 63_000}, None, None)])

    expected = domain().responses["utter_message_too_long"][0]["text"].replace("{max_message_chars}", "2000")
    assert (status, replies) == (200, [{"recipient_id": "c-1", "text": expected, "error": "message_too_long"}])
    assert app.agent.handled == []


def test_the_size_limit_is_a_setting_counted_in_characters(monkeypatch):
    requests = [({"sender": "c-1", "message": "🙂" * 50}, None, None), ({"sender": "c-1", "message": "x" * 51}, None, None)]

    app, answers = run(monkeypatch, requests, CHAT_MAX_MESSAGE_CHARS="50")

    assert [m.text for m in app.agent.handled] == ["🙂" * 50]
    assert answers[1][2][0]["error"] == "message_too_long" and "50 characters" in answers[1][2][0]["text"]


def test_a_burst_of_forty_from_one_sender_is_throttled_with_429_and_retry_after(monkeypatch):
    app, answers = run(monkeypatch, [({"sender": "flood", "message": f"m{n}"}, None, None) for n in range(40)])

    statuses = [status for status, *_ in answers]
    assert statuses == [200] * 20 + [429] * 20
    _, content_type, problem, headers = answers[20]
    assert content_type == "application/problem+json" and problem["status"] == 429 and problem["error"] == "rate_limited"
    assert int(headers["Retry-After"]) >= 1
    assert len(app.agent.handled) == 20


def test_fifty_senders_from_one_address_are_not_throttled(monkeypatch):
    requests = [({"sender": f"bench-{n}", "message": f"turn {turn}"}, None, None) for turn in range(10) for n in range(50)]

    app, answers = run(monkeypatch, requests)

    assert {status for status, *_ in answers} == {200}
    assert len(app.agent.handled) == 500


def test_a_local_proxys_forwarded_address_is_counted_not_the_proxys(monkeypatch):
    requests = [({"sender": f"s-{n}", "message": "hi"}, {"X-Forwarded-For": f"198.51.100.{n % 2}"}, None) for n in range(6)]

    _, answers = run(monkeypatch, requests, CHAT_IP_BURST="3", CHAT_IP_PER_MINUTE="1")

    assert [status for status, *_ in answers] == [200] * 6  # two addresses, three each


def test_surrogates_nul_bytes_nesting_and_non_objects_are_cleaned_out_of_the_metadata(monkeypatch):
    nested = {}
    for _ in range(20):
        nested = {"a": nested}
    requests = [
        ({"sender": "c-1", "message": "hi\ud800\x00", "metadata": {"k\udfff": "v\x00"}}, None, None),
        ({"sender": "c-1", "message": "nested", "metadata": nested}, None, None),
        ({"sender": "c-1", "message": "list", "metadata": [1, 2, 3]}, None, None),
        ({"sender": "c-1", "message": "large", "metadata": {"x": "y" * 5000}}, None, None),
    ]

    app, answers = run(monkeypatch, requests)

    assert {status for status, *_ in answers} == {200}
    assert [(m.text, m.metadata) for m in app.agent.handled] == [
        ("hi\ufffd", {"k\ufffd": "v"}),
        ("nested", {}),
        ("list", {}),
        ("large", {}),
    ]


def test_an_anonymous_caller_cannot_assert_an_identity(monkeypatch):
    forged = {"email": "ada@example.com", "verified": True, "via": "integration"}
    body = {"sender": "c-1", "message": "hi", "metadata": {"email": "ada@example.com", "identity": forged}}

    app, _ = run(monkeypatch, [(body, None, None)])

    assert app.agent.handled[0].metadata == {"email": "ada@example.com"}


def test_an_integration_with_the_channel_token_asserts_a_verified_customer(monkeypatch):
    body = {"sender": "crm-7", "message": "hi", "input_channel": "shop_app", "metadata": {"email": "Ada@Example.com", "name": "Ada"}}

    app, [(status, *_)] = run(monkeypatch, [(body, INTEGRATION, None)])

    [message] = app.agent.handled
    assert status == 200 and message.input_channel == "shop_app"
    assert message.metadata["identity"] == {
        "email": "ada@example.com", "name": "Ada", "external_id": None, "verified": True, "via": "integration"
    }


def test_a_wrong_channel_token_is_refused_with_401(monkeypatch):
    body = {"sender": "crm-7", "message": "hi", "metadata": {"email": "ada@example.com"}}

    app, [(status, content_type, problem, _)] = run(monkeypatch, [(body, {"Authorization": "Bearer guessed"}, None)])

    assert (status, content_type, problem["status"]) == (401, "application/problem+json", 401)
    assert app.agent.handled == []


def test_without_a_configured_token_no_caller_is_an_integration(monkeypatch):
    body = {"sender": "crm-7", "message": "hi", "metadata": {"email": "ada@example.com"}}

    async def scenario():
        async with ChatApp(monkeypatch, integration_token="") as app:
            async with app.http() as http:
                return await app.post(http, body, {"Authorization": "Bearer "})

    status, *_ = asyncio.run(scenario())

    assert status == 401


def test_an_integration_is_not_held_to_the_per_address_limit(monkeypatch):
    requests = [({"sender": f"crm-{n}", "message": "hi"}, INTEGRATION, None) for n in range(10)]

    _, answers = run(monkeypatch, requests, CHAT_IP_BURST="3", CHAT_IP_PER_MINUTE="1")

    assert {status for status, *_ in answers} == {200}


def test_a_signed_identity_token_verifies_an_anonymous_callers_customer(monkeypatch):
    requests = [
        ({"sender": "c-1", "message": "hi", "metadata": {"identity_token": identity_token("ada@example.com")}}, None, None),
        ({"sender": "c-2", "message": "hi", "metadata": {"identity_token": identity_token("ada@example.com", "forged-0123456789abcdef0123")}}, None, None),
    ]

    app, _ = run(monkeypatch, requests)

    signed, forged = app.agent.handled
    assert signed.metadata["identity"]["email"] == "ada@example.com" and "identity_token" not in signed.metadata
    assert forged.metadata == {}


def test_a_different_verified_customer_starts_a_new_session_first(monkeypatch):
    def said_by(email, text):
        return ({"sender": "shared", "message": text, "metadata": {"email": email}}, INTEGRATION, None)

    app, _ = run(monkeypatch, [said_by("ada@example.com", "hi"), said_by("ada@example.com", "again"), said_by("bob@example.com", "hello")])

    assert [m.text for m in app.agent.handled] == ["hi", "again", "/session_start", "hello"]


def test_a_streamed_reply_gets_the_same_checks(monkeypatch):
    async def scenario():
        async with ChatApp(monkeypatch) as app:
            async with app.http() as http:
                body = {"sender": "c-1", "message": "hi", "metadata": {"identity": {"email": "a@example.com", "verified": True}}}
                async with http.post(app.rest_url + "?stream=true", json=body) as response:
                    return app, response.status, await response.text()

    app, status, text = asyncio.run(scenario())

    assert status == 200 and "answer to hi" in text
    assert app.agent.handled[0].metadata == {}


def test_an_address_counts_the_same_over_rest_and_socketio(monkeypatch):
    async def scenario():
        async with ChatApp(monkeypatch, CHAT_IP_BURST="5", CHAT_IP_PER_MINUTE="1") as app:
            async with app.http() as http:
                statuses = [(await app.post(http, {"sender": f"r-{n}", "message": "hi"}))[0] for n in range(3)]
            client = await app.socket()
            for _ in range(3):
                await client.say((await client.session())["session_id"], "hi")
            await until(lambda: len(client.bot_messages()) == 3)
            return app, statuses, client

    app, statuses, client = asyncio.run(scenario())

    assert statuses == [200, 200, 200]
    assert len(app.agent.handled) == 5
    assert [m.get("error") for m in client.bot_messages()].count("rate_limited") == 1
