"""The console's dashboard in Chromium against the real stack (seeded with the
demo history by `crm seed-demo`): every chart is drawn, every CSV link
downloads a CSV with its header, the page passes axe's WCAG 2 A/AA rules,
and full-page screenshots at 1440 and 1024 px are kept as test artefacts in
$E2E_ARTIFACTS_DIR (default var/test-artifacts/) for a person to look at."""

import csv
import io
import os
from pathlib import Path
from urllib.parse import urljoin

import pytest
from playwright.sync_api import expect

from harness.browser import chromium_browser
from tests.e2e.widget_support import AXE

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("E2E_ARTIFACTS_DIR") or REPO / "var" / "test-artifacts")
DEMO_AGENT = ("agent@example.com", "northwind-demo")
WIDTHS = (1440, 1024)
# needs-trend, needs, CSAT, containment, wait, handling, CSAT by need/agent/channel, tiers, segments
CHARTS = 11
CSV_TABLES = 11  # one per card (both handoff charts share one table)

# Share of a canvas's pixels that are painted (Chart.js leaves the rest transparent).
PAINTED = """canvas => {
  const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
  return painted / (canvas.width * canvas.height);
}"""


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture
def dashboard(browser, stack):
    """Opens the dashboard, signed in as the demo agent, at a given width."""
    contexts = []

    def open_at(width: int, **options):
        context = browser.new_context(viewport={"width": width, "height": 900}, reduced_motion="reduce", **options)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{stack.crm_url}/console/dashboard")
        page.get_by_label("E-mail address").fill(DEMO_AGENT[0])
        page.get_by_label("Password").fill(DEMO_AGENT[1])
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
        page.wait_for_function("document.body.dataset.chartsReady === 'true'")
        return page

    yield open_at
    for context in contexts:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_every_chart_is_drawn_and_the_page_is_kept_as_a_screenshot(dashboard, width):
    page = dashboard(width)
    canvases = page.locator("canvas[data-chart]")
    expect(canvases).to_have_count(CHARTS)
    for index in range(CHARTS):
        canvas = canvases.nth(index)
        name = canvas.get_attribute("data-chart")
        assert canvas.get_attribute("data-drawn") == "true", name
        assert canvas.bounding_box()["width"] > 200, name
        assert canvas.evaluate(PAINTED) > 0.01, f"the {name} chart is blank"
    assert page.locator(".empty-state").count() == 0, "the demo history fills every report"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"dashboard-{width}.png", full_page=True)


def _check_csv(text: str, name: str) -> None:
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) >= 2, name
    assert all(header and header == header.strip() for header in rows[0]), rows[0]


def test_every_csv_link_downloads_the_table_with_its_header(dashboard):
    page = dashboard(WIDTHS[0], accept_downloads=True)
    links = page.get_by_role("link", name="CSV")
    expect(links).to_have_count(CSV_TABLES)
    # One link clicked for real: the browser saves it as a .csv file.
    with page.expect_download(timeout=90_000) as download_info:
        links.first.click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    _check_csv(Path(download.path()).read_text(encoding="utf-8"), download.suggested_filename)
    # Every link, fetched with the page's session: clicking eleven downloads in
    # a row timed out once on a busy CI machine while the server had answered.
    for index in range(CSV_TABLES):
        href = urljoin(page.url, links.nth(index).get_attribute("href"))
        response = page.request.get(href, timeout=90_000)
        assert response.status == 200, href
        assert response.headers["content-type"].startswith("text/csv"), href
        disposition = response.headers.get("content-disposition", "")
        assert disposition.startswith("attachment") and '.csv"' in disposition, (href, disposition)
        _check_csv(response.text(), href)


def test_the_range_control_and_tables_work_from_the_keyboard(dashboard):
    page = dashboard(WIDTHS[0])
    page.get_by_role("link", name="4 weeks").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="4 weeks")).to_have_attribute("aria-current", "page")
    page.wait_for_function("document.body.dataset.chartsReady === 'true'")
    summary = page.locator("#report-csat-by-week summary")
    summary.focus()
    page.keyboard.press("Enter")
    table = page.get_by_role("region", name="Satisfaction (CSAT): table")
    expect(table).to_be_visible()
    expect(table.get_by_role("row")).to_have_count(1 + 4)  # the header and four weeks


def test_the_dashboard_passes_axe(browser, stack):
    assert AXE.exists(), "axe-core is missing: `make setup` installs the widget's packages"
    # The console's Content-Security-Policy would (rightly) refuse the injected audit script.
    context = browser.new_context(viewport={"width": WIDTHS[0], "height": 900}, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(f"{stack.crm_url}/console/dashboard")
        page.get_by_label("E-mail address").fill(DEMO_AGENT[0])
        page.get_by_label("Password").fill(DEMO_AGENT[1])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_function("document.body.dataset.chartsReady === 'true'")
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        page.evaluate(AXE.read_text())
        result = page.evaluate("async () => await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa']})")
    finally:
        context.close()
    assert [(v["id"], [n["target"] for n in v["nodes"]]) for v in result["violations"]] == []
