"""Console sign-in and sign-out against the attacks of issue 19: a guesser
cannot lock an agent out, a copied cookie dies with sign-out, and "sign out
everywhere" (console and API) ends every session of the agent."""

import logging
import re
import time

import pytest
from sqlalchemy import select

from crm_backend.console.login_delays import LoginDelays
from crm_backend.db import get_session
from crm_backend.models import Agent, AgentSession, AuditEvent
from test_console import ALEX, SAM, Agent_, console_app, sign_in  # noqa: F401  (fixtures)

COOKIE = "crm_console"
ATTACKER, ALEX_AT_HOME = "203.0.113.7", "198.51.100.20"


def browser(app, address: str = "127.0.0.1"):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def can_use_console(client) -> bool:
    page = client.get("/console")
    api = client.get("/console/api/canned-replies")
    return page.status_code == 200 and api.status_code == 200


def copy_of_cookie(app, client):
    """Another browser holding a copy of ``client``'s session cookie."""
    cookie = client.get_cookie(COOKIE, path="/console")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie(COOKIE, cookie.value, path="/console")
    return thief


def csrf_of(client) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get("/console").text).group(1)


# --- growing waits instead of a lockout --------------------------------------------


def test_five_wrong_passwords_do_not_lock_the_agent_out_of_the_right_one_from_elsewhere(console_app):
    attacker = browser(console_app, ATTACKER)

    tries = [sign_in(attacker, ALEX[0], f"guess {n}").status_code for n in range(5)]
    alex = sign_in(browser(console_app, ALEX_AT_HOME), *ALEX)

    assert tries == [401, 401, 401, 429, 429]  # the guesser waits; nothing is locked
    assert alex.status_code == 302 and alex.headers["Location"] == "/console"


def test_after_three_failures_each_try_waits_longer_and_the_right_password_works_after_the_wait(console_app):
    client = browser(console_app, ATTACKER)
    first_three = [sign_in(client, ALEX[0], f"guess {n}") for n in range(3)]

    too_soon = sign_in(client, *ALEX)
    time.sleep(1.1)
    fourth = sign_in(client, ALEX[0], "guess 4")
    again_too_soon = sign_in(client, *ALEX)
    time.sleep(2.1)
    right = sign_in(client, *ALEX)

    assert [response.status_code for response in first_three] == [401, 401, 401]
    assert "Wait 1 second before the next try" in first_three[2].text
    assert too_soon.status_code == 429 and too_soon.headers["Retry-After"] == "1"
    assert "Too many failed sign-ins. Wait 1 second, then try again." in too_soon.text
    assert fourth.status_code == 401 and "Wait 2 seconds" in fourth.text
    assert again_too_soon.status_code == 429 and again_too_soon.headers["Retry-After"] == "2"
    assert right.status_code == 302


def test_a_success_forgets_the_failures(console_app):
    client = browser(console_app)
    for n in range(2):
        sign_in(client, ALEX[0], f"guess {n}")
    assert sign_in(client, *ALEX).status_code == 302

    wrong_again = sign_in(browser(console_app), ALEX[0], "guess 3")

    assert wrong_again.status_code == 401 and "Wait" not in wrong_again.text


