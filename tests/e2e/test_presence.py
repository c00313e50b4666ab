"""A person visibly there (issue 21), through the real stack in Chromium: the
customer asks for a person in the widget on the demo shop and sees their place
in the queue; an agent in the console claims, types, replies and resolves, and
the customer sees "joined", "is typing", the reply under the agent's name in
a header that shows the agent, and "you're back with the assistant".

Screenshots: /tmp/presence-{queued,typing,reply,back,console}.png.
"""

import uuid

import pytest
import requests
from playwright.sync_api import expect

from harness.browser import AGENT_ROWS, BOT_BUBBLES, INPUT, LAUNCHER, chromium_browser
from tests.e2e.widget_support import BUNDLE

REPLY_TIMEOUT_MS = 30_000
W = "[data-helpdesk-chat]"
EVENTS = f"{W} .log .row.event"
TYPING = f"{W} .typing"
TITLE = f"{W} .header .title"
SUBTITLE = f"{W} .header .status-text"


@pytest.fixture(scope="module")
def browser():
    with chromium_browser(BUNDLE) as chromium:
        yield chromium


def newest_is_in_view(page) -> bool:
    """The newest line of the transcript is inside the scroller's visible area."""
    return page.evaluate(
        """() => {
          const root = document.querySelector('[data-helpdesk-chat]').shadowRoot;
          const scroller = root.querySelector('.scroller');
          const rows = root.querySelectorAll('.log .row');
          const last = rows[rows.length - 1].getBoundingClientRect();
          const view = scroller.getBoundingClientRect();
          return last.bottom <= view.bottom + 1 && last.top >= view.top - 1;
        }"""
    )


def handoff_of(stack, conversation_id: str) -> dict:
    key = stack.api_key(f"e2e-presence-{uuid.uuid4().hex[:6]}", "handoffs:read")
    response = requests.get(
        f"{stack.crm_url}/api/v1/handoffs",
        params={"conversation_id": conversation_id},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    response.raise_for_status()
    [handoff] = response.json()["items"]
    return handoff


def test_the_customer_sees_a_person_join_type_reply_and_hand_back(stack, browser):
    # A signed-in customer of the shop (not Ada: her handoffs count towards her daily cap in other tests).
    email = f"grace.{uuid.uuid4().hex[:8]}@example.com"
    token = stack.identity_token(email, "Grace Hopper")
    customer = browser.new_context(viewport={"width": 1100, "height": 760})
    agent = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = customer.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(stack.crm_url)
        page.wait_for_function("() => window.HelpdeskChat !== undefined")
        assert page.evaluate("(token) => window.HelpdeskChat.identify(token)", token)
        page.locator(LAUNCHER).click()
        expect(page.locator(BOT_BUBBLES).first).to_be_visible(timeout=REPLY_TIMEOUT_MS)

        # Asking for a person: the assistant's answer, then the place in the queue.
        page.locator(INPUT).fill("I need to talk to a person about my refund for the kettle")
        page.locator(INPUT).press("Enter")
        queued = page.locator(f"{EVENTS}.event-queued")
        expect(queued).to_have_count(1, timeout=REPLY_TIMEOUT_MS)
        expect(queued).to_contain_text("in the queue for a person")
        expect(page.locator(SUBTITLE)).to_contain_text("Waiting for a person")
        # The answer came in two parts; the newest is in view, not below the fold.
        page.wait_for_timeout(800)  # the smooth scroll
        assert newest_is_in_view(page)
        page.screenshot(path="/tmp/presence-queued.png")

        session_id = page.evaluate("window.HelpdeskChat.sessionId")
        handoff = handoff_of(stack, session_id)
        assert handoff["status"] == "queued"
        assert "kettle" in handoff["reason"]

        # The agent opens the conversation in the console and claims it.
        console = agent.new_page()
        console.goto(f"{stack.crm_url}/console/login")
        console.fill("#email", "agent@example.com")
        console.fill("#password", "northwind-demo")
        console.click("button[type=submit]")
        console.goto(f"{stack.crm_url}/console/handoffs/{handoff['id']}")
        # What the assistant said after the handoff is shown to the agent too.
        expect(console.locator("#log .msg-bot").last).to_contain_text("A person will reply right here", timeout=15_000)
        console.click("#claim")

        joined = page.locator(f"{EVENTS}.event-joined")
        expect(joined).to_have_count(1, timeout=15_000)
        expect(joined).to_contain_text("Demo Agent joined the conversation")
        expect(page.locator(TITLE)).to_have_text("Demo Agent")
        expect(page.locator(f"{W} .header .avatar")).to_have_text("DA")

        # While the agent types, the customer sees it.
        console.locator("#reply").press_sequentially("Hi Grace, I'm so sorry about the kettle. ", delay=20)
        expect(page.locator(TYPING)).to_be_visible(timeout=10_000)
        expect(page.locator(f"{TYPING} .typing-label")).to_have_text("Demo Agent is typing")
        page.screenshot(path="/tmp/presence-typing.png")

        console.locator("#reply").press_sequentially("I'm refunding it now.", delay=5)
        console.locator("#reply").press("Enter")
        reply = page.locator(AGENT_ROWS).last
        expect(reply).to_contain_text("I'm refunding it now.", timeout=15_000)
        expect(reply).to_contain_text("Demo Agent")
        expect(page.locator(TYPING)).to_be_hidden()
        page.wait_for_timeout(800)
        assert newest_is_in_view(page)
        page.screenshot(path="/tmp/presence-reply.png")

        # Resolving hands the customer back to the assistant, which asks for a score.
        console.click("#resolve")
        left = page.locator(f"{EVENTS}.event-left")
        expect(left).to_have_count(1, timeout=15_000)
        expect(left).to_contain_text("Demo Agent left the conversation. You're back with the assistant.")
        expect(page.locator(TITLE)).not_to_have_text("Demo Agent")
        expect(page.locator(SUBTITLE)).not_to_contain_text("Waiting")
        expect(page.locator(BOT_BUBBLES).last).to_contain_text("1 (poor) to 5 (excellent)", timeout=REPLY_TIMEOUT_MS)
        page.wait_for_timeout(800)
        assert newest_is_in_view(page)
        page.screenshot(path="/tmp/presence-back.png")
        console.screenshot(path="/tmp/presence-console.png")

        # In order, as the customer read it.
        lines = page.locator(f"{EVENTS} .event-text > span:not(.avatar)").all_inner_texts()
        assert lines[1:] == [
            "Demo Agent joined the conversation",
            "Demo Agent left the conversation. You're back with the assistant.",
        ]
        assert errors == []
    finally:
        customer.close()
        agent.close()
