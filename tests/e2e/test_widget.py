"""The chat widget in a real browser (Debian's Chromium through Playwright)
against the real stack: the demo shop page served by the CRM, the widget's
socket.io connection to Rasa, the bot's answers.

Screenshots of the open panel are saved as /tmp/widget-*.png.
"""

import json
import sqlite3
import time
import uuid

import pytest
from playwright.sync_api import expect

from harness.browser import (
    AGENT_ROWS,
    BANNER,
    BOT_BUBBLES,
    CUSTOMER_BUBBLES,
    FOCUSED,
    INPUT,
    LAUNCHER,
    QUICK_REPLIES,
    chromium_browser,
)
from tests.e2e.widget_support import (
    AXE,
    BUNDLE,
    CuttableProxy,
    HostPage,
    OwnRasa,
    push_bot_event,
    tracker,
    user_texts,
)

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
REPLY_TIMEOUT_MS = 30_000
SHIPPING_QUESTION = "how long does shipping take"


@pytest.fixture(scope="module")
def browser():
    with chromium_browser(BUNDLE, AXE) as chromium:
        yield chromium


@pytest.fixture
def new_page(browser):
    """Pages in fresh browser contexts (each context its own localStorage)."""
    contexts = []

    def make(viewport=DESKTOP, **options):
        context = browser.new_context(viewport=viewport, **options)
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        return page

    yield make
    for context in contexts:
        context.close()


def open_shop(page, stack, query=""):
    page.goto(f"{stack.crm_url}/{query}")
    page.wait_for_function("() => window.HelpdeskChat !== undefined")
    return page


def open_chat(page):
    page.locator(LAUNCHER).click()
    expect(page.locator(LAUNCHER)).to_have_attribute("aria-expanded", "true")
    # The first opening sends the greeting payload; wait for the greeting.
    expect(page.locator(BOT_BUBBLES).first).to_be_visible(timeout=REPLY_TIMEOUT_MS)


def say(page, text):
    """Types a message, sends it with Enter, waits for the bot's answer to it."""
    before = page.locator(BOT_BUBBLES).count()
    page.locator(INPUT).fill(text)
    page.locator(INPUT).press("Enter")
    expect(page.locator(BOT_BUBBLES)).not_to_have_count(before, timeout=REPLY_TIMEOUT_MS)
    return page.locator(BOT_BUBBLES).last.inner_text()


def session_id(page):
    return page.evaluate("window.HelpdeskChat.sessionId")


def has_horizontal_overflow(page, width):
    """True if anything is wider than the screen (a phone would zoom out or scroll)."""
    return page.evaluate(
        "(width) => Math.max(window.innerWidth, document.documentElement.scrollWidth, document.body.scrollWidth) > width",
        width,
    )


# ---- conversation -----------------------------------------------------------


def test_the_launcher_opens_a_chat_that_greets_and_answers_questions(stack, new_page):
    page = open_shop(new_page(), stack)
    assert page.locator(LAUNCHER).get_attribute("aria-expanded") == "false"

    open_chat(page)
    greeting = page.locator(BOT_BUBBLES).first.inner_text()
    answer = say(page, SHIPPING_QUESTION)

    assert "Hi" in greeting
    assert "working days" in answer
    assert page.locator(CUSTOMER_BUBBLES).last.inner_text().endswith(SHIPPING_QUESTION)
    # Every message carries a timestamp.
    assert page.locator("[data-helpdesk-chat] .log time").count() >= 2
    page.screenshot(path="/tmp/widget-desktop.png")
    assert page.errors == []


