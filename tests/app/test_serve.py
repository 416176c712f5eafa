"""`cxlab app` analyses the sample before it answers (cxlab.ui.serve).

Its first visitor's pages (the portfolio, an experiment's results) are drawn from
the server's memory: neither the scan of the log nor the analysis runs again. A
broken config does not stop the server: it starts, says so, and the pages show the
problem.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import drawn
from tests.app.test_browser import (
    PAGE_TIMEOUT_MS,
    PORTFOLIO_TABLE,
    assert_no_error_text,
    free_port,
    main_text,
    open_page,
    running,
)

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"
BARE_MODE_WARNINGS = ("No runtime found", "missing ScriptRunContext")


def cxlab_app(store: Path) -> tuple[list[str], int, dict[str, str]]:
    """The command, port and environment of `python -m cxlab app` keeping its
    summaries and results in ``store``."""
    port = free_port()
    command = [sys.executable, "-m", "cxlab", "app", "--port", str(port)]
    env = {**os.environ, "CXLAB_CACHE_DIR": str(store), "PYTHONPATH": str(ROOT)}
    return command, port, env


@pytest.fixture(params=["first start", "restart"])
def prepared(
    request: pytest.FixtureRequest, sample_log: Path, tmp_path: Path
) -> Iterator[tuple[str, Path, str]]:
    """`cxlab app` in the checkout, answering; its URL, its store, its output.

    A restart finds what an earlier server stored; a first start has an empty store.
    """
    store, log = tmp_path / "store", tmp_path / "server.log"
    if request.param == "restart":
        command, port, env = cxlab_app(store)
        with running(command, port, ROOT, log, env=env):
            pass
    command, port, env = cxlab_app(store)
    with running(command, port, ROOT, log, env=env) as url:
        yield url, store, log.read_text()


@pytest.mark.browser
def test_cxlab_app_answers_with_every_page_already_analysed(
    prepared: tuple[str, Path, str], sample_log: Path, browser: object
) -> None:
    url, store, output = prepared
    experiments = len(list(EXPERIMENTS.glob("*.yaml"))) - 1  # but metrics.yaml
    kinds = sorted(p.name.split("-")[0] for p in store.glob("*.pickle"))
    assert kinds == ["history"] * experiments + ["row"] * experiments + ["summaries"]
    assert f"analysed {experiments} experiments and their daily history on " in output
    assert f" on {sample_log} in " in output
    assert "charts the Data and results pages open on in " in output
    assert not [w for w in BARE_MODE_WARNINGS if w in output]
    for stored in store.glob("*.pickle"):
        stored.unlink()

    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    open_page(page, url, "All experiments")
    page.wait_for_selector(PORTFOLIO_TABLE)
    assert "Proactive shipping e-mail" in main_text(page)
    assert_no_error_text(page)
    open_page(page, f"{url}/results?experiment=click-to-call", "Download")
    assert "Click-to-call" in main_text(page)
    assert_no_error_text(page)
    context.close()
    assert list(store.glob("*.pickle")) == []  # drawn from memory: nothing redone


def test_cxlab_app_starts_on_a_broken_catalog_and_says_why(
    sample_log: Path, tmp_path: Path
) -> None:
    workspace = tmp_path / "team"
    shutil.copytree(EXPERIMENTS, workspace / "experiments")
    (workspace / "experiments" / "metrics.yaml").write_text("conversion: [\n")
    (workspace / "data").mkdir()
    shutil.copyfile(sample_log, workspace / "data" / "events.parquet")
    store, log = tmp_path / "store", tmp_path / "server.log"
    command, port, env = cxlab_app(store)
    with running(command, port, workspace, log, env=env):
        output = log.read_text()
    problem = "the dashboard will show this problem: "
    assert (
        f"{problem}{workspace / 'experiments' / 'metrics.yaml'}:2: invalid YAML"
        in output
    )
    assert "Traceback" not in output
    assert list(store.glob("*.pickle")) == []


def test_the_data_and_results_pages_open_on_pictures_made_ahead(
    sample_log: Path, timeout: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxlab import charts
    from cxlab.ui import cache, drawing, serve

    drawing._made.clear()  # what earlier tests of this process drew
    made = serve.draw_first_views(cache.default_workspace())
    assert len(drawing._made) == made
    rendered: list[str] = []
    render = charts.render

    def counted(function: str, *args: object, **kwargs: object) -> object:
        rendered.append(function)
        return render(function, *args, **kwargs)

    monkeypatch.setattr(charts, "render", counted)
    data = AppTest.from_file(str(ROOT / "pages" / "data.py")).run(timeout=timeout)
    assert not data.exception
    shown = len(drawn(data))
    assert shown == 1
    for path in sorted(EXPERIMENTS.glob("*.yaml")):
        if path.name == "metrics.yaml":
            continue
        at = AppTest.from_file(str(ROOT / "pages" / "results.py"))
        at.query_params["experiment"] = path.stem
        at.run(timeout=timeout)
        assert not at.exception
        shown += len(drawn(at))
    assert shown == made  # every picture shown was made ahead, and no other one
    assert rendered == []