def test_the_waits_double_up_to_the_cap(console_app):
    with console_app.app_context():
        delays = LoginDelays(console_app.extensions["crm_limiter"], free_failures=3, max_delay=60, window=900)
        waits = [delays.failed("agent@example.com", "192.0.2.1") for _ in range(11)]

    assert waits == [0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_sign_in_logs_name_the_agent_by_id_not_by_address(console_app, caplog):
    caplog.set_level(logging.INFO)

    sign_in(browser(console_app), ALEX[0], "not the password")
    sign_in(browser(console_app), "someone@example.com", "not the password")
    sign_in(browser(console_app), *ALEX)

    assert "failed sign-in" in caplog.text and "signed in" in caplog.text
    assert "@" not in caplog.text


# --- sign-out ends the session on the server ----------------------------------------


def test_a_copied_cookie_is_refused_after_sign_out(console_app):
    alex = Agent_(console_app, *ALEX)
    thief = copy_of_cookie(console_app, alex.client)
    assert can_use_console(thief)  # a copy works while the session lasts

    signed_out = alex.client.post("/console/logout", data={"csrf_token": alex.token})

    assert signed_out.status_code == 302
    page = thief.get("/console")
    assert page.status_code == 302 and page.headers["Location"].startswith("/console/login")
    api = thief.get("/console/api/canned-replies")
    assert api.status_code == 401 and api.content_type == "application/problem+json"


def test_sign_out_everywhere_ends_every_session_of_that_agent_only(console_app):
    laptop, phone, sam = Agent_(console_app, *ALEX), Agent_(console_app, *ALEX), Agent_(console_app, *SAM)
    copied = copy_of_cookie(console_app, phone.client)

    response = laptop.client.post("/console/logout-everywhere", data={"csrf_token": laptop.token})

    assert response.status_code == 302 and response.headers["Location"] == "/console/login?notice=signed_out_everywhere"
    assert "signed out on every device" in laptop.client.get(response.headers["Location"]).text
    assert not any(can_use_console(client) for client in (laptop.client, phone.client, copied))
    assert can_use_console(sam.client)
    with console_app.app_context():
        events = get_session().scalars(select(AuditEvent).where(AuditEvent.action == "agent.signed_out_everywhere")).all()
        assert [(event.actor_name, event.after) for event in events] == [(ALEX[0], {"sessions_ended": 2})]


def test_the_console_offers_sign_out_everywhere(console_app):
    alex = Agent_(console_app, *ALEX)

    page = alex.client.get("/console").text

    assert 'action="/console/logout-everywhere"' in page and "Sign out everywhere" in page


def test_sign_out_everywhere_needs_the_sessions_csrf_token(console_app):
    alex = Agent_(console_app, *ALEX)

    forged = alex.client.post("/console/logout-everywhere", data={})

    assert forged.status_code == 403
    assert can_use_console(alex.client)


def test_an_admin_key_signs_an_agent_out_everywhere_through_the_api(console_app, bearer):
    laptop, phone, sam = Agent_(console_app, *ALEX), Agent_(console_app, *ALEX), Agent_(console_app, *SAM)
    with console_app.app_context():
        alex_id = get_session().scalars(select(Agent.id).where(Agent.email == ALEX[0])).one()
    api = console_app.test_client()
    admin = bearer("admin")

    ended = api.delete(f"/api/v1/agents/{alex_id}/sessions", headers=admin)
    unknown = api.delete("/api/v1/agents/9999/sessions", headers=admin)
    not_admin = api.delete(f"/api/v1/agents/{alex_id}/sessions", headers=bearer("tickets:read"))

    assert ended.status_code == 200 and ended.json == {"ended": 2}
    assert unknown.status_code == 404 and not_admin.status_code == 403
    assert not can_use_console(laptop.client) and not can_use_console(phone.client)
    assert can_use_console(sam.client)


def test_signing_in_again_after_sign_out_everywhere_works(console_app):
    alex = Agent_(console_app, *ALEX)
    alex.client.post("/console/logout-everywhere", data={"csrf_token": alex.token})

    again = Agent_(console_app, *ALEX)

    assert can_use_console(again.client)


def test_the_live_stream_ends_when_the_agent_signs_out_everywhere(console_app):
    console_app.config.update(CONSOLE_SSE_POLL_SECONDS=0.02, CONSOLE_SSE_HEARTBEAT_SECONDS=0.05, CONSOLE_SSE_MAX_SECONDS=30)
    alex, other_tab = Agent_(console_app, *ALEX), Agent_(console_app, *ALEX)
    stream = alex.client.get("/console/events", buffered=False)
    chunks = stream.response
    next(chunks)  # the stream is open

    other_tab.client.post("/console/logout-everywhere", data={"csrf_token": other_tab.token})
    started = time.monotonic()
    remaining = list(chunks)  # ends by itself, long before CONSOLE_SSE_MAX_SECONDS

    assert time.monotonic() - started < 5
    assert len(remaining) < 200
    stream.close()


@pytest.mark.parametrize("token_value", ["", "not-a-session", 42])
def test_a_cookie_with_no_live_session_token_is_refused(console_app, token_value):
    """A cookie signed with the right key but naming no live session (as an old
    cookie from before server-side sessions would) signs nobody in."""
    alex = Agent_(console_app, *ALEX)
    with alex.client.session_transaction("/console/") as cookie_session:
        cookie_session["session_token"] = token_value

    assert not can_use_console(alex.client)


def test_sessions_are_kept_as_hashes_only(console_app):
    alex = Agent_(console_app, *ALEX)
    cookie = alex.client.get_cookie(COOKIE, path="/console").value
    with alex.client.session_transaction("/console/") as cookie_session:
        token = cookie_session["session_token"]

    with console_app.app_context():
        rows = get_session().execute(select(AgentSession.token_hash)).scalars().all()

    assert len(rows) == 1 and token not in rows[0] and rows[0] not in cookie



def test_one_address_guessing_many_accounts_is_capped(console_app):
    console_app.extensions["console_login_delays"].address_limits = __import__("limits").parse_many("4 per minute")
    guesser = browser(console_app, ATTACKER)
    tries = [sign_in(guesser, f"agent{n}@example.com", "guess").status_code for n in range(4)]

    capped = sign_in(guesser, *ALEX)
    elsewhere = sign_in(browser(console_app, ALEX_AT_HOME), *ALEX)

    assert tries == [401] * 4
    assert capped.status_code == 429 and 0 < int(capped.headers["Retry-After"]) <= 60
    assert elsewhere.status_code == 302
