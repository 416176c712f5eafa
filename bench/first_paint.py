"""Time from the server being up to the first page drawn, in a real browser.

    python bench/first_paint.py                  # 5 pairs of servers, print the table
    python bench/first_paint.py --runs 3 --write # and put it into bench/RESULTS.md
    python bench/first_paint.py --before DIR     # interleaved with the code in DIR
    python bench/first_paint.py --launch streamlit  # `streamlit run app.py` servers

Each run starts a fresh server (a new process: cold imports, empty memory caches)
on the bundled sample log: ``cxlab app``, which analyses the sample before it
answers (``cxlab.ui.serve``), or ``streamlit run app.py``, which does that work
for its first visitor. Twice: a restart, whose summaries an earlier server stored
on disk, and a first start with an empty store. It waits
until ``/_stcore/health`` answers (t0), then opens, in headless Chromium at
1440×900 (started before the server, so its own start-up is not counted):

- ``/`` (the portfolio): until the experiments table is drawn and the script run
  has finished (the status widget is gone);
- a results deep link (``/results?experiment=…``) in a second tab right after:
  until its first chart is drawn (a picture made on the server; in an older
  checkout, vega-embed's ``.marks``) and the script run has finished;
- in that tab, the other experiment chosen in the page's experiment box: the
  same app, no new tab (until its title, its first chart and the end of the run);
  then, in the same tab, its decision method switched to Bayesian, then its second
  metric chosen under "Metric in depth" (each until a chart shows something new,
  every chart is drawn and the run is over: widget changes as a person sees them,
  server and browser together, each a first view on a fresh server);
- after a 10 s pause (a person reading the portfolio), that other experiment's
  results in a third tab.

Each run also times a Streamlit app of one Markdown table the same way (the floor:
Streamlit's and the browser's own cost, in a first and a second tab).

Times are wall seconds from t0 (first page) or from the tab's navigation (results
pages), on a machine whose 2 cores are shared with other jobs: read the spread.
The first page is also timed from the server's launch (the whole wait of whoever
starts it), so work moved before t0 cannot hide. ``--before DIR`` runs a copy of
another commit (with its own ``data/events.parquet``) the same way, each of its
servers right before this checkout's, so both see the same load.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from results_md import write_section

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
HEADING = "## First page drawn after the server is up (browser)"
CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 240_000
FIRST = "proactive-shipping-email"
LATER = "free-shipping-threshold"
LATER_NAME = "Free-shipping threshold"  # its name in experiments/
IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
# A chart: a picture made on the server (this code), or a Vega-Lite or Plotly chart
# drawn in the browser (a --before checkout older than it).
CHART_DRAWN = (
    '[data-testid="stImage"] img[src^="data:image/svg+xml"], '
    '[data-testid="stVegaLiteChart"] .marks, .js-plotly-plot .main-svg'
)
# The portfolio's table: Markdown (this code), or an st.table (a --before checkout).
TABLE_DRAWN = '[data-testid="stMarkdownContainer"] table, [data-testid="stTable"]'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


Row = tuple[float, float, float, float, float, float, float, float, float]


def command(launch: str, port: int) -> list[str]:
    """How a server is started: ``cxlab app`` or ``streamlit run app.py``."""
    if launch == "app":
        return [sys.executable, "-m", "cxlab", "app", "--port", str(port)]
    flags = ["--server.port", str(port), "--server.headless", "true"]
    return [sys.executable, "-m", "streamlit", "run", "app.py", *flags]


@contextlib.contextmanager
def server(
    store: Path, root: Path, launch: str
) -> Iterator[tuple[str, float, float, int]]:
    """A fresh server of the checkout ``root`` (:func:`command`) keeping its
    summaries on disk in ``store``; its URL, its launch, the moment it answered,
    its pid."""
    port = _free_port()
    launched = time.perf_counter()
    process = subprocess.Popen(
        command(launch, port),
        cwd=root,
        env={**os.environ, "CXLAB_CACHE_DIR": str(store)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError("streamlit exited")
            health = f"{url}/_stcore/health"
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(health, timeout=5) as r,
            ):
                if r.status == 200:
                    break
            time.sleep(0.05)
        yield url, launched, time.perf_counter(), process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def _drawn(page: object, selector: str) -> None:
    page.wait_for_selector(selector, timeout=TIMEOUT_MS)
    page.wait_for_function(IDLE, timeout=TIMEOUT_MS)


def _results(context: object, url: str, experiment: str) -> tuple[object, float]:
    """A new tab on an experiment's results page; the tab and its seconds."""
    page = context.new_page()
    start = time.perf_counter()
    page.goto(f"{url}/results?experiment={experiment}")
    _drawn(page, CHART_DRAWN)
    return page, time.perf_counter() - start


