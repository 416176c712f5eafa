"""Re-render time of every page after the first load, with AppTest (issue 5).

    python bench/app_rerender.py                 # measure, print, update RESULTS.md
    python bench/app_rerender.py --runs 7 --no-write
    python bench/app_rerender.py --only "results: decision method"
    python bench/app_rerender.py --server "streamlit run"   # without cxlab app's work

Drives ``app.py`` on the bundled sample log (``data/events.parquet``, generated on
first use, and ``experiments/``) in one Streamlit session with
``streamlit.testing.v1.AppTest``: the first load (cold caches), then on every page
each widget change a user makes there. Each change is set on the widget and the
wall time of ``AppTest.run()`` is taken; a row is the median and max of ``--runs``
changes after one warm-up change, alternating values so every rerun is a real
change. AppTest time is server-side script time: it excludes browser rendering and
websocket transfer.

The server is ``cxlab app``'s (the README's command) unless ``--server "streamlit
run"``: before the first load, this process does what ``cxlab app`` does before it
answers (``cxlab.ui.serve.prepare``: the pages' imports, the scan, every
experiment's as-of result and daily history, all in the caches AppTest's session
reads), timed as its own row. ``streamlit run app.py`` leaves that to the first
load and to the first visit of each experiment.

"No rescan" is proven by counting, in this process (AppTest runs the script here):
calls of ``cxlab.summaries.summarize`` (the one reduction of the log; wrapped
wherever a ``cxlab`` module bound it) and calls of the Polars readers
(``pl.scan_*`` / ``pl.read_*`` of Parquet, CSV or NDJSON; wrapped on ``polars``),
both installed before the first run. Rows that show something for the first time
(an experiment never opened, an as-of day never viewed) time every value.

AppTest resets ``PagesManager.uses_pages_directory`` before every run; because the
repository has a ``pages/`` folder next to ``app.py``, Streamlit's multipage-v1
fallback would then run the page file alone on reruns (no ``app.py``, no sidebar,
no as-of date). The real server runs ``app.py`` on every rerun (``st.navigation``
switches the fallback off for the process), so this script does the same. AppTest
also compiles ``app.py`` and the page again on every run, where the server compiles
each script once: this script gives AppTest's runs one bytecode cache, as the
server has (``compiled_once``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import importlib
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from results_md import write_section

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402
import streamlit as st  # noqa: E402
from streamlit.runtime import pages_manager  # noqa: E402
from streamlit.runtime.scriptrunner.script_cache import ScriptCache  # noqa: E402
from streamlit.testing.v1 import AppTest, local_script_runner  # noqa: E402
from streamlit.testing.v1 import app_test as app_test_module  # noqa: E402

from cxlab.ui import serve  # noqa: E402

APP = ROOT / "app.py"
SAMPLE = ROOT / "data" / "events.parquet"
RESULTS = ROOT / "bench" / "RESULTS.md"
HEADING = "## App re-render after the first load (AppTest)"
COMMAND = "python bench/app_rerender.py"
BUDGET_MS = 200.0
SERVERS = ("cxlab app", "streamlit run")
TIMEOUT = 300  # seconds per AppTest run: 2 shared cores, the first run scans the log
EMAIL = "proactive-shipping-email"  # two arms, NPS, a dimension
THREE_ARMS = "free-shipping-threshold"  # the sample's experiment with two treatments
AS_OF_KEY = "as_of"  # ui.cache.AS_OF_KEY (the sidebar's date input)
MAX_NEW_AS_OF = 6  # new as-of days timed (each a cached view of the one scan)
POLARS_READERS = (
    "scan_parquet",
    "scan_csv",
    "scan_ndjson",
    "read_parquet",
    "read_csv",
    "read_ndjson",
)
PAGES = {
    "portfolio": "pages/portfolio.py",
    "results": "pages/results.py",
    "configs": "pages/configs.py",
    "data": "pages/data.py",
    "planner": "pages/planner.py",
}
TITLES = {
    "portfolio": "Experiment portfolio",
    "configs": "Configs",
    "data": "Data",
    "planner": "Planner",
}


# --- counting scans ---------------------------------------------------------------


class ScanCounter:
    """Counts summaries computed and reads of the log, while installed."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._undo: list[tuple[object, str, object]] = []

    def snapshot(self) -> tuple[int, int]:
        """(summarize calls, Polars reads of the log) so far."""
        return self.counts["summarize"], self.counts["reads"]

    def _wrap(self, kind: str, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.counts[kind] += 1
            return original(*args, **kwargs)

        return counted

    def _patch(self, owner: object, name: str, new: object) -> None:
        self._undo.append((owner, name, getattr(owner, name)))
        setattr(owner, name, new)

    @contextlib.contextmanager
    def installed(self) -> Iterator[ScanCounter]:
        # Everything the pages import, so each binding of the functions is found.
        importlib.import_module("cxlab.ui.cache")
        for name in ("api", "studio", "health", "planning", "summaries"):
            importlib.import_module(f"cxlab.{name}")
        summaries = sys.modules["cxlab.summaries"]
        original = summaries.summarize
        wrapper = self._wrap("summarize", original)
        for module in list(sys.modules.values()):
            named = getattr(module, "__name__", "")
            if named.split(".")[0] == "cxlab" and (
                getattr(module, "summarize", None) is original
            ):
                self._patch(module, "summarize", wrapper)
        for reader in POLARS_READERS:
            self._patch(pl, reader, self._wrap("reads", getattr(pl, reader)))
        try:
            yield self
        finally:
            for owner, name, old in reversed(self._undo):
                setattr(owner, name, old)
            self._undo.clear()


class _ServerLikePagesManager(pages_manager.PagesManager):
    """A PagesManager that runs ``app.py`` on every rerun, as the server does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pages_manager.PagesManager.uses_pages_directory = False


@contextlib.contextmanager
def server_like_navigation() -> Iterator[None]:
    """Make AppTest rerun ``app.py`` (sidebar included) like ``streamlit run``."""
    original = app_test_module.PagesManager
    app_test_module.PagesManager = _ServerLikePagesManager
    try:
        yield
    finally:
        app_test_module.PagesManager = original
        pages_manager.PagesManager.uses_pages_directory = None


@contextlib.contextmanager
def compiled_once() -> Iterator[None]:
    """Make AppTest compile each script once, as the server's runtime does.

    The server keeps one ``ScriptCache`` (each script's bytecode, made once) for
    its life; AppTest makes a new one for every run, so each run would compile
    ``app.py`` and the page again (about 50 ms for the results page).
    """
    shared = ScriptCache()
    originals = (app_test_module.ScriptCache, local_script_runner.ScriptCache)
    app_test_module.ScriptCache = local_script_runner.ScriptCache = lambda: shared
    try:
        yield
    finally:
        app_test_module.ScriptCache, local_script_runner.ScriptCache = originals


# --- what is measured --------------------------------------------------------------


Values = Callable[[AppTest, int], list[Any]]
Apply = Callable[[AppTest, Any], None]
Check = Callable[[AppTest, Any], str | None]


@dataclass(frozen=True)
class Step:
    """One realistic widget change on a page, made ``runs + 1`` times."""

    page: str
    change: str
    values: Values  # n values, each unlike the one before (the first: the shown one)
    apply: Apply  # sets the widget (may make untimed preparatory runs)
    check: Check  # None when the change shows, else what is wrong
    setup: Callable[[AppTest], None] | None = None  # untimed, before the warm-up
    teardown: Callable[[AppTest], None] | None = None  # untimed, after the runs
    first_visits: int | None = None  # every value is new: time all (up to this many)

    @property
    def name(self) -> str:
        return f"{self.page}: {self.change}"


@dataclass
class Row:
    """The measured re-renders of one step."""

    page: str
    change: str
    times_ms: list[float]
    summarize: int
    reads: int
    problems: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)  # first-visit rows: what was shown

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def max_ms(self) -> float:
        return max(self.times_ms)

    @property
    def rescans(self) -> int:
        return self.summarize + self.reads


@dataclass
class Report:
    """The first load and every measured row."""

    first_load: Row
    rows: list[Row]
    started: dt.datetime
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    runs: int = 5
    server: str = SERVERS[0]
    prepared: Row | None = None  # cxlab app's work before it answers
    engine: str = field(default_factory=lambda: source_hash("cxlab/*.py"))
    ui: str = field(default_factory=lambda: source_hash("app.py", "pages/*.py"))


def cycle(options: Sequence[Any], current: Any, n: int) -> list[Any]:
    """n values cycling through ``options``, starting after ``current``."""
    options = list(options)
    if len(options) < 2:
        raise ValueError(f"need two options to change between, got {options}")
    start = options.index(current) + 1 if current in options else 0
    return [options[(start + i) % len(options)] for i in range(n)]


def alternate(a: Any, b: Any, current: Any, n: int) -> list[Any]:
    """n values alternating a and b, starting with the one not shown now."""
    first, second = (b, a) if current == a else (a, b)
    return [first if i % 2 == 0 else second for i in range(n)]


@functools.cache
def _known_values() -> tuple[str, ...]:
    """Raw option values the pages use: ids of metrics, experiments, variants."""
    from cxlab.config import load_catalog, load_experiments
    from cxlab.decision import METHODS

    catalog = load_catalog(ROOT / "experiments" / "metrics.yaml")
    experiments = load_experiments(ROOT / "experiments", catalog)
    return (
        *catalog.ids,
        *(e.id for e in experiments),
        *(v for e in experiments for v in e.variant_ids),
        *METHODS,
        "rel",
        "abs",
    )


def raw_options(widget: Any) -> list[Any]:
    """A widget's options as values (AppTest only has their formatted labels)."""
    fmt = getattr(widget, "format_func", str)
    by_label: dict[str, Any] = {}
    for candidate in [*widget.options, *_known_values()]:
        with contextlib.suppress(Exception):
            by_label[str(fmt(candidate))] = candidate
    missing = [o for o in widget.options if o not in by_label]
    if missing:
        raise ValueError(f"no value known for the options {missing} of {widget.key}")
    return [by_label[o] for o in widget.options]


def problems_of(at: AppTest) -> list[str]:
    """Exceptions and the app's friendly error box, if any."""
    found = [f"exception: {e.value}" for e in at.exception]
    found += [e.value for e in at.error if "Something went wrong" in e.value]
    return found


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def markdowns(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def expect(condition: bool, what: str) -> str | None:
    return None if condition else what


# --- results page -------------------------------------------------------------------


def _experiment(at: AppTest) -> str:
    return at.selectbox(key="results_experiment").value


def _open_experiment(experiment_id: str) -> Callable[[AppTest], None]:
    def setup(at: AppTest) -> None:
        if _experiment(at) != experiment_id:
            at.selectbox(key="results_experiment").select(experiment_id)
            at.run()

    return setup


def _experiment_shown(at: AppTest, experiment_id: str) -> str | None:
    box = at.selectbox(key="results_experiment")
    label = next(
        (o for o in box.options if o.endswith(f"({experiment_id})")), experiment_id
    )
    title = label.rsplit(" (", 1)[0]
    params = at.query_params.get("experiment")
    return expect(
        box.value == experiment_id
        and [t.value for t in at.title] == [title]
        and params in (experiment_id, [experiment_id]),
        f"experiment {experiment_id} not shown (title, selectbox or URL)",
    )


def _other_experiments(at: AppTest, n: int) -> list[str]:
    """Experiments not opened yet, ending with the e-mail experiment."""
    current = _experiment(at)
    ids = [
        o.rsplit("(", 1)[1].rstrip(")")
        for o in at.selectbox(key="results_experiment").options
    ]
    others = [i for i in ids if i not in (current, EMAIL)] + [EMAIL]
    return others[-n:]


def _opened_experiments(at: AppTest, n: int) -> list[str]:
    other = next(i for i in _other_experiments(at, 99) if i not in (EMAIL,))
    values = alternate(other, EMAIL, _experiment(at), n)
    return values if values[-1] == EMAIL else [*values[1:], EMAIL]


def _select_experiment(at: AppTest, experiment_id: str) -> None:
    at.selectbox(key="results_experiment").select(experiment_id)


def _results_widget(
    name: str, kind: str = "selectbox"
) -> tuple[Callable[[AppTest], str], Values, Apply]:
    """Key, values and setter of a results-page widget kept per experiment.

    ``kind`` is the AppTest accessor: ``selectbox`` or ``segmented_control``.
    """

    def key(at: AppTest) -> str:
        return f"results_{name}_{_experiment(at)}"

    def values(at: AppTest, n: int) -> list[str]:
        widget = getattr(at, kind)(key=key(at))
        return cycle(raw_options(widget), widget.value, n)

    def apply(at: AppTest, value: str) -> None:
        getattr(at, kind)(key=key(at)).set_value(value)

    return key, values, apply


_method_key, _methods, _set_method = _results_widget("method", "segmented_control")
_metric_key, _metrics, _set_metric = _results_widget("metric")
_variant_key, _variants, _set_variant = _results_widget("variant")


def _method_shown(at: AppTest, method: str) -> str | None:
    return expect(
        at.segmented_control(key=_method_key(at)).value == method
        and any(f"Showing the **{method}** test" in c for c in captions(at)),
        f"the scorecard does not say it shows the {method} test",
    )


def _scales(at: AppTest, n: int) -> list[str]:
    control = at.segmented_control(key="results_scale")
    return cycle(raw_options(control), control.value, n)


def _set_scale(at: AppTest, scale: str) -> None:
    at.segmented_control(key="results_scale").set_value(scale)


def _scorecard_column(at: AppTest, title: str) -> list[str]:
    """A column of the scorecard's pipe table (``cxlab.charts.scorecard_table``)."""
    table = next(m.value for m in at.markdown if m.value.startswith("| role |"))
    head, _delimiter, *rows = [
        [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        for line in table.splitlines()
    ]
    return [row[head.index(title)] for row in rows]


def _scale_shown(at: AppTest, scale: str) -> str | None:
    deltas = _scorecard_column(at, "delta")
    relative = all(v.endswith(("%", " pts")) for v in deltas)  # NPS: pts
    return expect(
        at.segmented_control(key="results_scale").value == scale
        and relative == (scale == "rel"),
        f"the scorecard deltas are not on the {scale} scale",
    )


VIEW_KEY = "results_view"
# each tab's chart, by a piece of its title (cxlab.charts); a chart's ``key`` is not
# on a Vega-Lite element without selections, so titles tell them apart
VIEW_CHARTS = {
    "Lift over time": "Cumulative ",
    "Per arm": " per arm (cumulative)",
    "Posterior": "Posterior of the lift",
}


def _views(at: AppTest, n: int) -> list[str]:
    return cycle(list(VIEW_CHARTS), at.session_state[VIEW_KEY], n)


def _set_view(at: AppTest, view: str) -> None:
    at.session_state[VIEW_KEY] = view  # what a click on the tab sets


def _chart_titles(at: AppTest) -> list[str]:
    """The titles of the charts drawn: their pictures' text (cxlab.ui.drawing)."""
    return [image.alt for element in at.get("image") for image in element.proto.imgs]


def _view_shown(at: AppTest, view: str) -> str | None:
    titles = _chart_titles(at)
    drawn = {v for v, part in VIEW_CHARTS.items() if any(part in t for t in titles)}
    return expect(
        drawn == {view},
        f"the {view} tab's chart is not the only tab chart drawn",
    )


def _chart_titled(part: str) -> Callable[[AppTest], bool]:
    def drawn(at: AppTest) -> bool:
        return any(part in title for title in _chart_titles(at))

    return drawn


# boxes drawn only while open, and whether each one's content is drawn
BOXES: dict[str, Callable[[AppTest], bool]] = {
    "results_details": lambda at: bool(at.dataframe),
    "results_exposures": _chart_titled("New users per day"),
    "results_downloads": lambda at: bool(at.get("download_button")),
}


def _boxes(at: AppTest, n: int) -> list[tuple[str, bool]]:
    """Open each box in turn and close it again."""
    moves = [(key, is_open) for key in BOXES for is_open in (True, False)]
    return [moves[i % len(moves)] for i in range(n)]


def _set_box(at: AppTest, move: tuple[str, bool]) -> None:
    key, is_open = move
    at.session_state[key] = is_open  # what a click on the expander sets


def _box_shown(at: AppTest, move: tuple[str, bool]) -> str | None:
    key, is_open = move
    return expect(
        BOXES[key](at) == is_open,
        f"{key}: {'open' if is_open else 'closed'}, its content not so",
    )


def _metric_shown(at: AppTest, metric: str) -> str | None:
    labels = [t.label for t in at.tabs]
    return expect(
        at.selectbox(key=_metric_key(at)).value == metric
        and ("NPS answers" in labels) == (metric == "nps"),
        f"metric {metric} not shown in depth",
    )


def _variant_shown(at: AppTest, variant: str) -> str | None:
    return expect(
        at.selectbox(key=_variant_key(at)).value == variant,
        f"treatment {variant} not selected",
    )


def _as_of_text(day: dt.date) -> str:
    return f"as of {day:%d %b %Y}"


def _shown_as_of(at: AppTest) -> str | None:
    """The as-of day a page states (results: its header; portfolio: its caption)."""
    for text in [*markdowns(at), *captions(at)]:
        if found := re.search(r"as of \d\d \w\w\w \d{4}", text):
            return found.group(0)
    return None


def _new_days(at: AppTest, n: int, offset: int = 0) -> list[dt.date]:
    """Earlier days than the one shown, every 4th day (shifted by ``offset``)."""
    last = dt.datetime.strptime(_shown_as_of(at) or "", "as of %d %b %Y").date()
    return [last - dt.timedelta(days=4 * (i + 1) + offset) for i in range(n)]


def _portfolio_as_of_step() -> Step:
    """A new as-of day on the portfolio: every experiment's numbers at that day.

    Read off the whole histories where the server has them (``cxlab app``), else
    analysed (``cxlab.ui.cache``).

    Days offset by 2 from the results page's, so neither row reuses the other's
    analyses (the cut summaries of a day may be shared: about 10 ms).
    """

    def shown(at: AppTest, day: dt.date) -> str | None:
        return expect(
            _shown_as_of(at) == _as_of_text(day), f"the header does not say {day}"
        )

    def reset(at: AppTest) -> None:
        _set_as_of(at, None)
        at.run()

    return Step(
        "portfolio",
        "as-of date: a new earlier day (every experiment as of it)",
        lambda at, n: _new_days(at, n, offset=2),
        _set_as_of,
        shown,
        teardown=reset,
        first_visits=MAX_NEW_AS_OF,
    )


def _set_as_of(at: AppTest, day: dt.date | None) -> None:
    at.date_input(key=AS_OF_KEY).set_value(day)


class _AsOfSteps:
    """The as-of date: remembers the default view and the days already viewed."""

    def __init__(self) -> None:
        self.default: str | None = None
        self.viewed: list[dt.date] = []

    def setup(self, at: AppTest) -> None:
        if at.date_input(key=AS_OF_KEY).value is not None:
            _set_as_of(at, None)
            at.run()
        if self.default is None:
            self.default = _shown_as_of(at)

    def new_days(self, at: AppTest, n: int) -> list[dt.date]:
        days = _new_days(at, n)
        self.viewed += days
        return days

    def back_and_forth(self, at: AppTest, n: int) -> list[dt.date | None]:
        day = self.viewed[0] if self.viewed else _new_days(at, 1)[0]
        return alternate(day, None, at.date_input(key=AS_OF_KEY).value, n)

    def shown(self, at: AppTest, day: dt.date | None) -> str | None:
        wanted = _as_of_text(day) if day else self.default
        return expect(
            at.date_input(key=AS_OF_KEY).value == day and _shown_as_of(at) == wanted,
            f"the header does not say {wanted}",
        )

    def teardown(self, at: AppTest) -> None:
        self.setup(at)


# --- portfolio page ---------------------------------------------------------------


def _open_details(at: AppTest) -> None:
    """Filters are checked in the details table (owner and tags are only there)."""
    at.toggle(key="portfolio_details").set_value(True)
    at.run()


def _details_step() -> Step:
    def values(at: AppTest, n: int) -> list[bool]:
        return alternate(True, False, at.toggle(key="portfolio_details").value, n)

    def apply(at: AppTest, shown: bool) -> None:
        at.toggle(key="portfolio_details").set_value(shown)

    def check(at: AppTest, shown: bool) -> str | None:
        return expect(bool(at.dataframe) == shown, f"details table shown != {shown}")

    return Step("portfolio", "Details toggle", values, apply, check)


def _filter_steps(key: str, column: str, label: str) -> Step:
    def values(at: AppTest, n: int) -> list[list[str]]:
        box = at.multiselect(key=key)
        options = [[], *([o] for o in raw_options(box))]
        return cycle(options, list(box.value), n)

    def apply(at: AppTest, chosen: list[str]) -> None:
        at.multiselect(key=key).set_value(chosen)
        at.button(key="FormSubmitter:portfolio_filters-Filter").click()

    def check(at: AppTest, chosen: list[str]) -> str | None:
        if list(at.multiselect(key=key).value) != chosen:
            return f"{label} filter not set to {chosen}"
        if not at.dataframe:
            return expect(
                any("No experiment matches" in i.value for i in at.info),
                "neither a table nor the no-match note",
            )
        cells = [str(v) for v in at.dataframe[0].value[column]]
        if column == "tags":
            ok = all(chosen[0] in [t.strip() for t in c.split(",")] for c in cells)
        else:
            ok = all(c in chosen for c in cells)
        return expect(not chosen or ok, f"rows outside the {label} filter")

    def reset(at: AppTest) -> None:
        apply(at, [])
        at.run()

    return Step(
        "portfolio",
        f"{label} filter (multiselect + Filter button)",
        values,
        apply,
        check,
        setup=_open_details,
        teardown=reset,
    )


def _search_step() -> Step:
    def values(at: AppTest, n: int) -> list[str]:
        current = at.text_input(key="portfolio_search").value
        return alternate("customer-service", "", current, n)

    def apply(at: AppTest, text: str) -> None:
        at.text_input(key="portfolio_search").set_value(text)
        at.button(key="FormSubmitter:portfolio_filters-Filter").click()

    def check(at: AppTest, text: str) -> str | None:
        tags = [str(t) for t in at.dataframe[0].value["tags"]]
        return expect(
            at.text_input(key="portfolio_search").value == text
            and all(text in t for t in tags),
            f"rows not matching the search {text!r}",
        )

    return Step(
        "portfolio",
        "Search box (text input + Filter button)",
        values,
        apply,
        check,
        setup=_open_details,
        teardown=lambda at: (apply(at, ""), at.run()),
    )


# --- configs page ---------------------------------------------------------------


def _base_step(key: str, prefix: str, form: str) -> Step:
    def values(at: AppTest, n: int) -> list[str]:
        box = at.selectbox(key=key)
        return cycle(raw_options(box), box.value, n)

    def apply(at: AppTest, choice: str) -> None:
        at.selectbox(key=key).set_value(choice)

    def check(at: AppTest, choice: str) -> str | None:
        field_key = f"{prefix}{'new' if choice == '(new)' else choice}_id"
        wanted = "" if choice == "(new)" else choice
        found = [t.value for t in at.text_input if t.key == field_key]
        return expect(found == [wanted], f"the {form} form is not filled from {choice}")

    return Step("configs", f"{form} form: 'Start from'", values, apply, check)


_EXP_PREFIX = f"configs_exp_{EMAIL}_"
_VALIDATE = f"FormSubmitter:{_EXP_PREFIX}form-Apply to YAML"


def _configs_on_email(at: AppTest) -> None:
    if at.selectbox(key="configs_exp_base").value != EMAIL:
        at.selectbox(key="configs_exp_base").set_value(EMAIL)
        at.run()


def _owners(at: AppTest, n: int) -> list[str]:
    current = at.text_input(key=f"{_EXP_PREFIX}owner").value
    return alternate("delivery-experience", "delivery-experience-2", current, n)


def _validate_owner(at: AppTest, owner: str) -> None:
    at.text_input(key=f"{_EXP_PREFIX}owner").set_value(owner)
    at.button(key=_VALIDATE).click()


def _validated(at: AppTest, owner: str) -> str | None:
    return expect(
        any(s.value.startswith("Valid — would be saved as") for s in at.success)
        and f"owner: {owner}" in at.text_area(key="configs_exp_text").value,
        f"no valid draft with owner {owner}",
    )


def _new_owners(at: AppTest, n: int) -> list[str]:
    return [f"delivery-experience-{i + 3}" for i in range(n)]


def _preview(at: AppTest, owner: str) -> None:
    if at.text_input(key=f"{_EXP_PREFIX}owner").value != owner or (
        f"owner: {owner}" not in at.text_area(key="configs_exp_text").value
    ):
        _validate_owner(at, owner)
        at.run()  # untimed: the draft to preview
    at.button(key="configs_preview").click()


def _previewed(at: AppTest, owner: str) -> str | None:
    return expect(
        any(c.startswith("Recommendation now:") for c in captions(at)),
        f"no preview of the draft with owner {owner}",
    )


def _same_draft(at: AppTest, n: int) -> list[str]:
    owner = at.text_input(key=f"{_EXP_PREFIX}owner").value
    return [owner] * n


# --- data page --------------------------------------------------------------------


def _sources(at: AppTest, n: int) -> list[str]:
    radio = at.radio(key="data_source")
    return cycle(raw_options(radio), radio.value, n)


def _set_source(at: AppTest, source: str) -> None:
    at.radio(key="data_source").set_value(source)


def _source_shown(at: AppTest, source: str) -> str | None:
    widgets = {
        "Bundled sample": lambda: [b for b in at.button if b.key == "data_use_sample"],
        "Path or glob on the server": lambda: [
            t for t in at.text_input if t.key == "data_path"
        ],
        "Upload a file": lambda: at.get("file_uploader"),
    }
    return expect(
        at.radio(key="data_source").value == source and bool(widgets[source]()),
        f"the {source} widgets are not shown",
    )


def _back_to_sample(at: AppTest) -> None:
    if at.radio(key="data_source").value != "Bundled sample":
        _set_source(at, "Bundled sample")
        at.run()


def _mappings(at: AppTest, n: int) -> list[str]:
    box = at.selectbox(key="data_map_value")
    return cycle(raw_options(box)[:3], box.value, n)


def _set_mapping(at: AppTest, column: str) -> None:
    at.selectbox(key="data_map_value").set_value(column)


def _mapping_shown(at: AppTest, column: str) -> str | None:
    renamed = column not in ("", "value")
    snippet = at.code[0].value if at.code else ""
    return expect(
        at.selectbox(key="data_map_value").value == column
        and (f"value: {column}" in snippet) == renamed,
        f"the columns snippet does not map value to {column!r}",
    )


def _clicks(at: AppTest, n: int) -> list[int]:
    return list(range(n))


def _use_sample(at: AppTest, _: int) -> None:
    at.button(key="data_use_sample").click()


def _sample_used(at: AppTest, _: int) -> str | None:
    return expect(
        # the page names the log relative to the repository, never the server's path
        any(c.startswith("Analysing: data/events.parquet ·") for c in captions(at))
        and at.metric,
        "the sample log's health is not shown",
    )


# --- planner page -------------------------------------------------------------------


def _planner_metrics(at: AppTest, n: int) -> list[str]:
    box = at.selectbox(key="planner_metric")
    return cycle(raw_options(box), box.value, n)


def _set_planner_metric(at: AppTest, metric: str) -> None:
    at.selectbox(key="planner_metric").set_value(metric)


def _planned(at: AppTest, what: str) -> str | None:
    return expect(bool(at.success), f"no plan sentence after {what}")


def _planner_metric_shown(at: AppTest, metric: str) -> str | None:
    if at.selectbox(key="planner_metric").value != metric:
        return f"metric {metric} not selected"
    return _planned(at, metric)


def _planner_on_conversion(at: AppTest) -> None:
    if at.selectbox(key="planner_metric").value != "conversion":
        _set_planner_metric(at, "conversion")
        at.run()


_BASELINE_KEY = "planner_experiment_conversion"


def _baselines(at: AppTest, n: int) -> list[str]:
    box = at.selectbox(key=_BASELINE_KEY)
    return cycle(raw_options(box), box.value, n)


def _set_baseline(at: AppTest, experiment_id: str) -> None:
    at.selectbox(key=_BASELINE_KEY).set_value(experiment_id)


def _baseline_shown(at: AppTest, experiment_id: str) -> str | None:
    return expect(
        at.selectbox(key=_BASELINE_KEY).value == experiment_id
        and any(c.startswith("Baseline:") for c in captions(at))
        and bool(at.success),
        f"no plan from the baseline of {experiment_id}",
    )


def _number_step(key: str, label: str, a: float, b: float) -> Step:
    def values(at: AppTest, n: int) -> list[float]:
        return alternate(a, b, at.number_input(key=key).value, n)

    def apply(at: AppTest, value: float) -> None:
        at.number_input(key=key).set_value(value)

    def check(at: AppTest, value: float) -> str | None:
        if at.number_input(key=key).value != value:
            return f"{label} not set to {value}"
        return _planned(at, f"{label} = {value}")

    return Step("planner", label, values, apply, check)


def _toggle(at: AppTest) -> Any:
    return next(t for t in at.toggle if t.key.endswith("_seq"))


def _sequential_values(at: AppTest, n: int) -> list[bool]:
    return alternate(True, False, _toggle(at).value, n)


def _set_sequential(at: AppTest, on: bool) -> None:
    _toggle(at).set_value(on)


def _sequential_shown(at: AppTest, on: bool) -> str | None:
    if _toggle(at).value != on:
        return f"the sequential toggle is not {on}"
    return _planned(at, f"sequential = {on}")


# --- the steps ----------------------------------------------------------------


def steps() -> list[Step]:
    """Every widget change measured, page by page, in the order they are made."""
    as_of = _AsOfSteps()
    return [
        _details_step(),
        _filter_steps("portfolio_status", "status", "Status"),
        _filter_steps("portfolio_owner", "owner", "Owner"),
        _filter_steps("portfolio_tag", "tags", "Tag"),
        _search_step(),
        _portfolio_as_of_step(),
        Step(
            "results",
            "open another experiment of the same log (first time in the session; "
            "its history is analysed unless the server has)",
            _other_experiments,
            _select_experiment,
            _experiment_shown,
            first_visits=7,
        ),
        Step(
            "results",
            "open another experiment again (already opened)",
            _opened_experiments,
            _select_experiment,
            _experiment_shown,
        ),
        Step(
            "results",
            "decision method switch (segmented control)",
            _methods,
            _set_method,
            _method_shown,
            setup=_open_experiment(EMAIL),
        ),
        Step(
            "results",
            "delta scale relative / absolute",
            _scales,
            _set_scale,
            _scale_shown,
            setup=_open_experiment(EMAIL),
        ),
        Step(
            "results",
            "metric in depth (selectbox)",
            _metrics,
            _set_metric,
            _metric_shown,
            setup=_open_experiment(EMAIL),
        ),
        Step(
            "results",
            "a tab below the metric in depth (only the open tab is drawn)",
            _views,
            _set_view,
            _view_shown,
            setup=_open_experiment(EMAIL),
        ),
        Step(
            "results",
            "open or close a box drawn only while open (details, exposures, downloads)",
            _boxes,
            _set_box,
            _box_shown,
            setup=_open_experiment(EMAIL),
        ),
        Step(
            "results",
            f"treatment (selectbox, on {THREE_ARMS})",
            _variants,
            _set_variant,
            _variant_shown,
            setup=_open_experiment(THREE_ARMS),
        ),
        Step(
            "results",
            "as-of date: a new earlier day within the experiment",
            as_of.new_days,
            _set_as_of,
            as_of.shown,
            setup=lambda at: (_open_experiment(EMAIL)(at), as_of.setup(at)),
            first_visits=MAX_NEW_AS_OF,
        ),
        Step(
            "results",
            "as-of date: back to a day already viewed / empty",
            as_of.back_and_forth,
            _set_as_of,
            as_of.shown,
            setup=_open_experiment(EMAIL),
            teardown=as_of.teardown,
        ),
        _base_step("configs_exp_base", "configs_exp_", "experiment"),
        _base_step("configs_m_base", "configs_metric_", "metric"),
        Step(
            "configs",
            "experiment form: edit the owner and Validate",
            _owners,
            _validate_owner,
            _validated,
            setup=_configs_on_email,
        ),
        Step(
            "configs",
            "Preview on the current log: a new draft (runs the draft on the log)",
            _new_owners,
            _preview,
            _previewed,
            setup=_configs_on_email,
        ),
        Step(
            "configs",
            "Preview on the current log: the same draft again",
            _same_draft,
            _preview,
            _previewed,
        ),
        Step(
            "data",
            "event log source (radio)",
            _sources,
            _set_source,
            _source_shown,
            teardown=_back_to_sample,
        ),
        Step(
            "data",
            "column mapping: the value column (selectbox)",
            _mappings,
            _set_mapping,
            _mapping_shown,
            teardown=lambda at: (_set_mapping(at, "value"), at.run()),
        ),
        Step(
            "data",
            "'Use the bundled sample' (button)",
            _clicks,
            _use_sample,
            _sample_used,
            setup=_back_to_sample,
        ),
        Step(
            "planner",
            "metric (selectbox)",
            _planner_metrics,
            _set_planner_metric,
            _planner_metric_shown,
        ),
        Step(
            "planner",
            "baseline experiment (selectbox, conversion)",
            _baselines,
            _set_baseline,
            _baseline_shown,
            setup=_planner_on_conversion,
        ),
        _number_step("planner_mde", "relative MDE (number input)", 5.0, 3.0),
        _number_step("planner_power", "power (number input)", 0.8, 0.9),
        _number_step("planner_alpha", "alpha (number input)", 0.05, 0.01),
        Step(
            "planner",
            "sequential test (toggle)",
            _sequential_values,
            _set_sequential,
            _sequential_shown,
        ),
    ]


# --- running ----------------------------------------------------------------------


def ensure_sample() -> Path:
    """The bundled sample log, generated (seeded) when missing, as the tests do."""
    if not SAMPLE.is_file():
        from cxlab.sample import write_sample

        write_sample(SAMPLE)
    return SAMPLE


def _timed_run(at: AppTest, timeout: float) -> float:
    start = time.perf_counter()
    at.run(timeout=timeout)
    return (time.perf_counter() - start) * 1000


def _page_check(at: AppTest, page: str) -> str | None:
    if page == "results":
        return expect(bool(at.title) and bool(at.selectbox), "results page not shown")
    titles = [t.value for t in at.title]
    return expect(titles[:1] == [TITLES[page]], f"{page} page not shown: {titles}")


class Session:
    """One AppTest session of app.py, with the counter, measuring rows."""

    def __init__(self, counter: ScanCounter, timeout: float) -> None:
        self.counter, self.timeout = counter, timeout
        self.at = AppTest.from_file(str(APP), default_timeout=timeout)
        self.page = "portfolio"

    def prepare(self) -> Row:
        """What ``cxlab app`` does before it answers, in this process."""
        before = self.counter.snapshot()
        start = time.perf_counter()
        serve.prepare()
        ms = (time.perf_counter() - start) * 1000
        return self._row(
            "server", "cxlab app: analyses before it answers", [ms], before
        )

    def first_load(self) -> Row:
        before = self.counter.snapshot()
        ms = _timed_run(self.at, self.timeout)
        row = self._row("app (portfolio)", "first load: open the app", [ms], before)
        row.problems += problems_of(self.at)
        if problem := _page_check(self.at, "portfolio"):
            row.problems.append(problem)
        return row

    def _row(
        self, page: str, change: str, times: list[float], before: tuple[int, int]
    ) -> Row:
        summarize, reads = self.counter.snapshot()
        return Row(page, change, times, summarize - before[0], reads - before[1])

    def open_page(self, page: str, change: str) -> Row:
        before = self.counter.snapshot()
        self.at.switch_page(PAGES[page])
        ms = _timed_run(self.at, self.timeout)
        self.page = page
        row = self._row(page, change, [ms], before)
        row.problems += problems_of(self.at)
        if problem := _page_check(self.at, page):
            row.problems.append(problem)
        return row

    def step(self, step: Step, runs: int) -> Row:
        at = self.at
        before = self.counter.snapshot()
        problems: list[str] = []
        if step.setup:
            step.setup(at)
            problems += problems_of(at)
        n = runs + 1
        if step.first_visits is not None:
            n = step.first_visits if runs >= 5 else min(runs + 1, step.first_visits)
        times: list[float] = []
        values = step.values(at, n)
        for value in values:
            step.apply(at, value)
            times.append(_timed_run(at, self.timeout))
            problems += problems_of(at)
            if problem := step.check(at, value):
                problems.append(problem)
        if step.teardown:
            step.teardown(at)
            problems += problems_of(at)
        if step.first_visits is None:
            times = times[1:] or times  # the first change is the warm-up
        row = self._row(step.page, step.change, times, before)
        row.problems = list(dict.fromkeys(problems))
        if step.first_visits is not None:
            row.values = [str(v) for v in values]
        return row

    def navigation(self, runs: int) -> list[Row]:
        """Each page opened from the previous one, everything cached."""
        order = list(PAGES)
        times: dict[str, list[float]] = {p: [] for p in order}
        problems: dict[str, list[str]] = {p: [] for p in order}
        before = self.counter.snapshot()
        start = order.index(self.page) + 1
        for i in range((runs + 1) * len(order)):
            page = order[(start + i) % len(order)]
            self.at.switch_page(PAGES[page])
            times[page].append(_timed_run(self.at, self.timeout))
            self.page = page
            problems[page] += problems_of(self.at)
            if problem := _page_check(self.at, page):
                problems[page].append(problem)
        summarize, reads = self.counter.snapshot()
        rows = []
        for page in order:
            row = Row(
                page, "open the page again (from another page)", times[page][1:], 0, 0
            )
            row.problems = list(dict.fromkeys(problems[page]))
            rows.append(row)
        # Scans during the tour are not attributable to one page: put them on all.
        for row in rows:
            row.summarize, row.reads = summarize - before[0], reads - before[1]
        return rows


@contextlib.contextmanager
def empty_store() -> Iterator[None]:
    """An empty on-disk store (cxlab.store): the first load is a first start."""
    before = os.environ.get("CXLAB_CACHE_DIR")
    with tempfile.TemporaryDirectory() as folder:
        os.environ["CXLAB_CACHE_DIR"] = folder
        try:
            yield
        finally:
            if before is None:
                del os.environ["CXLAB_CACHE_DIR"]
            else:
                os.environ["CXLAB_CACHE_DIR"] = before


def measure(
    runs: int = 5,
    only: Sequence[str] | None = None,
    timeout: float = TIMEOUT,
    navigation: bool | None = None,
    server: str = SERVERS[0],
) -> Report:
    """First load, then every step (or those whose name contains one of ``only``).

    Args:
        runs: timed changes per step, after one warm-up change.
        only: substrings of ``"page: change"``; default every step.
        timeout: seconds per AppTest run.
        navigation: also time opening each page again (default: when not ``only``).
        server: ``"cxlab app"`` (prepares first, as the command does) or
            ``"streamlit run"``.
    """
    if server not in SERVERS:
        raise ValueError(f"server must be one of {SERVERS}, not {server!r}")
    ensure_sample()
    chosen = [
        s for s in steps() if not only or any(o.lower() in s.name.lower() for o in only)
    ]
    if only and not chosen:
        raise ValueError(f"no step matches {list(only)}")
    counter = ScanCounter()
    started = dt.datetime.now(dt.UTC)
    load_before = os.getloadavg()
    with (
        counter.installed(),
        server_like_navigation(),
        compiled_once(),
        empty_store(),
    ):
        st.cache_data.clear()
        st.cache_resource.clear()
        session = Session(counter, timeout)
        prepared = session.prepare() if server == "cxlab app" else None
        first = session.first_load()
        rows: list[Row] = []
        for page in PAGES:
            page_steps = [s for s in chosen if s.page == page]
            if not page_steps:
                continue
            if page != session.page:
                rows.append(session.open_page(page, "open the page (first visit)"))
            rows += [session.step(s, runs) for s in page_steps]
        if navigation or (navigation is None and not only):
            rows += session.navigation(runs)
    return Report(
        first,
        rows,
        started,
        load_before,
        os.getloadavg(),
        runs,
        server=server,
        prepared=prepared,
    )


# --- reporting ----------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:,.0f}"


def _rescans(row: Row) -> str:
    return f"{row.summarize} / {row.reads}"


def table(report: Report) -> str:
    lines = [
        "| page | widget change | median ms | max ms | runs | rescans "
        "(summarize / log reads) | < 200 ms |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    before = [report.prepared] if report.prepared else []
    for row in [*before, report.first_load, *report.rows]:
        if row is report.first_load or row is report.prepared:
            verdict = "—"
        else:
            verdict = "yes" if row.median_ms < BUDGET_MS else "**no**"
        problems = f" **{'; '.join(row.problems)}**" if row.problems else ""
        lines.append(
            f"| {row.page} | {row.change}{problems} | {_ms(row.median_ms)} | "
            f"{_ms(row.max_ms)} | {len(row.times_ms)} | {_rescans(row)} | {verdict} |"
        )
    return "\n".join(lines)


def source_hash(*patterns: str) -> str:
    """sha256 (12 hex digits) of the files matching ``patterns`` under the root."""
    import hashlib

    digest = hashlib.sha256()
    for pattern in patterns:
        for path in sorted(ROOT.glob(pattern)):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _load(values: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def section(report: Report, command: str) -> str:
    rows = report.rows
    over = [r for r in rows if r.median_ms >= BUDGET_MS]
    scanned = [r for r in rows if r.rescans]
    failed = [r for r in [report.first_load, *rows] if r.problems]
    size = SAMPLE.stat().st_size / 2**20
    lines = [
        HEADING,
        "",
        f"Reproduce: `{command}` (options: `--help`). Measured "
        f"{report.started:%Y-%m-%d %H:%M} UTC; load average (1 / 5 / 15 min) "
        f"{_load(report.load_before)} before, {_load(report.load_after)} after; "
        f"nproc = {os.cpu_count()}; Python "
        f"{platform.python_version()}, streamlit {st.__version__}, polars "
        f"{pl.__version__}. Source measured: sha256 of `cxlab/*.py` "
        f"{report.engine}, of `app.py` + `pages/*.py` {report.ui}.",
        "",
        f"One AppTest session of `app.py` on the bundled sample log "
        f"(`data/events.parquet`, {size:.1f} MiB) and `experiments/`, served as "
        f"`{report.server}` serves it"
        + (
            " (`cxlab.ui.serve.prepare` ran in this process first: the scan, every "
            "experiment's as-of result and daily history, the pages' imports; its "
            "own row)"
            if report.prepared
            else " (no work done before the first load)"
        )
        + ". Each row: the "
        "wall time of `AppTest.run()` after setting the widget, median and max of "
        f"`runs` changes ({report.runs} here) after one warm-up change, alternating "
        "values so every rerun is a real change. Rows marked *first time* / *a new* "
        "time every value, warm-up included, because each one is a first visit "
        "(listed below). **AppTest time is server-side script time: it excludes "
        "browser rendering and websocket transfer.** Rescans: calls of "
        "`cxlab.summaries.summarize` / Polars `scan_*`/`read_*` calls (the app "
        "reads only the log with them) during the row (warm-up and untimed "
        "preparation included; for the "
        "navigation rows, during the whole tour). Widget checks: no exception, no "
        "error box, and the change shows (selected value, caption, title, table).",
        "",
        table(report),
        "",
        (
            f"- Before the server answers (`cxlab app`): "
            f"{report.prepared.median_ms / 1000:.1f} s, "
            f"{_rescans(report.prepared)} summarize / log reads; then the first "
            f"load: {report.first_load.median_ms / 1000:.1f} s, "
            f"{_rescans(report.first_load)}."
            if report.prepared
            else "- First load (cold caches, one scan of the log, imports included): "
            f"{report.first_load.median_ms / 1000:.1f} s, "
            f"{_rescans(report.first_load)} summarize / log reads."
        ),
        *(
            f"- {r.page}: {r.change}, each value: "
            + ", ".join(
                f"{v} {_ms(t)} ms" for v, t in zip(r.values, r.times_ms, strict=True)
            )
            + "."
            for r in rows
            if r.values
        ),
        "- Over 200 ms (median): "
        + (", ".join(f"{r.page}: {r.change}" for r in over) if over else "none")
        + ".",
        "- Rows that rescanned: "
        + (
            ", ".join(f"{r.page}: {r.change} ({_rescans(r)})" for r in scanned)
            if scanned
            else "none"
        )
        + ".",
        "- Problems (exception, error box, change not shown): "
        + (
            "; ".join(f"{r.page}: {r.change}: {r.problems}" for r in failed)
            if failed
            else "none"
        )
        + ".",
        "- The results page has no dimension selector: the segment chart shows "
        "every dimension of the experiment for the chosen metric and treatment, so "
        "the metric and treatment rows cover it.",
        "- AppTest resets Streamlit's multipage-v1 flag before every run and this "
        "repository has a `pages/` folder, so plain AppTest reruns the page file "
        "without `app.py` (no sidebar, no as-of date). The script makes AppTest "
        "run `app.py` on every rerun, as `streamlit run` does.",
        "- AppTest compiles `app.py` and the page on every run; the server compiles "
        "each script once (its runtime keeps one bytecode cache). The script gives "
        "AppTest's runs one cache, as the server has (since 2026-12-04; before, "
        "every row included about 50 ms of compiling on the results page).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs", type=int, default=5, help="timed changes per row (default 5)"
    )
    parser.add_argument(
        "--only",
        action="append",
        help="measure only steps whose 'page: change' contains this (repeatable; "
        "RESULTS.md is then left alone)",
    )
    parser.add_argument(
        "--timeout", type=float, default=TIMEOUT, help="seconds per AppTest run"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print only; leave RESULTS.md alone"
    )
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default=SERVERS[0],
        help="the server measured (default: cxlab app, which analyses before it "
        "answers; RESULTS.md is written only for it)",
    )
    args = parser.parse_args(argv)
    report = measure(args.runs, args.only, args.timeout, server=args.server)
    command = " ".join([COMMAND, *(argv if argv is not None else sys.argv[1:])])
    text = section(report, command)
    print(text)
    if not args.no_write and not args.only and args.server == SERVERS[0]:
        write_section(RESULTS, HEADING, text)
        print(f"written to {RESULTS.relative_to(ROOT)}")
    failed = [r for r in [report.first_load, *report.rows] if r.problems]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
