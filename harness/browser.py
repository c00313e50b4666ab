"""The chat widget in a real browser: Debian's Chromium through Playwright
(in the backend environment), and the widget's elements as a page shows them,
for the browser tests and bench.widget_latency.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@contextmanager
def chromium_browser(*required: Path) -> Iterator:
    """Debian's Chromium through Playwright, once the files it needs exist."""
    from playwright.sync_api import sync_playwright

    missing = [str(path) for path in (*required, Path(CHROMIUM)) if not path.exists()]
    assert not missing, f"missing {', '.join(missing)}: run `make setup` and `make test-e2e` (installs Chromium)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# Selectors inside the widget's (open) shadow root; Playwright's CSS engine
# pierces it.
LAUNCHER = "[data-helpdesk-chat] button.launcher"
INPUT = "[data-helpdesk-chat] textarea"
BOT_BUBBLES = "[data-helpdesk-chat] .log .from-bot .bubble"
AGENT_ROWS = "[data-helpdesk-chat] .log .from-agent"
CUSTOMER_BUBBLES = "[data-helpdesk-chat] .log .from-customer .bubble"
QUICK_REPLIES = "[data-helpdesk-chat] .quick-replies button"
BANNER = "[data-helpdesk-chat] .banner"

# What the widget's shadow root has focused, seen from the page.
FOCUSED = """() => {
  const el = document.querySelector('[data-helpdesk-chat]').shadowRoot.activeElement;
  return el ? (el.className || el.tagName.toLowerCase()) + '|' + (el.textContent || '').trim() : null;
}"""
