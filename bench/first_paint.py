"""Time from the server being up to the first page drawn, in a real browser.

    python bench/first_paint.py                  # 5 pairs of servers, print the table
    python bench/first_paint.py --runs 3 --write # and put it into bench/RESULTS.md

Each run starts a fresh ``streamlit run app.py`` (a new process: cold imports, empty
memory caches) on the bundled sample log, twice: a restart, whose summaries an
earlier server stored on disk, and a first start with an empty store. It waits
until ``/_stcore/health`` answers (t0), then opens, in headless Chromium at
1440×900 (started before the server, so its own start-up is not counted):

- ``/`` (the portfolio): until the experiments table is drawn and the script run
  has finished (the status widget is gone);
- a results deep link (``/results?experiment=…``) in a second tab right after:
  until its charts are drawn;
- after a 10 s pause (a person reading the portfolio), another experiment's
  results in a third tab.

Times are wall seconds from t0 (first page) or from the tab's navigation (results
pages), on a machine whose 2 cores are shared with other jobs: read the spread.
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
from collections.abc import Iterator, Sequence
from pathlib import Path

from results_md import write_section

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
HEADING = "## First page drawn after the server is up (browser)"
CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 240_000
FIRST = "proactive-shipping-email"
LATER = "free-shipping-threshold"
IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(store: Path) -> Iterator[tuple[str, float, int]]:
    """A fresh ``streamlit run app.py`` keeping its summaries on disk in ``store``;
    its URL, the moment it answered, its pid."""
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
        ],
        cwd=ROOT,
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
        yield url, time.perf_counter(), process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def _drawn(page: object, selector: str) -> None:
    page.wait_for_selector(selector, timeout=TIMEOUT_MS)
    page.wait_for_function(IDLE, timeout=TIMEOUT_MS)


def _results(context: object, url: str, experiment: str) -> float:
    page = context.new_page()
    start = time.perf_counter()
    page.goto(f"{url}/results?experiment={experiment}")
    _drawn(page, ".js-plotly-plot .main-svg")
    return time.perf_counter() - start


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(browser: object, store: Path) -> tuple[float, float, float, float]:
    """(first page s, its server CPU s, results deep link s, later results s)."""
    with server(store) as (url, up, pid):
        cpu_up = cpu_seconds(pid)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.goto(url)
        _drawn(page, '[data-testid="stTable"], [data-testid="stDataFrame"]')
        first = time.perf_counter() - up
        cpu = cpu_seconds(pid) - cpu_up
        deep = _results(context, url, FIRST)
        page.wait_for_timeout(10_000)
        later = _results(context, url, LATER)
        context.close()
    return first, cpu, deep, later


def _stats(values: Sequence[float]) -> str:
    return f"{min(values):.1f} / {statistics.median(values):.1f} / {max(values):.1f}"


def _rows(label: str, rows: list[tuple[float, float, float, float]]) -> list[str]:
    first, cpu, deep, later = zip(*rows, strict=True)
    return [
        f"| {label}: portfolio (`/`) drawn, from the server being up | "
        f"{_stats(first)} | " + ", ".join(f"{x:.1f}" for x in first) + " |",
        f"| {label}: server CPU (user + sys) for that first page | {_stats(cpu)} | "
        + ", ".join(f"{x:.1f}" for x in cpu)
        + " |",
        f"| {label}: results deep link ({FIRST}) right after | {_stats(deep)} | "
        + ", ".join(f"{x:.1f}" for x in deep)
        + " |",
        f"| {label}: results of {LATER}, 10 s later | {_stats(later)} | "
        + ", ".join(f"{x:.1f}" for x in later)
        + " |",
    ]


def measure(runs: int) -> str:
    """Run ``runs`` pairs of fresh servers; the Markdown section with the numbers.

    Each pair is a *restart* (the summaries stored on disk by an earlier server of
    the same log and configs) and a *first start* (an empty store: the log is
    scanned), interleaved so that both see the same load.
    """
    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()
    started = dt.datetime.now(dt.UTC)
    warm: list[tuple[float, float, float, float]] = []
    cold: list[tuple[float, float, float, float]] = []
    with (
        sync_playwright() as p,
        tempfile.TemporaryDirectory() as kept,
        tempfile.TemporaryDirectory() as scratch,
    ):
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--headless"]
        )
        one_run(browser, Path(kept))  # fills the store; not measured
        for i in range(runs):
            warm.append(one_run(browser, Path(kept)))
            cold.append(one_run(browser, Path(scratch) / str(i)))
            for label, row in (("restart", warm[-1]), ("first start", cold[-1])):
                print(f"run {i + 1} {label}: " + ", ".join(f"{x:.2f} s" for x in row))
        browser.close()
    load_after = os.getloadavg()
    load = " / ".join(
        f"{a:.2f}–{b:.2f}" for a, b in zip(load_before, load_after, strict=True)
    )
    return "\n".join(
        [
            HEADING,
            "",
            f"Reproduce: `python bench/first_paint.py --runs {runs}`. Measured "
            f"{started:%Y-%m-%d %H:%M} UTC, {runs} pairs of fresh servers; load "
            f"average (1 / 5 / 15 min, before–after) {load}; nproc = {os.cpu_count()}.",
            "A restart finds the summaries an earlier server stored (`cxlab.store`); a "
            "first start scans the log.",
            "",
            "| what | min / median / max s | each run s |",
            "| --- | --- | --- |",
            *_rows("restart", warm),
            *_rows("first start", cold),
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
    args = parser.parse_args(argv)
    text = measure(args.runs)
    print(text)
    if args.write:
        write_section(RESULTS, HEADING, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