def _switched(page: object, name: str) -> float:
    """Seconds until the results page shows experiment ``name`` once it is chosen
    in the page's experiment box (a rerun in the same tab)."""
    page.locator('[data-testid="stSelectbox"]').first.click()
    option = page.get_by_role("option").filter(has_text=name).first
    start = time.perf_counter()
    option.click()
    page.wait_for_selector(f'[data-testid="stMain"] h1:has-text("{name}")')
    _drawn(page, CHART_DRAWN)
    return time.perf_counter() - start


# What the page's charts show: each picture's (or Vega chart's) source, in order.
CHARTS_SHOWN = """() => [...document.querySelectorAll(
  '[data-testid="stMain"] [data-testid="stImage"] img, '
  + '[data-testid="stMain"] [data-testid="stVegaLiteChart"] .marks'
)].map(e => e.tagName === "IMG" ? e.src : e.innerHTML).join("|")"""
# Every chart on the page drawn: pictures loaded, Vega charts with their marks.
CHARTS_READY = """() => [...document.querySelectorAll(
  '[data-testid="stMain"] [data-testid="stVegaLiteChart"]'
)].every(e => e.querySelector(".marks")) && [...document.querySelectorAll(
  '[data-testid="stMain"] [data-testid="stImage"] img'
)].every(i => i.complete)"""


def _redrawn(page: object, change: Callable[[], None]) -> float:
    """Seconds from a widget change to its run's end with a chart drawn anew."""
    before = page.evaluate(CHARTS_SHOWN)
    start = time.perf_counter()
    change()
    page.wait_for_function(
        f"b => ({CHARTS_SHOWN})() !== b && ({IDLE})() && ({CHARTS_READY})()",
        arg=before,
        timeout=TIMEOUT_MS,
        polling=10,
    )
    return time.perf_counter() - start


def _method_switched(page: object) -> float:
    """Seconds until the scorecard shows another method (the segmented control)."""
    switch = page.locator('[data-testid="stButtonGroup"]').first
    return _redrawn(page, switch.get_by_text("Bayesian", exact=True).click)


def _metric_switched(page: object) -> float:
    """Seconds until "Metric in depth" shows the box's second metric."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Metric")
    options = page.get_by_role("option")
    for _ in range(20):  # a click right after a rerun may not open the list yet
        box.locator("input").click()
        page.wait_for_timeout(250)
        if options.count() > 1:
            break
    return _redrawn(page, options.nth(1).click)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(browser: object, store: Path, root: Path, launch: str) -> Row:
    """(first page s from up, from launch, its server CPU s from up, from launch,
    results deep link s, another experiment chosen in it s, then its method and its
    metric switched s, later results s)."""
    with server(store, root, launch) as (url, launched, up, pid):
        cpu_up = cpu_seconds(pid)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.goto(url)
        _drawn(page, TABLE_DRAWN)
        drawn = time.perf_counter()
        cpu_total = cpu_seconds(pid)
        tab, deep = _results(context, url, FIRST)
        switched = _switched(tab, LATER_NAME)
        method = _method_switched(tab)
        metric = _metric_switched(tab)
        page.wait_for_timeout(10_000)
        later = _results(context, url, LATER)[1]
        context.close()
    return (
        drawn - up,
        drawn - launched,
        cpu_total - cpu_up,
        cpu_total,
        deep,
        switched,
        method,
        metric,
        later,
    )


def floor_run(browser: object, folder: Path) -> tuple[float, float]:
    """(drawn s from up, s in a second tab) of a Streamlit app of one Markdown
    table: what Streamlit and the browser cost before any of CX Lab's work."""
    (folder / "app.py").write_text(
        'import streamlit as st\nst.markdown("| a | b |\\n| --- | --- |\\n| 1 | 2 |")\n'
    )
    with server(folder, folder, "streamlit") as (url, _, up, _):
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.goto(url)
        _drawn(page, TABLE_DRAWN)
        first = time.perf_counter() - up
        second = context.new_page()
        start = time.perf_counter()
        second.goto(url)
        _drawn(second, TABLE_DRAWN)
        again = time.perf_counter() - start
        context.close()
    return first, again


def _stats(values: Sequence[float]) -> str:
    return f"{min(values):.1f} / {statistics.median(values):.1f} / {max(values):.1f}"


