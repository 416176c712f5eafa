"""Shared fixtures of the app tests: the repo root, the sample log, engine results,
and one headless Chromium per test process for the browser tests."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from cxlab.analysis import ExperimentResult
from cxlab.api import analyze_folder
from cxlab.charts import SPEC_METADATA

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "events.parquet"
EXPERIMENTS = ROOT / "experiments"
TIMEOUT = 180  # seconds per AppTest run: 2 shared cores, the first run scans the log
# The [auth] secrets of the login tests: a client of an OIDC provider at a port
# nothing listens on (AppTest sets ``st.user`` itself; no provider is asked).
AUTH = {
    "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
    "cookie_secret": "not-a-real-secret",
    "client_id": "cxlab",
    "client_secret": "not-a-real-secret",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def timeout() -> int:
    """Seconds per AppTest run."""
    return TIMEOUT


@pytest.fixture(scope="session")
def sample_log() -> Path:
    """The bundled sample log, generated (seeded) when missing."""
    if not SAMPLE.is_file():
        from cxlab.sample import write_sample

        write_sample(SAMPLE)
    return SAMPLE


@pytest.fixture(scope="session")
def engine_results(sample_log: Path) -> dict[str, ExperimentResult]:
    """Every experiment analysed by the engine directly (no Streamlit, no cache)."""
    results = analyze_folder(sample_log, experiments_dir=EXPERIMENTS)
    return {r.experiment.id: r for r in results}


def missing(message: str) -> None:
    """Under CI a missing browser is a failure; locally, a skip."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium() -> str:
    path = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    if path is None:
        missing(f"{CHROMIUM} is missing (apt-get install chromium)")
    return str(path)


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[object]:
    """One browser per test process: Playwright's sync API runs one at a time."""
    try:
        from playwright import sync_api
    except ImportError:
        missing("the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def drawn(at: AppTest) -> list[dict[str, Any]]:
    """Every chart on the page, each the Vega-Lite spec its picture was drawn from.

    A page draws a chart as an SVG picture (an ``st.image`` of a ``data:`` URL)
    holding its spec, data rows included, as JSON in its ``<metadata>``
    (:func:`cxlab.charts.figure_svg`); the picture's text alternative is the
    chart's title.
    """
    specs = []
    for element in at.get("image"):
        for image in element.proto.imgs:
            head, _, data = image.url.partition(",")
            assert head == "data:image/svg+xml;base64", head
            svg = base64.b64decode(data).decode()
            found = re.search(f"{re.escape(SPEC_METADATA)}(.*?)</metadata>", svg, re.S)
            assert found is not None, "a picture without its spec"
            spec = json.loads(html.unescape(found[1]))
            assert image.alt == spec["title"]
            specs.append(spec)
    return specs


def pipe_tables(at: AppTest, first: str) -> list[pd.DataFrame]:
    """The Markdown pipe tables on the page whose first column is ``first``, cell by
    cell as written: a header row, a delimiter row, then the rows, cells split at
    the pipes not escaped by a backslash (:func:`cxlab.markdown.pipe_table`)."""
    tables = []
    for element in at.markdown:
        if not element.value.startswith(f"| {first} |"):
            continue
        head, _delimiter, *rows = [
            [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
            for line in element.value.splitlines()
        ]
        tables.append(pd.DataFrame(rows, columns=head))
    return tables


def executive_tables(at: AppTest) -> list[pd.DataFrame]:
    """The portfolio's tables (:func:`cxlab.portfolio.executive_table`)."""
    return pipe_tables(at, "experiment")


def plain(cell: str) -> str:
    """A table cell's text as a reader sees it: its colour and escapes taken off."""
    coloured = re.fullmatch(r":[a-z]+\[(.*)\]", cell)
    return re.sub(r"\\(.)", r"\1", coloured.group(1) if coloured else cell)


def scorecard_shown(at: AppTest) -> pd.DataFrame | None:
    """The results page's scorecard (:func:`cxlab.charts.scorecard_table`) as text,
    the arrow after each metric's name (its good direction) a column of its own."""
    tables = pipe_tables(at, "role")
    if not tables:
        return None
    table = tables[0].map(plain)
    table[["metric", "good direction"]] = table["metric"].str.rsplit(
        " ", n=1, expand=True
    )
    return table


def portfolio_details(at: AppTest) -> pd.DataFrame:
    """The portfolio's details table, its toggle switched on (one rerun)."""
    at.toggle(key="portfolio_details").set_value(True).run()
    assert not at.exception
    return at.dataframe[0].value