def test_the_host_pages_signed_identity_makes_the_greeting_personal(stack, new_page):
    page = open_shop(new_page(), stack, "?signed_in=1")

    open_chat(page)

    assert page.locator(BOT_BUBBLES).first.inner_text().endswith(
        "Hi Ada, welcome back to Northwind Goods! How can I help you today?"
    )
    metadata = [e.get("metadata", {}) for e in tracker(stack, session_id(page))["events"] if e.get("event") == "user"]
    # The channel verified the page's token and kept who it names, never the token.
    assert metadata[0]["identity"]["email"] == "ada@example.com"
    assert metadata[0]["identity"]["verified"] is True
    assert "identity_token" not in metadata[0]
    assert metadata[0].get("channel") == "web_widget"


def test_a_bots_buttons_are_offered_and_a_choice_is_sent_as_its_payload(stack, new_page):
    page = open_shop(new_page(), stack)
    open_chat(page)

    say(page, "the kettle I bought stopped working after two days")
    # A customer of its own, so the demo customers' tickets stay as they were.
    say(page, f"shopper-{uuid.uuid4().hex[:8]}@example.com")
    expect(page.locator(QUICK_REPLIES)).to_have_text(["It's not about an order"], timeout=REPLY_TIMEOUT_MS)
    before = page.locator(BOT_BUBBLES).count()
    page.locator(QUICK_REPLIES).first.click()
    expect(page.locator(BOT_BUBBLES)).not_to_have_count(before, timeout=REPLY_TIMEOUT_MS)

    # The chosen button's title is what the customer sees; its payload is what Rasa got.
    assert page.locator(CUSTOMER_BUBBLES).last.inner_text().endswith("It's not about an order")
    assert "/deny" in user_texts(stack, session_id(page))
    expect(page.locator(QUICK_REPLIES)).to_have_text(["Yes, open it", "No, cancel"], timeout=REPLY_TIMEOUT_MS)
    page.set_viewport_size(PHONE)
    page.mouse.move(0, 0)
    page.wait_for_timeout(400)
    page.screenshot(path="/tmp/widget-phone.png")
    page.set_viewport_size(DESKTOP)
    page.locator(QUICK_REPLIES).get_by_text("Yes, open it").click()
    expect(page.locator(BOT_BUBBLES).filter(has_text="TCK-")).to_have_count(1, timeout=REPLY_TIMEOUT_MS)
    page.screenshot(path="/tmp/widget-desktop-ticket.png")


# ---- nothing anyone writes becomes markup -----------------------------------


INJECTION = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b>'


def test_html_typed_by_the_customer_is_shown_as_text(stack, new_page):
    page = open_shop(new_page(), stack)
    open_chat(page)

    say(page, INJECTION)

    bubble = page.locator(CUSTOMER_BUBBLES).last
    assert bubble.inner_text().endswith(INJECTION)
    assert bubble.locator("img, script, b").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_html_and_unsafe_links_from_the_bot_are_shown_as_text(stack, new_page):
    page = open_shop(new_page(), stack)
    open_chat(page)
    text = f"{INJECTION} Track it at https://example.com/track?id=1. [Click](javascript:window.__pwned=4)"

    push_bot_event(stack, session_id(page), {"event": "bot", "text": text})

    bubble = page.locator(BOT_BUBBLES).last
    expect(bubble).to_contain_text("Track it at", timeout=REPLY_TIMEOUT_MS)
    assert bubble.locator("img, script, b").count() == 0
    assert INJECTION in bubble.inner_text()
    assert "[Click](javascript:window.__pwned=4)" in bubble.inner_text()
    links = bubble.locator("a")
    expect(links).to_have_count(1)
    assert links.get_attribute("href") == "https://example.com/track?id=1"
    assert links.get_attribute("target") == "_blank"
    assert links.get_attribute("rel") == "noopener noreferrer"
    assert page.evaluate("window.__pwned") is None


