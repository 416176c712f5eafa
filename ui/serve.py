"""``cxlab app``'s server: the first visitor's work done before it answers.

Streamlit runs ``app.py`` only when a browser connects, so the first visitor of a
fresh server waited for the pages' imports, the scan of the log and the analysis
of every experiment (bench/RESULTS.md, first page drawn). Here the server's own
process does that work for the workspace a new session opens on, then becomes
the Streamlit server: its in-memory caches (and the store on disk) hold that
portfolio and every experiment's history, and ``/_stcore/health`` answers once the
pages can be drawn from them. A log or config problem does not stop the server:
the pages show it.

    python -m cxlab.ui.serve APP_PY [STREAMLIT FLAGS…]   # what `cxlab app` runs
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import inspect
import logging
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, NoReturn

from cxlab.errors import InputError
from cxlab.rendering import RenderError

if TYPE_CHECKING:
    from cxlab.ui.cache import Workspace

# What app.py and the pages import beyond cxlab.ui.cache (pandas: every table and
# chart but the portfolio's), so no first visit of a page pays
# for it and the portfolio's background import (cache.warm_import) finds it done.
PAGE_MODULES = (
    "cxlab.ui.auth",
    "cxlab.ui.drawing",
    "cxlab.ui.navigation",
    "cxlab.ui.notices",
    "cxlab.ui.url_state",
    "cxlab.charts",
    "cxlab.links",
    "cxlab.portfolio",
    "cxlab.report",
    "cxlab.segments",
    "cxlab.states",
    "cxlab.verbatims",
    "pandas",
)
# Streamlit's warnings for its caches used before its runtime exists: expected here.
BARE_MODE_LOGGERS = (
    "streamlit.runtime.caching.cache_data_api",
    "streamlit.runtime.scriptrunner_utils.script_run_context",
)


def prepare() -> list[str]:
    """Import the pages' modules and analyse the default workspace.

    Every experiment as of its day (the portfolio) and at the end of each day
    (its results page); then the charts the Data page and each results page open
    on. Drawn here, not in a thread once the server answers: rendering them beside
    the first page slowed it by about 1 s (bench/RESULTS.md, pictures).

    Returns:
        What was done, one line each, for whoever started the server.
    """
    start = time.perf_counter()
    lines = []
    with _bare_mode():
        from cxlab.ui import cache  # its st.cache_data decorators warn too

        if not cache.SAMPLE_EVENTS.is_file():
            from cxlab.sample import write_sample

            written = write_sample(cache.SAMPLE_EVENTS)
            lines.append(f"generated the sample log {written}")
        for module in PAGE_MODULES:
            importlib.import_module(module)
        try:
            workspace = cache.default_workspace()
            cache.all_summaries(workspace)  # states, segments, exposures
            portfolio = cache.load_portfolio(workspace)
            for result in portfolio:  # the results pages
                cache.load_history(workspace, result.experiment.id)
        except InputError as error:
            lines.append(f"the dashboard will show this problem: {error}")
        else:
            seconds = time.perf_counter() - start
            lines.append(
                f"analysed {len(portfolio)} experiments and their daily history "
                f"on {workspace.events} in {seconds:.1f} s"
            )
            start = time.perf_counter()
            try:
                pictures = draw_first_views(workspace)
            except RenderError as error:  # the page that draws it will say so too
                lines.append(f"a chart the pages open on could not be drawn: {error}")
            else:
                seconds = time.perf_counter() - start
                lines.append(
                    f"drew the {pictures} charts the Data and results pages open on "
                    f"in {seconds:.1f} s"
                )
    # Streamlit inspects the call stack at its first element (env_util.is_repl);
    # inspect caches the file of every loaded module on first use: done here.
    inspect.stack()
    # What is loaded now (modules, the default workspace's results) mostly lives as
    # long as the server: frozen, Streamlit's full collection after every script
    # run (runner.postScriptGC) skips it instead of walking it each time. Frozen
    # objects freed later are freed by their reference counts, not by collections.
    gc.freeze()
    return lines


def draw_first_views(ws: Workspace) -> int:
    """Make the pictures the Data page and each results page open on, ahead.

    As pages/data.py draws its chart of events per day (in two thirds of the page's
    width) and pages/results.py draws them when opened: the forest of the decision
    method, the first metric's relative lift for the first treatment (tested).

    Returns:
        How many pictures there are.
    """
    from cxlab import charts
    from cxlab.ui import cache, drawing

    per_day = cache.events_per_day_figure(ws.events, ws.fingerprint)
    made = [drawing.start(per_day, 2 / 3)]
    for experiment in cache.load_configs(ws.experiments_dir, ws.configs)[1]:
        history = cache.load_history(ws, experiment.id)
        if not history:
            continue
        result = history[-1]
        metric = result.results[0].metric.id
        treatment = experiment.treatments[0]
        made += [
            drawing.start(chart)
            for chart in [
                *charts.delta_forest(result, experiment.decision),
                charts.cumulative_lift(history, metric, treatment, "rel"),
            ]
        ]
    for picture in made:  # two at a time (cxlab.rendering.WORKERS)
        picture.result()
    return len(made)


@contextlib.contextmanager
def _bare_mode() -> Iterator[None]:
    """Streamlit's warnings for its caches used before its runtime exists, muted.

    A filter, not a level: Streamlit sets every one of its loggers' levels again
    each time it parses its config (``streamlit.logger.set_log_level``).
    """
    loggers = [logging.getLogger(name) for name in BARE_MODE_LOGGERS]
    mute = logging.Filter("muted while preparing")  # matches no logger's name
    for logger in loggers:
        logger.addFilter(mute)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(mute)


def main(argv: list[str]) -> NoReturn:
    """Prepare, then run ``streamlit run APP_PY FLAGS…`` in this process."""
    print(
        "analysing the log and every experiment before the server answers…",
        file=sys.stderr,
    )
    sys.stderr.flush()
    for line in prepare():
        print(line, file=sys.stderr)
    sys.stderr.flush()
    from streamlit.web import cli

    sys.exit(cli.main(["run", *argv], prog_name="streamlit"))


if __name__ == "__main__":
    main(sys.argv[1:])
