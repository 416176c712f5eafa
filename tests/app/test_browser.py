"""The app in a real browser: headless Chromium against `streamlit run app.py`.

What AppTest cannot see: Vega-Lite charts actually drawn, query-parameter deep links,
the layout a person sees. Full-page screenshots go to the ignored folder
build/screenshots/ (so a test run leaves the tree clean), or to the folder named by
CXLAB_SCREENSHOTS: `CXLAB_SCREENSHOTS=docs/screenshots pytest -m browser` refreshes
the README's pictures.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / os.environ.get("CXLAB_SCREENSHOTS", "build/screenshots")
STARTUP_S = 120
PAGE_TIMEOUT_MS = 240_000  # the first page scans the log; 2 shared cores
ERROR_TEXTS = ("Traceback", "Something went wrong", "StreamlitAPIException", "Error:")
# A chart as the pages draw it: an SVG picture (a data: URL) whose text alternative
# is the chart's title (cxlab.ui.drawing).
DRAWN = '[data-testid="stImage"] img[src^="data:image/svg+xml"]'
PORTFOLIO_TABLE = '[data-testid="stMarkdownContainer"] table'  # a Markdown table


def chart(page: object, title: str) -> object:
    """The charts drawn whose title starts with ``title``."""
    return page.locator(f'{DRAWN}[alt^="{title}"]')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(
    command: list[str | Path], port: int, cwd: Path, log: Path, **popen: object
) -> Iterator[str]:
    """A Streamlit server started by ``command`` on ``port``; its base URL once it
    answers. Its output goes to ``log``; it is stopped afterwards."""
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, **popen
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + STARTUP_S
            while True:
                if process.poll() is not None:
                    pytest.fail(f"streamlit exited: {log.read_text()[-2000:]}")
                try:
                    with urllib.request.urlopen(
                        f"{url}/_stcore/health", timeout=5
                    ) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not start: {log.read_text()[-2000:]}")
                time.sleep(0.5)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="session")
def server(sample_log: Path) -> Iterator[str]:
    """`streamlit run app.py` on a free port; its base URL."""
    port = free_port()
    log = (ROOT / ".pytest_cache" / f"streamlit-{port}.log").resolve()
    log.parent.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "streamlit", "run", "app.py"]
    command += ["--server.port", str(port), "--server.headless", "true"]
    command += ["--browser.gatherUsageStats", "false"]
    with running(command, port, ROOT, log) as url:
        yield url


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    """A 1440×900 tab; a request that leaves the machine fails the test (a server
    without internet access must work as well: no fonts, icons or scripts from
    elsewhere)."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    away: list[str] = []
    context.on("request", lambda r: away.append(r.url) if leaves(r.url) else None)
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    yield page
    context.close()
    assert away == []


def leaves(url: str) -> bool:
    """Whether a request goes to another machine."""
    local = ("http://127.0.0.1:", "http://localhost:", "data:", "blob:", "file:")
    return not url.startswith(local) and url != "about:blank"


def wait_until_idle(page: object) -> None:
    """Wait for the script run to finish (the status widget disappears)."""
    page.wait_for_selector('[data-testid="stApp"]')
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
        timeout=PAGE_TIMEOUT_MS,
    )
    page.wait_for_timeout(1500)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
        timeout=PAGE_TIMEOUT_MS,
    )


def main_text(page: object) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def assert_no_error_text(page: object) -> None:
    text = page.locator('[data-testid="stApp"]').inner_text()
    for bad in ERROR_TEXTS:
        assert bad not in text, f"{bad!r} visible on {page.url}"
    assert page.locator('[data-testid="stException"]').count() == 0