def test_a_human_agents_message_is_shown_with_the_agents_name(stack, new_page):
    page = open_shop(new_page(), stack)
    open_chat(page)

    # The shape the CRM sends agents' replies in: socket.io gets
    # {"text": ..., "agent_name": "Ada"}.
    push_bot_event(
        stack,
        session_id(page),
        {"event": "bot", "data": {"custom": {"data": {"text": "Hi, I'm Ada from support.", "agent_name": "Ada"}}}},
    )

    row = page.locator(AGENT_ROWS).last
    expect(row.locator(".bubble")).to_contain_text("Hi, I'm Ada from support.", timeout=REPLY_TIMEOUT_MS)
    expect(row.locator(".meta .name")).to_have_text("Ada")
    expect(row.locator(".meta .tag")).to_have_text("Support team")
    expect(row.locator(".avatar")).to_have_text("A")


def test_an_agents_message_sent_with_a_top_level_text_too_appears_once(stack, new_page):
    page = open_shop(new_page(), stack)
    open_chat(page)

    # Rasa then emits {"text"} and {"text", "agent_name"}; the widget keeps one bubble.
    text = "Ada here, I've refunded the jug."
    push_bot_event(
        stack,
        session_id(page),
        {"event": "bot", "text": text, "data": {"custom": {"data": {"text": text, "agent_name": "Ada"}}}},
    )

    expect(page.locator(AGENT_ROWS).filter(has_text=text)).to_have_count(1, timeout=REPLY_TIMEOUT_MS)
    page.wait_for_timeout(500)
    assert sum(text in t for t in page.locator("[data-helpdesk-chat] .log .bubble").all_inner_texts()) == 1


# ---- persistence ------------------------------------------------------------


def test_the_transcript_survives_a_reload_and_a_new_tab_in_the_same_conversation(stack, new_page):
    page = open_shop(new_page(), stack)
    open_chat(page)
    say(page, SHIPPING_QUESTION)
    transcript = page.locator("[data-helpdesk-chat] .log .bubble").all_inner_texts()
    sid = session_id(page)

    page.reload()
    page.wait_for_function("() => window.HelpdeskChat !== undefined")
    # The panel was open: it stays open across the reload.
    expect(page.locator(LAUNCHER)).to_have_attribute("aria-expanded", "true")
    assert page.locator("[data-helpdesk-chat] .log .bubble").all_inner_texts() == transcript
    assert session_id(page) == sid

    second = page.context.new_page()
    open_shop(second, stack)
    assert session_id(second) == sid
    second.locator(LAUNCHER).click()
    assert second.locator("[data-helpdesk-chat] .log .bubble").all_inner_texts() == transcript
    answer = say(second, "how much is delivery")

    assert "£" in answer
    # Both tabs show the new turn once, and Rasa has one conversation.
    expect(page.locator(BOT_BUBBLES)).to_have_count(second.locator(BOT_BUBBLES).count())
    assert user_texts(stack, sid)[-2:] == [SHIPPING_QUESTION, "how much is delivery"]


def test_a_message_typed_offline_is_sent_once_when_the_connection_is_back(stack, new_page):
    page = open_shop(new_page(), stack)
    open_chat(page)
    sid = session_id(page)

    page.context.set_offline(True)
    expect(page.locator(BANNER)).to_be_visible()
    page.locator(INPUT).fill(SHIPPING_QUESTION)
    page.locator(INPUT).press("Enter")
    expect(page.locator("[data-helpdesk-chat] .log .status")).to_have_text("Waiting for connection")
    page.wait_for_timeout(1500)
    assert SHIPPING_QUESTION not in user_texts(stack, sid)
    page.context.set_offline(False)

    expect(page.locator(BOT_BUBBLES).last).to_contain_text("working days", timeout=REPLY_TIMEOUT_MS)
    expect(page.locator(BANNER)).to_be_hidden()
    expect(page.locator("[data-helpdesk-chat] .log .status")).to_have_count(0)
    page.wait_for_timeout(1500)  # a duplicate would have arrived by now
    assert user_texts(stack, sid).count(SHIPPING_QUESTION) == 1
    assert page.locator(CUSTOMER_BUBBLES).all_inner_texts()[-1].endswith(SHIPPING_QUESTION)
    assert sum("working days" in t for t in page.locator(BOT_BUBBLES).all_inner_texts()) == 1


