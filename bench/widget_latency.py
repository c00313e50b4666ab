"""Time from the customer's Enter to the bot's bubble on screen, in the real
widget against the real stack, and the same questions over a bare socket.io
client for comparison (what Rasa itself takes).

    .venv/backend/bin/python -m bench.widget_latency [--messages 50]

Starts the stack like the end-to-end tests (free ports, temporary var/),
drives Debian's Chromium with Playwright, prints p50/p95/max in ms.
Needs `make setup train` and /usr/bin/chromium (`make test-e2e` installs it).
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from harness.browser import BOT_BUBBLES, LAUNCHER, chromium_browser
from harness.stack import Stack
from harness.stats import percentile
from harness.widget_client import WidgetClient

QUESTIONS = [
    "how long does delivery take",
    "what does delivery cost",
    "do you deliver to Canada?",
    "how do I return an item",
    "when will I get my refund",
    "which payment methods do you accept",
    "what is your warranty",
    "how can I change my password",
    "what are your opening hours",
    "do you sell gift cards",
]

# Enter in the message field, then wait for a new bot row and the frame that paints it.
ENTER_TO_BUBBLE = """async (text) => {
  const root = document.querySelector('[data-helpdesk-chat]').shadowRoot;
  const log = root.querySelector('.log');
  const input = root.querySelector('textarea');
  const before = log.querySelectorAll('.from-bot').length;
  input.value = text;
  const start = performance.now();
  input.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true, cancelable: true}));
  await new Promise((resolve) => {
    const observer = new MutationObserver(() => {
      if (log.querySelectorAll('.from-bot').length > before) { observer.disconnect(); resolve(); }
    });
    observer.observe(log, {childList: true});
  });
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  return performance.now() - start;
}"""


def summary(name: str, samples: list[float]) -> str:
    return (
        f"{name:<28} n={len(samples):<3} p50 {statistics.median(samples):6.0f} ms"
        f"   p95 {percentile(samples, 95):6.0f} ms   max {max(samples):6.0f} ms"
    )


def widget_latencies(stack: Stack, count: int) -> list[float]:
    with chromium_browser() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{stack.crm_url}/")
        page.wait_for_function("() => window.HelpdeskChat !== undefined")
        page.locator(LAUNCHER).click()
        page.locator(BOT_BUBBLES).first.wait_for(timeout=60_000)
        return [page.evaluate(ENTER_TO_BUBBLE, QUESTIONS[i % len(QUESTIONS)]) for i in range(count)]


def socketio_latencies(stack: Stack, count: int) -> list[float]:
    client = WidgetClient(stack.rasa_url)
    samples = []
    for i in range(count):
        start = time.perf_counter()
        client.send(QUESTIONS[i % len(QUESTIONS)])
        client.replies.get(timeout=30)
        samples.append((time.perf_counter() - start) * 1000)
        time.sleep(0.3)  # later parts of a split answer arrive before the next question
        while not client.replies.empty():
            client.replies.get_nowait()
    client.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(var_dir=Path(tmp) / "var").start()
        try:
            widget = widget_latencies(stack, args.messages)
            bare = socketio_latencies(stack, args.messages)
        finally:
            stack.stop()
    print(summary("widget: Enter -> bubble", widget))
    print(summary("bare socket.io round trip", bare))


if __name__ == "__main__":
    main()
