"""The agent console in Chromium against the real stack: a customer asks for
a person over socket.io, the request appears in the signed-in agent's queue
without a reload, the agent opens it, sees the customer write, claims,
replies (the customer's socket gets the reply with the agent's name) and
resolves (the customer is asked for a score). Two agents racing to claim:
exactly one wins."""

import os
import subprocess
import time
import uuid

import pytest
import requests
from playwright.sync_api import expect

from harness import REPO
from harness.browser import chromium_browser
from harness.widget_client import WidgetClient
from tests.e2e.widget_support import AXE

DESKTOP = {"width": 1280, "height": 800}
DEMO_AGENT = ("agent@example.com", "northwind-demo")
LIVE_MS = 15_000


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture
def signed_in(browser, stack):
    """A page of a fresh browser context, signed in to the console as the given agent."""
    contexts = []

    def sign_in(email: str, password: str):
        context = browser.new_context(viewport=DESKTOP)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{stack.crm_url}/console")
        page.get_by_label("E-mail address").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Conversations")).to_be_visible()
        expect(page.locator("#live")).to_have_attribute("data-state", "live", timeout=LIVE_MS)
        return page

    yield sign_in
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def api(stack):
    key = stack.api_key("e2e-console-ui", "handoffs:read")
    return {"Authorization": f"Bearer {key}"}


def handoff_of(stack, api, conversation_id: str) -> dict:
    response = requests.get(
        f"{stack.crm_url}/api/v1/handoffs", params={"conversation_id": conversation_id}, headers=api, timeout=10
    )
    response.raise_for_status()
    [handoff] = response.json()["items"]
    return handoff


def test_an_agent_takes_a_conversation_from_the_live_queue_to_the_score_question(stack, signed_in, api):
    page = signed_in(*DEMO_AGENT)
    page.evaluate("window.notReloaded = true")
    # Ada is signed in on the shop: the page gives the widget her signed identity.
    token = stack.identity_token("ada@example.com", "Ada Lovelace")
    customer = WidgetClient(stack.rasa_url, custom_data={"identity_token": token})
    session_id = customer.session_id
    try:
        customer.send("I need to talk to a person about my refund for the kettle")
        assert "A person will reply right here" in " ".join(m.get("text", "") for m in customer.replies_until_quiet())
        handoff = handoff_of(stack, api, session_id)

        # The request appears in the queue by itself.
        item = page.locator(f'.queue-item[data-handoff-id="{handoff["id"]}"]')
        expect(item).to_be_visible(timeout=LIVE_MS)
        expect(item).to_contain_text("Ada Lovelace")
        expect(item).to_contain_text("Waiting")
        assert page.evaluate("window.notReloaded") is True

        item.click()
        expect(page.get_by_role("heading", name="Ada Lovelace")).to_be_visible()
        log = page.locator("#log")
        expect(log).to_contain_text("I need to talk to a person about my refund for the kettle")

        # What the customer writes while waiting shows up live (event broker -> follower -> console).
        customer.send("hello? are you there?")
        expect(log.locator(".msg-customer").last).to_contain_text("hello? are you there?", timeout=LIVE_MS)

        page.get_by_role("button", name="Claim").click()
        expect(page.locator("#status-badge")).to_have_text("You have it")
        reply = page.get_by_label("Reply to Ada Lovelace")
        expect(reply).to_be_focused()
        reply.fill("Hi Ada, I'm sorting out your refund now.")
        reply.press("Enter")

        assert customer.next_words(timeout=15) == {"text": "Hi Ada, I'm sorting out your refund now.", "agent_name": "Demo Agent"}
        expect(log.locator(".msg-agent").last).to_contain_text("Hi Ada, I'm sorting out your refund now.")
        expect(reply).to_have_value("")

        page.get_by_role("button", name="Resolve").click()
        expect(page.locator("#status-badge")).to_have_text("Resolved")
        back = [m for m in customer.replies_until_quiet() if "presence" not in m]
        assert "Demo Agent" in back[0]["text"]
        assert "1 (poor) to 5 (excellent)" in back[-1]["text"]
        expect(page.locator(f'.queue-item[data-handoff-id="{handoff["id"]}"]')).to_have_count(0, timeout=LIVE_MS)
    finally:
        customer.close()

    resolved = handoff_of(stack, api, session_id)
    assert (resolved["status"], resolved["agent"]) == ("resolved", "agent@example.com")