def shop_behind(stack, proxy) -> HostPage:
    """A shop page whose widget reaches Rasa through ``proxy``."""
    return HostPage(
        "<!doctype html><html lang=en><head><title>Any shop</title></head><body><h1>Any shop</h1>"
        f'<script src="{stack.crm_url}/widget.js" data-server="http://127.0.0.1:{proxy.port}"'
        ' data-title="Any shop" defer></script></body></html>'
    )


def open_shop_chat(page, shop: HostPage) -> str:
    """Opens ``shop`` and its chat; the widget's session id."""
    page.goto(shop.url)
    page.wait_for_function("() => window.HelpdeskChat !== undefined")
    open_chat(page)
    return session_id(page)


def test_when_rasa_goes_away_and_comes_back_nothing_is_lost_or_doubled(stack, new_page):
    """The widget reaches Rasa through a proxy that drops every connection and
    refuses new ones, as a stopped Rasa does, then lets them through again."""
    proxy = CuttableProxy(stack.rasa_port)
    shop = shop_behind(stack, proxy)
    page = new_page()
    try:
        sid = open_shop_chat(page, shop)

        proxy.cut()
        expect(page.locator(BANNER)).to_be_visible(timeout=10_000)
        page.locator(INPUT).fill(SHIPPING_QUESTION)
        page.locator(INPUT).press("Enter")
        page.wait_for_timeout(2500)  # several reconnection attempts fail meanwhile
        assert SHIPPING_QUESTION not in user_texts(stack, sid)
        proxy.restore()

        expect(page.locator(BOT_BUBBLES).last).to_contain_text("working days", timeout=REPLY_TIMEOUT_MS)
        page.wait_for_timeout(1500)
        assert user_texts(stack, sid).count(SHIPPING_QUESTION) == 1
        assert sum("working days" in t for t in page.locator(BOT_BUBBLES).all_inner_texts()) == 1
    finally:
        proxy.close()
        shop.close()


def test_a_reply_lost_with_its_connection_is_shown_once_after_the_reconnect(stack, new_page):
    """Issue 11: Rasa answered, but the answer went down with the socket. The
    widget sends the message again on reconnecting; Rasa does not process it
    twice and replays its answer, which the widget shows once."""
    proxy = CuttableProxy(stack.rasa_port)
    shop = shop_behind(stack, proxy)
    page = new_page()
    try:
        sid = open_shop_chat(page, shop)

        proxy.mute()
        page.locator(INPUT).fill(SHIPPING_QUESTION)
        page.locator(INPUT).press("Enter")
        deadline = time.monotonic() + 30
        while SHIPPING_QUESTION not in user_texts(stack, sid) and time.monotonic() < deadline:
            time.sleep(0.25)
        time.sleep(1)  # the answer is on its way to a muted socket
        assert sum("working days" in t for t in page.locator(BOT_BUBBLES).all_inner_texts()) == 0
        proxy.cut()
        expect(page.locator(BANNER)).to_be_visible(timeout=10_000)
        proxy.restore()

        expect(page.locator(BOT_BUBBLES).last).to_contain_text("working days", timeout=REPLY_TIMEOUT_MS)
        expect(page.locator(BANNER)).to_be_hidden()
        page.wait_for_timeout(3000)  # a duplicate would have arrived by now
        assert user_texts(stack, sid).count(SHIPPING_QUESTION) == 1
        assert sum("working days" in t for t in page.locator(BOT_BUBBLES).all_inner_texts()) == 1
        assert sum(t.endswith(SHIPPING_QUESTION) for t in page.locator(CUSTOMER_BUBBLES).all_inner_texts()) == 1
        assert page.errors == []
    finally:
        proxy.close()
        shop.close()