def _rows(label: str, rows: list[Row]) -> list[str]:
    whats = (
        "portfolio (`/`) drawn, from the server being up",
        "portfolio (`/`) drawn, from the server's launch",
        "server CPU (user + sys) for that first page",
        "server CPU from its launch to that first page",
        f"results deep link ({FIRST}) right after",
        f"{LATER} chosen in that page's experiment box (same tab)",
        "then its decision method switched to Bayesian (same tab)",
        "then its second metric chosen under Metric in depth (same tab)",
        f"results of {LATER} in a new tab, 10 s later",
    )
    return [
        f"| {label}: {what} | {_stats(column)} | "
        + ", ".join(f"{x:.1f}" for x in column)
        + " |"
        for what, column in zip(whats, zip(*rows, strict=True), strict=True)
    ]


def measure(runs: int, launch: str, before: Path | None = None) -> str:
    """Run ``runs`` pairs of fresh servers; the Markdown section with the numbers.

    Each pair is a *restart* (the summaries stored on disk by an earlier server of
    the same log and configs) and a *first start* (an empty store: the log is
    scanned), interleaved so that both see the same load; with ``before``, that
    checkout's pair runs right before this one's.
    """
    from playwright.sync_api import sync_playwright

    trees = {"": ROOT} if before is None else {"before": before, "after": ROOT}
    load_before = os.getloadavg()
    started = dt.datetime.now(dt.UTC)
    warm: dict[str, list[Row]] = {tree: [] for tree in trees}
    cold: dict[str, list[Row]] = {tree: [] for tree in trees}
    floor: list[tuple[float, float]] = []
    with (
        sync_playwright() as p,
        tempfile.TemporaryDirectory() as kept,
        tempfile.TemporaryDirectory() as scratch,
    ):
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--headless"]
        )
        for tree, root in trees.items():  # fills each store; not measured
            one_run(browser, Path(kept) / f"{tree}-store", root, launch)
        for i in range(runs):
            floor.append(floor_run(browser, Path(scratch)))
            print(f"run {i + 1} floor: {floor[-1][0]:.2f}, {floor[-1][1]:.2f}")
            for tree, root in trees.items():
                stored = Path(kept) / f"{tree}-store"
                warm[tree].append(one_run(browser, stored, root, launch))
                empty = Path(scratch) / f"{tree}{i}"
                cold[tree].append(one_run(browser, empty, root, launch))
                for label, row in (
                    ("restart", warm[tree][-1]),
                    ("first", cold[tree][-1]),
                ):
                    print(
                        f"run {i + 1} {tree} {label}: "
                        + ", ".join(f"{x:.2f}" for x in row)
                    )
        browser.close()
    load_after = os.getloadavg()
    load = " / ".join(
        f"{a:.2f}–{b:.2f}" for a, b in zip(load_before, load_after, strict=True)
    )
    reproduce = f"python bench/first_paint.py --runs {runs} --launch {launch}"
    if before is not None:
        reproduce += f" --before {before}"
    rows = [
        line
        for tree in trees
        for kind, table in (("restart", warm), ("first start", cold))
        for line in _rows(f"{tree} {kind}".strip(), table[tree])
    ]
    alone, again = zip(*floor, strict=True)
    rows += [
        "| floor: a one-table Streamlit app drawn, from the server being up | "
        f"{_stats(alone)} | " + ", ".join(f"{x:.1f}" for x in alone) + " |",
        f"| floor: the same app in a second tab | {_stats(again)} | "
        + ", ".join(f"{x:.1f}" for x in again)
        + " |",
    ]
    return "\n".join(
        [
            HEADING,
            "",
            f"Reproduce: `{reproduce}`. Measured "
            f"{started:%Y-%m-%d %H:%M} UTC, {runs} pairs of fresh servers"
            + (" per checkout" if before is not None else "")
            + f"; load average (1 / 5 / 15 min, before–after) {load}; "
            f"nproc = {os.cpu_count()}.",
            f"Servers started with `{' '.join(command(launch, 8501)[1:])}`. "
            "A restart finds the summaries (and results) an earlier server stored "
            "(`cxlab.store`); a first start scans the log.",
            "",
            "| what | min / median / max s | each run s |",
            "| --- | --- | --- |",
            *rows,
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="fresh servers (5)")
    parser.add_argument(
        "--write", action="store_true", help="also write bench/RESULTS.md"
    )
    parser.add_argument(
        "--launch",
        choices=("app", "streamlit"),
        default="app",
        help="start servers with `cxlab app` (default) or `streamlit run app.py`",
    )
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="a copy of another commit to interleave with this checkout",
    )
    args = parser.parse_args(argv)
    text = measure(args.runs, args.launch, args.before)
    print(text)
    if args.write:
        write_section(RESULTS, HEADING, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