def create_agent(stack, email: str, password: str, name: str) -> None:
    subprocess.run(
        [str(REPO / ".venv/backend/bin/crm"), "create-agent", email, "--password", password, "--name", name],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{stack.var_dir / 'crm.db'}"},
        capture_output=True,
        text=True,
        check=True,
    )


def test_of_two_agents_racing_to_claim_exactly_one_wins(stack, signed_in, api):
    create_agent(stack, "sam.e2e@example.com", "sam-e2e-password", "Sam Rivera")
    sender = f"race-{uuid.uuid4().hex[:8]}"
    stack.say(sender, "can I speak to a human")
    stack.say(sender, f"{sender}@example.com")
    stack.say(sender, "my order NW-482913 never arrived")
    handoff = handoff_of(stack, api, sender)
    url = f"{stack.crm_url}/console/handoffs/{handoff['id']}"
    pages = {"Demo Agent": signed_in(*DEMO_AGENT), "Sam Rivera": signed_in("sam.e2e@example.com", "sam-e2e-password")}
    for page in pages.values():
        page.goto(url)
        expect(page.get_by_role("button", name="Claim")).to_be_enabled()

    # Both click before either answer is back.
    for page in pages.values():
        page.evaluate("document.getElementById('claim').click()")

    deadline = time.monotonic() + 10
    while (winner := handoff_of(stack, api, sender))["status"] != "claimed" and time.monotonic() < deadline:
        time.sleep(0.1)
    winner_name = winner["agent_name"]
    [loser_name] = [name for name in pages if name != winner_name]
    expect(pages[winner_name].locator("#status-badge")).to_have_text("You have it")
    expect(pages[loser_name].locator("#status-badge")).to_have_text(f"With {winner_name}", timeout=LIVE_MS)
    expect(pages[loser_name].locator("#notice")).to_contain_text(f"{winner_name}")
    expect(pages[loser_name].locator("#notice")).to_contain_text("claimed")
    expect(pages[loser_name].locator("#reply")).to_be_disabled()
    expect(pages[winner_name].locator("#reply")).to_be_enabled()



def test_the_console_pages_pass_an_accessibility_audit(browser, stack, api):
    assert AXE.exists(), "axe-core is missing: `make setup` installs the widget's packages"
    sender = f"a11y-{uuid.uuid4().hex[:8]}"
    stack.say(sender, "can I speak to a human")
    stack.say(sender, f"{sender}@example.com")
    stack.say(sender, "the kettle I bought is broken")
    handoff = handoff_of(stack, api, sender)
    # The console's Content-Security-Policy would (rightly) refuse the injected audit script.
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    try:
        page = context.new_page()
        found = {}
        for name, url in [
            ("sign-in", "/console/login"),
            ("queue", "/console"),
            ("conversation", f"/console/handoffs/{handoff['id']}"),
        ]:
            page.goto(stack.crm_url + url)
            if page.locator("#password").count() and name != "sign-in":
                page.get_by_label("E-mail address").fill(DEMO_AGENT[0])
                page.get_by_label("Password").fill(DEMO_AGENT[1])
                page.get_by_role("button", name="Sign in").click()
                page.goto(stack.crm_url + url)
            page.evaluate(AXE.read_text())
            result = page.evaluate("async () => await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa']})")
            found[name] = [(v["id"], [n["target"] for n in v["nodes"]]) for v in result["violations"]]
    finally:
        context.close()

    assert found == {"sign-in": [], "queue": [], "conversation": []}