def screenshot(page: object, name: str) -> None:
    """A full-page PNG: Streamlit scrolls inside its own container, so the window
    is first made as tall as the content."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate(
        """() => Math.max(...[
            '[data-testid="stMain"]', '[data-testid="stAppViewContainer"]',
            '[data-testid="stMainBlockContainer"]', 'section.main'
        ].map(s => document.querySelector(s)).filter(Boolean)
         .map(e => e.scrollHeight), document.body.scrollHeight)"""
    )
    width = page.viewport_size["width"]
    page.set_viewport_size({"width": width, "height": min(int(height) + 40, 16_000)})
    page.wait_for_timeout(1500)  # Vega redraws container-wide charts on resize
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": width, "height": 900})


def open_page(page: object, url: str, expected: str | None = None) -> None:
    """Go to a page and wait until its script has drawn ``expected`` (or a title)."""
    page.goto(url)
    if expected is None:
        page.wait_for_selector('[data-testid="stMain"] h1')
    else:
        page.wait_for_function(
            "(t) => (document.querySelector('[data-testid=\"stMain\"]') || {})"
            ".innerText?.includes(t)",
            arg=expected,
        )
    wait_until_idle(page)


def test_portfolio_is_the_home_page_with_links_to_results(
    page: object, server: str
) -> None:
    open_page(page, server, "All experiments")
    assert "Experiment portfolio" in main_text(page)
    page.wait_for_selector(PORTFOLIO_TABLE)
    text = main_text(page)
    for tile in ("Running now", "Decided this quarter", "Win rate", "Learning rate"):
        assert tile in text
    assert "shrunk toward zero" in text
    assert_no_error_text(page)
    screenshot(page, "portfolio")
    assert page.locator('[data-testid="stDataFrame"]').count() == 0  # not sent yet
    page.get_by_text("Details: owner, tags, data, why and decision notes").click()
    page.wait_for_selector('[data-testid="stDataFrame"]')  # drawn on the switch
    wait_until_idle(page)
    assert_no_error_text(page)


def download_of(page: object, button: str) -> object:
    """The file a download button gives (its data is rendered on the click).

    A click that lands while the page is still rerunning can find its file dropped
    with that run's leftovers: the button shows an error, and a person clicks once
    more; so does this. A miss fails with what the button shows.
    """
    from playwright.sync_api import TimeoutError as NoDownload

    def click(timeout_ms: int) -> object:
        wait_until_idle(page)
        with page.expect_download(timeout=timeout_ms) as download:
            page.get_by_role("button", name=button).click()
        return download.value

    with contextlib.suppress(NoDownload):
        return click(45_000)
    try:
        return click(120_000)
    except NoDownload:
        shown = page.locator('[data-testid="stDownloadButton"]').filter(has_text=button)
        pytest.fail(f"no file from {button!r}; it shows {shown.first.inner_html()!r}")


def test_results_deep_link_draws_charts_and_switches_method(
    page: object, server: str, tmp_path: Path
) -> None:
    open_page(page, f"{server}/results?experiment=proactive-shipping-email", "Download")
    page.wait_for_selector(DRAWN)
    text = main_text(page)
    assert "Proactive shipping e-mail" in text
    assert "Recommendation: Ship." in text
    assert "Showing the sequential test" in text  # the config's decision
    assert page.locator(DRAWN).count() >= 3
    # the novelty check: the engine's sentence; its chart in its own tab
    assert "Does the effect fade? No sign of novelty" in text  # the primary metric
    assert page.locator('[data-testid="stDataFrame"]').count() == 0  # no grid sent
    scorecard = page.locator("table", has_text="verdict").first
    assert page.evaluate(  # the scorecard fits its column: nothing cut or scrolled
        "t => t.scrollWidth <= t.parentElement.clientWidth", scorecard.element_handle()
    )
    assert_no_error_text(page)
    screenshot(page, "results")

    # a tab is drawn when clicked (only the open one is sent to the browser)
    assert chart(page, "Posterior").count() == 0
    page.get_by_role("tab", name="Posterior").click(timeout=30_000)
    chart(page, "Posterior").wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)
    page.get_by_role("tab", name="Does the effect fade?").click(timeout=30_000)
    chart(page, "Does the effect fade?").wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)
    # the details are sent when their expander is opened
    page.get_by_text("Details: every method, raw p-values and expected loss").click()
    page.wait_for_selector('[data-testid="stDataFrame"]', timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)
    # so are the exposures and the downloads
    assert page.locator('[data-testid="stDownloadButton"]').count() == 0
    page.get_by_text("Exposures: new users per day and arm").click()
    chart(page, "New users per day").wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)
    page.get_by_text("Download: results (CSV, JSON) and charts (HTML, PNG)").click()
    page.get_by_role("button", name="Chart (PNG)").wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)

    switch = page.locator('[data-testid="stButtonGroup"]').first
    switch.get_by_text("Bayesian", exact=True).click(timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"stMain\"]')"
        ".innerText.includes('what-if')",
        timeout=PAGE_TIMEOUT_MS,
    )
    wait_until_idle(page)
    after = main_text(page)
    assert "Showing the bayesian test" in after
    path = download_of(page, "Chart (PNG)").path()
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert after != text
    assert_no_error_text(page)

    # the charts' HTML download draws every chart with no network at all
    saved = tmp_path / "charts.html"
    download_of(page, "Charts (HTML)").save_as(saved)
    offline = page.context.new_page()
    offline.route(
        "**/*",
        lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort(),
    )
    offline.goto(saved.as_uri())
    sections = saved.read_text().count('<section id="chart')
    assert sections >= 4  # the forests, lift, per arm and posterior at least
    offline.wait_for_function(
        "() => document.querySelectorAll('.vega-embed .chart-wrapper > .marks')"
        f".length === {sections}",
        timeout=60_000,
    )
    offline.close()


def test_srm_experiment_shows_the_red_banner(page: object, server: str) -> None:
    open_page(page, f"{server}/results?experiment=recommendations-carousel", "Download")
    page.wait_for_selector(DRAWN)
    assert "Sample-ratio mismatch" in main_text(page)
    assert_no_error_text(page)
    screenshot(page, "results-srm")


@pytest.mark.parametrize("name", ["configs", "data", "planner"])
def test_other_pages_render_without_errors(
    page: object, server: str, name: str
) -> None:
    if not (ROOT / "pages" / f"{name}.py").is_file():
        pytest.skip(f"pages/{name}.py does not exist yet")
    open_page(page, f"{server}/{name}")
    assert main_text(page).strip()
    assert_no_error_text(page)
    screenshot(page, name)


def test_portfolio_url_shows_the_essential_columns_without_scrolling(
    page: object, server: str
) -> None:
    open_page(page, f"{server}/portfolio", "All experiments")
    assert "Experiment portfolio" in main_text(page)
    assert "Page not found" not in page.locator("body").inner_text()
    table = page.locator(PORTFOLIO_TABLE)
    box = table.bounding_box()
    assert box["x"] + box["width"] <= 1440
    # Names in words, above the fold of a 1440×900 window: nothing scrolled.
    names = page.locator(f"{PORTFOLIO_TABLE} td:first-child a")
    first = names.first.bounding_box()
    assert first["y"] + first["height"] <= 900
    assert names.first.inner_text() == "Checkout A/A test"
    assert page.evaluate(
        "() => [...document.querySelectorAll('*')].every(e => !e.scrollTop)"
    )
    assert page.evaluate(  # the table fits its column: nothing cut or scrolled
        "t => t.scrollWidth <= t.parentElement.clientWidth", table.element_handle()
    )
    headers = page.evaluate(
        f"() => [...document.querySelectorAll('{PORTFOLIO_TABLE} th')]"
        ".map(h => [h.innerText.trim(), h.getBoundingClientRect().right])"
    )
    shown = {name: right for name, right in headers if name}
    for name in ("experiment", "status", "primary effect [interval]", "verdict"):
        assert name in shown
        assert shown[name] <= 1440
    link = page.get_by_role("link", name="Proactive shipping e-mail")
    assert link.get_attribute("href").endswith(
        "results?experiment=proactive-shipping-email"
    )
    assert_no_error_text(page)
    screenshot(page, "portfolio-executives")


def test_results_deep_link_with_every_parameter_sets_the_widgets(
    page: object, server: str
) -> None:
    query = (
        "experiment=free-shipping-threshold&method=bayesian&scale=abs"
        "&metric=conversion&variant=threshold_35&as_of=2026-10-20"
    )
    open_page(page, f"{server}/results?{query}", "Download")
    text = main_text(page)
    assert "Free-shipping threshold" in text
    assert "Showing the bayesian test" in text
    assert "as of 20 Oct 2026" in text
    scorecard = page.locator("table", has_text="verdict").first
    assert page.evaluate(  # two treatments, absolute deltas: it still fits
        "t => t.scrollWidth <= t.parentElement.clientWidth", scorecard.element_handle()
    )
    boxes = page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]')
    selected = [
        box.text_content()
        + " "
        + " ".join(i.input_value() for i in box.locator("input").all())
        for box in boxes.all()
    ]
    assert any("Conversion" in s for s in selected), selected
    assert any("threshold_35" in s for s in selected), selected
    active = page.evaluate(
        '() => [...document.querySelectorAll(\'[data-testid="stButtonGroup"] '
        "button')].filter(b => b.getAttribute('aria-checked') === 'true' || "
        "b.getAttribute('aria-pressed') === 'true' || "
        "(b.dataset.testid || '').includes('Active')).map(b => b.innerText.trim())"
    )
    assert "Bayesian" in active
    assert "Absolute" in active
    sidebar = page.locator('[data-testid="stSidebar"] input').first.input_value()
    assert sidebar == "2026-10-20"
    assert "as_of=2026-10-20" in page.url
    assert_no_error_text(page)
    screenshot(page, "results-deep-link")