def stored_user_texts(rasa, session_id: str) -> list[str]:
    """The customer's messages in a stopped Rasa's SQLite tracker store."""
    with sqlite3.connect(rasa.state_dir / "tracker.db") as db:
        rows = db.execute(
            "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' ORDER BY id", (session_id,)
        ).fetchall()
    return [json.loads(data)["text"] for (data,) in rows]


def test_a_real_rasa_restart_loses_and_doubles_nothing(stack, new_page, tmp_path):
    """Issue #7 with a real outage: a Rasa server of the test's own (the
    Procfile's command line, the stack's action server) is stopped with
    SIGTERM during the conversation and started again on the same port."""
    rasa = OwnRasa(stack, tmp_path / "own-rasa")
    shop = HostPage(
        "<!doctype html><html lang=en><head><title>Any shop</title></head><body><h1>Any shop</h1>"
        f'<script src="{stack.crm_url}/widget.js" data-server="{rasa.rasa_url}"'
        ' data-title="Any shop" defer></script></body></html>'
    )
    page = new_page()
    try:
        rasa.start()
        page.goto(shop.url)
        page.wait_for_function("() => window.HelpdeskChat !== undefined")
        open_chat(page)
        sid = session_id(page)
        assert "working days" in say(page, SHIPPING_QUESTION)
        bubbles_before = page.locator(BOT_BUBBLES).count()

        rasa.stop()
        assert rasa.process.returncode is not None
        expect(page.locator(BANNER)).to_be_visible(timeout=10_000)
        question = "how much is delivery"
        page.locator(INPUT).fill(question)
        page.locator(INPUT).press("Enter")
        expect(page.locator("[data-helpdesk-chat] .log .status")).to_have_text("Waiting for connection")
        assert page.locator(CUSTOMER_BUBBLES).last.inner_text().endswith(question)
        page.wait_for_timeout(2000)  # several reconnection attempts fail meanwhile
        expect(page.locator(BOT_BUBBLES)).to_have_count(bubbles_before)

        # While Rasa is down the conversation is on disk (SQLite tracker
        # store) and the queued message has not reached it. (Read from the
        # file: once Rasa is back the widget may resend at any moment.)
        stored = stored_user_texts(rasa, sid)
        assert stored.count(SHIPPING_QUESTION) == 1, stored
        assert question not in stored, stored

        rasa.start()

        delivery = page.locator(BOT_BUBBLES).filter(has_text="£")
        expect(delivery).to_have_count(1, timeout=REPLY_TIMEOUT_MS)
        expect(page.locator(BANNER)).to_be_hidden()
        expect(page.locator("[data-helpdesk-chat] .log .status")).to_have_count(0)
        page.wait_for_timeout(3000)  # a duplicate would have arrived by now
        texts = user_texts(rasa, sid)
        assert texts.count(question) == 1, texts
        assert texts.count(SHIPPING_QUESTION) == 1, texts
        expect(delivery).to_have_count(1)
        assert sum(t.endswith(question) for t in page.locator(CUSTOMER_BUBBLES).all_inner_texts()) == 1
        assert sum("working days" in t for t in page.locator(BOT_BUBBLES).all_inner_texts()) == 1
        assert page.errors == []
    finally:
        rasa.stop()
        shop.close()


# ---- keyboard, screen readers, small screens --------------------------------


def test_keyboard_only_open_type_send_choose_a_button_and_escape(stack, new_page):
    page = open_shop(new_page(), stack, "?signed_in=1")

    # Shift+Tab from the top of the page wraps round to the last control: the launcher.
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(FOCUSED).startswith("launcher")
    page.keyboard.press("Enter")
    expect(page.locator(LAUNCHER)).to_have_attribute("aria-expanded", "true")
    assert page.evaluate(FOCUSED).startswith("input")  # focus moved into the panel
    expect(page.locator(BOT_BUBBLES).first).to_be_visible(timeout=REPLY_TIMEOUT_MS)

    page.keyboard.type("the kettle I bought stopped working after two days")
    page.keyboard.press("Enter")
    expect(page.locator(QUICK_REPLIES)).to_have_count(1, timeout=REPLY_TIMEOUT_MS)
    page.keyboard.press("Shift+Tab")  # from the message field back to the suggested reply
    assert page.evaluate(FOCUSED) == "quick-reply|It's not about an order"
    page.keyboard.press("Enter")
    expect(page.locator(QUICK_REPLIES)).to_have_count(2, timeout=REPLY_TIMEOUT_MS)
    assert page.evaluate(FOCUSED).startswith("input")  # the chosen button is gone, focus is not lost

    page.keyboard.press("Escape")
    expect(page.locator(LAUNCHER)).to_have_attribute("aria-expanded", "false")
    assert page.evaluate(FOCUSED).startswith("launcher")
    expect(page.locator("[data-helpdesk-chat] .panel")).to_be_hidden()


def test_the_conversation_is_a_live_region_and_axe_finds_no_serious_violation(stack, new_page):
    page = open_shop(new_page(), stack)
    open_chat(page)
    say(page, SHIPPING_QUESTION)

    log = page.locator("[data-helpdesk-chat] .log")
    assert log.get_attribute("role") == "log"
    assert log.get_attribute("aria-live") == "polite"
    assert page.locator("[data-helpdesk-chat] .panel").get_attribute("role") == "dialog"

    page.add_script_tag(path=str(AXE))
    results = page.evaluate(
        "async () => await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa', 'best-practice']})"
    )
    serious = [
        {"id": v["id"], "help": v["help"], "targets": [n["target"] for n in v["nodes"]]}
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == [], json.dumps(serious, indent=1)


def test_reduced_motion_turns_animations_off(stack, new_page):
    page = open_shop(new_page(reduced_motion="reduce"), stack)
    open_chat(page)

    durations = page.evaluate(
        """() => {
      const root = document.querySelector('[data-helpdesk-chat]').shadowRoot;
      return [root.querySelector('.panel'), root.querySelector('.typing i'), root.querySelector('.row')]
        .map((el) => getComputedStyle(el))
        .map((s) => [s.transitionDuration, s.animationName]);
    }"""
    )

    assert all(duration in ("0s", "0s, 0s, 0s, 0s") and name == "none" for duration, name in durations), durations


@pytest.mark.parametrize("width", [320, 375])
def test_on_a_phone_the_panel_fills_the_screen_without_sideways_scrolling(stack, new_page, width):
    page = open_shop(new_page(viewport={"width": width, "height": 640}, is_mobile=True, has_touch=True), stack)
    assert not has_horizontal_overflow(page, width)

    open_chat(page)
    say(page, "I'd like a very long word: Donaudampfschifffahrtsgesellschaftskapitänskajüte " * 2)

    panel = page.locator("[data-helpdesk-chat] .panel").bounding_box()
    assert panel == {"x": 0, "y": 0, "width": width, "height": 640}
    for selector in (INPUT, "[data-helpdesk-chat] .send", "[data-helpdesk-chat] .close"):
        box = page.locator(selector).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, selector
    for bubble in page.locator("[data-helpdesk-chat] .log .bubble").all():
        box = bubble.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width
    assert not has_horizontal_overflow(page, width)
    page.screenshot(path=f"/tmp/widget-phone-{width}.png")


def test_a_second_tag_on_the_page_does_not_add_a_second_widget(stack, new_page):
    page = open_shop(new_page(), stack)

    page.add_script_tag(url=f"{stack.crm_url}/widget.js?again={uuid.uuid4().hex}")

    assert page.locator("[data-helpdesk-chat]").count() == 1
    assert page.evaluate("Object.keys(window).filter((k) => /helpdesk/i.test(k))") == ["HelpdeskChat"]
