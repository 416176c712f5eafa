"""Cached access to the engine for the pages (the engine never imports Streamlit).

Every cache is keyed on the log's fingerprint (paths, sizes, mtimes), the configs'
content hashes and the session's engine, never on frames or bare paths: a widget
change reruns the page on cached summaries and never rescans the log; editing a
config or the log, or choosing another engine, invalidates exactly what depends on it.

Summaries and results are cached as shared resources, not copies: ``st.cache_data``
would unpickle a fresh copy on every call (tens of milliseconds per rerun for the
summaries). They are frozen dataclasses and Polars frames; nothing may mutate them.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import os
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import streamlit as st

from cxlab import store
from cxlab.analysis import (
    ExperimentResult,
    analyze_history,
    day_of_history,
    history_until,
    with_details,
)
from cxlab.api import results_for, summarize_all
from cxlab.config import (
    CATALOG_FILE,
    Catalog,
    Experiment,
    load_catalog,
    load_experiments_each,
)
from cxlab.engine_choice import EngineChoice, spark_target
from cxlab.errors import ConfigError
from cxlab.events import EventSource, resolve_source
from cxlab.health import HealthReport, health_report
from cxlab.sql.engines import resolve_engine, resolve_events
from cxlab.states import ExperimentState, experiment_state
from cxlab.summaries import Summaries, as_reduced, at_day
from cxlab.workspace import workspace

ROOT = workspace()  # the checkout's root, or the folder `cxlab app` was started in
STORE_ENV = "CXLAB_CACHE_DIR"
Drawn = TypeVar("Drawn")  # a chart, or a list of charts
SAMPLE_EVENTS = ROOT / "data" / "events.parquet"
EXPERIMENTS_DIR = ROOT / "experiments"

# Session-state keys shared by app.py and every page.
EVENTS_KEY = "events_path"
AS_OF_KEY = "as_of"
EXPERIMENT_KEY = "experiment_id"
ENGINE_KEY = "engine_choice"  # an EngineChoice, set by an admin on the Data page

# The on-disk names of the whole histories (no as-of day) load_history has given
# in this process: an as-of day's portfolio rows are read off them.
_HAD: set[str] = set()


@dataclass(frozen=True)
class Workspace:
    """What the pages analyse: a log, the configs and an optional as-of day."""

    events: str
    fingerprint: tuple
    experiments_dir: str
    configs: tuple[tuple[str, str], ...]  # (file, content hash) of every config
    as_of: dt.date | None
    engine: str  # the reduction engine, resolved (polars, duckdb or spark)
    spark_url: str  # where spark runs ("" = the environment's, else local)


def ensure_sample() -> Path:
    """The bundled sample log, generated (seeded) on first use."""
    if not SAMPLE_EVENTS.is_file():
        from cxlab.sample import write_sample

        with st.spinner("Generating the sample event log (first run only)…"):
            write_sample(SAMPLE_EVENTS)
    return SAMPLE_EVENTS


def config_hashes(folder: Path) -> tuple[tuple[str, str], ...]:
    """(file, content hash) of every config in ``folder``: what a cache keys on."""
    import hashlib

    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    return tuple(
        (f.name, hashlib.sha256(f.read_bytes()).hexdigest()[:16]) for f in files
    )


def engine_choice() -> EngineChoice:
    """The session's engine setting (``auto`` until an admin chooses one)."""
    return st.session_state.get(ENGINE_KEY) or EngineChoice()


def workspace() -> Workspace:
    """The current workspace from session state (sample log by default).

    Raises:
        InputError: the chosen log or the configs are unusable.
    """
    return workspace_of(
        st.session_state.get(EVENTS_KEY) or str(ensure_sample()),
        engine_choice(),
        Path(st.session_state.get("experiments_dir") or EXPERIMENTS_DIR),
        st.session_state.get(AS_OF_KEY),
    )


def workspace_of(
    events: str, choice: EngineChoice, folder: Path, as_of: dt.date | None
) -> Workspace:
    """The workspace of a log, an engine setting, a configs folder and a day.

    Raises:
        InputError: the log is unusable.
    """
    engine = resolve_engine(choice.engine, events=events)
    source = resolve_events(events, engine)
    return Workspace(
        events=events,
        fingerprint=source.fingerprint,
        experiments_dir=str(folder),
        configs=config_hashes(folder),
        as_of=as_of,
        engine=engine,
        spark_url=choice.spark_url if engine == "spark" else "",
    )


def default_workspace() -> Workspace:
    """What a new session opens on: the sample log, the configs, no as-of day."""
    return workspace_of(str(SAMPLE_EVENTS), EngineChoice(), EXPERIMENTS_DIR, None)


@st.cache_data(max_entries=8, show_spinner=False)
def load_folder(
    experiments_dir: str, configs: tuple[tuple[str, str], ...]
) -> tuple[Catalog, list[Experiment], list[ConfigError]]:
    """Catalog, the experiments that load and the broken files' errors.

    ``configs`` only keys the cache. A broken experiment file disables that
    experiment only; a broken catalog raises, since every experiment needs it.
    """
    catalog = load_catalog(Path(experiments_dir) / CATALOG_FILE)
    experiments, errors = load_experiments_each(experiments_dir, catalog)
    return catalog, experiments, errors


def load_configs(
    experiments_dir: str, configs: tuple[tuple[str, str], ...]
) -> tuple[Catalog, list[Experiment]]:
    """Catalog and the experiments that load (broken files left out)."""
    catalog, experiments, _ = load_folder(experiments_dir, configs)
    return catalog, experiments


def config_errors(ws: Workspace) -> list[ConfigError]:
    """The error (``file:line``) of every experiment config that does not load."""
    return load_folder(ws.experiments_dir, ws.configs)[2]


@st.cache_resource(max_entries=8, show_spinner="Reading the event log…")
def load_summaries(
    events: str,
    fingerprint: tuple,
    scan: str,
    engine: str,
    spark_url: str,
    _catalog: Catalog,
    _experiments: tuple[Experiment, ...],
) -> dict[str, Summaries]:
    """Summaries of every experiment over the log's whole range: the one scan.

    ``scan`` (:func:`scan_inputs`) keys the catalog and the reduced experiments.
    ``engine`` (resolved) runs it, Spark at ``spark_url``. Also kept on disk
    (:mod:`cxlab.store`), so a restarted server reads them back instead of
    rescanning an unchanged log, with configs unchanged in what the scan reads,
    on the same engine.
    """
    name = "summaries-" + store.key(events, fingerprint, scan, engine, spark_url)
    if (stored := store.load(store_folder(), name)) is not None:
        return stored
    summaries = _summarize(events, list(_experiments), _catalog, engine, spark_url)
    store.save(store_folder(), name, summaries)
    return summaries


def scan_inputs(ws: Workspace) -> tuple[str, Catalog, tuple[Experiment, ...]]:
    """The key of the one scan, its catalog and its experiments as reduced.

    The engines read only part of a config (:func:`~cxlab.summaries.as_reduced`):
    an edit of the rest (a name, a decision note, alpha) keeps the key, so it
    re-analyses the experiments without reading the log again.
    """
    return _scan_inputs(ws.experiments_dir, ws.configs)


@functools.lru_cache(maxsize=16)
def _scan_inputs(
    experiments_dir: str, configs: tuple[tuple[str, str], ...]
) -> tuple[str, Catalog, tuple[Experiment, ...]]:
    """:func:`scan_inputs` of a folder's content (``configs`` keys it).

    A plain memo, shared like the caches of resources: a page asks for it once
    per experiment (1 ms each through ``load_folder``'s copies).
    """
    catalog, experiments = load_configs(experiments_dir, configs)
    reduced = tuple(as_reduced(e) for e in experiments)
    return store.key(catalog, reduced), catalog, reduced


def _summarize(
    events: str,
    experiments: list[Experiment],
    catalog: Catalog,
    engine: str,
    spark_url: str,
    as_of: dt.date | None = None,
) -> dict[str, Summaries]:
    """The summaries from the chosen engine (:mod:`cxlab.sql.engines`)."""
    spark = spark_target(spark_url) if engine == "spark" else None
    source = resolve_events(events, engine)
    return summarize_all(
        source, experiments, catalog, as_of=as_of, engine=engine, spark=spark
    )


def store_folder() -> Path:
    """Where summaries and results outlive the server (default ``.cxlab-cache``)."""
    return Path(os.environ.get(STORE_ENV) or ROOT / ".cxlab-cache")


@st.cache_resource(max_entries=32, show_spinner=False)
def summaries_at(
    events: str,
    fingerprint: tuple,
    scan: str,
    as_of: dt.date | None,
    engine: str,
    spark_url: str,
    _catalog: Catalog,
    _experiments: tuple[Experiment, ...],
) -> dict[str, Summaries]:
    """The cached summaries as of a day, cut from the one scan (no rescan)."""
    full = load_summaries(
        events, fingerprint, scan, engine, spark_url, _catalog, _experiments
    )
    if as_of is None:
        return full
    cut: dict[int, Summaries] = {}  # experiments of one scan share their summaries
    for s in full.values():
        if id(s) not in cut:
            cut[id(s)] = at_day(s, as_of, _catalog)
    return {exp_id: cut[id(s)] for exp_id, s in full.items()}


def _summaries(ws: Workspace) -> dict[str, Summaries]:
    scan, catalog, experiments = scan_inputs(ws)
    return summaries_at(
        ws.events,
        ws.fingerprint,
        scan,
        ws.as_of,
        ws.engine,
        ws.spark_url,
        catalog,
        experiments,
    )


def _results_name(kind: str, ws: Workspace, catalog: Catalog, exp: Experiment) -> str:
    """The on-disk name of results of one experiment analysed from the workspace.

    Keyed on the workspace but for the other configs (the log's fingerprint, the
    as-of day, the engine), the scan's inputs (:func:`scan_inputs`), the catalog,
    the experiment's own config, and the engine's and the statistics' code
    (:mod:`cxlab.store`): an edit of another experiment that the scan does not
    read leaves them valid.
    """
    own = replace(ws, configs=())
    parts = (own, scan_inputs(ws)[0], catalog, exp, store.statistics_version())
    return f"{kind}-" + store.key(*parts)


@st.cache_resource(max_entries=8, show_spinner="Analysing…")
def load_portfolio(ws: Workspace) -> list[ExperimentResult]:
    """Every experiment as of its as-of day (each kept on disk, like the summaries).

    Without the as-of details (:func:`~cxlab.analysis.with_details`): the
    portfolio shows none of them.
    """
    catalog, experiments = load_configs(ws.experiments_dir, ws.configs)
    return [_as_of_row(ws, catalog, e) for e in experiments]


def _as_of_row(ws: Workspace, catalog: Catalog, exp: Experiment) -> ExperimentResult:
    """One experiment as of the workspace's day, without details: the portfolio's.

    Read off the experiment's whole history when this process has it (as
    ``cxlab app`` has every one, :mod:`cxlab.ui.serve`), else analysed.
    """
    name = _results_name("row", ws, catalog, exp)
    if (stored := store.load(store_folder(), name)) is not None:
        return stored
    summaries = _summaries(ws)[exp.id]
    whole = replace(ws, as_of=None)
    row = None
    if ws.as_of is not None and _results_name("history", whole, catalog, exp) in _HAD:
        row = day_of_history(load_history(whole, exp.id), catalog, summaries)
    if row is None:
        row = results_for(exp, catalog, summaries, history=False, details=False)[0]
    store.save(store_folder(), name, row)
    return row


def _as_of_result(ws: Workspace, catalog: Catalog, exp: Experiment) -> ExperimentResult:
    """The portfolio's row with its details: the results page's as-of day (on disk).

    Equal to the as-of result analysed with them (tested). Only for a day the
    experiment has data by, as :func:`load_history` asks.
    """
    name = _results_name("result", ws, catalog, exp)
    if (stored := store.load(store_folder(), name)) is not None:
        return stored
    row = _as_of_row(ws, catalog, exp)
    result = with_details(row, catalog, _summaries(ws)[exp.id])
    store.save(store_folder(), name, result)
    return result


@st.cache_resource(max_entries=32, show_spinner="Analysing…")
def load_history(ws: Workspace, experiment_id: str) -> list[ExperimentResult]:
    """One experiment as it stood at the end of each day (oldest first).

    As of an earlier day of the experiment's whole history, that history's days
    up to it and the as-of result, the portfolio's (:func:`history_until`). An
    analysed history is kept on disk, the others are read off it again.
    """
    catalog, experiments = load_configs(ws.experiments_dir, ws.configs)
    exp = next(e for e in experiments if e.id == experiment_id)
    name = _results_name("history", ws, catalog, exp)
    history = store.load(store_folder(), name)
    if history is None:
        history = _history(ws, catalog, exp, name)
    if ws.as_of is None:
        _HAD.add(name)
    return history


def _history(
    ws: Workspace, catalog: Catalog, exp: Experiment, name: str
) -> list[ExperimentResult]:
    """The history as of the workspace's day: read off the whole one when it can be.

    It can when its as-of row can (:func:`~cxlab.analysis.day_of_history`): the
    whole history runs through the day, or to the experiment's end before it, and a
    categorical metric has met the same categories by then. Only an analysed
    history is stored as ``name``: one read off takes less time to read off again
    than to store (20–40 ms on the sample).
    """
    summaries = _summaries(ws)[exp.id]
    whole = None if ws.as_of is None else load_history(replace(ws, as_of=None), exp.id)
    if whole is not None and day_of_history(whole, catalog, summaries) is not None:
        return history_until(whole, _as_of_result(ws, catalog, exp))
    history = analyze_history(exp, catalog, summaries)
    history = history or results_for(exp, catalog, summaries, history=False)
    store.save(store_folder(), name, history)
    return history


@st.cache_resource(show_spinner=False)
def warm_import(module: str) -> threading.Thread:
    """Import ``module`` on a daemon thread, once per server process.

    The portfolio draws without pandas, but the other pages' tables and charts
    need it (Streamlit converts their data through pandas): importing it while
    the reader looks at the first page spares the next page that half second.
    """
    thread = threading.Thread(
        target=importlib.import_module,
        args=(module,),
        name=f"import {module}",
        daemon=True,
    )
    thread.start()
    return thread


@st.cache_resource(max_entries=8, show_spinner=False)
def load_health(ws: Workspace) -> HealthReport:
    """The data-health report of the log against the configs (any engine)."""
    _, experiments = load_configs(ws.experiments_dir, ws.configs)
    source = resolve_events(ws.events, ws.engine)
    return health_report(source, experiments, _summaries(ws))


@st.cache_resource(max_entries=256, show_spinner=False)
def figure(
    ws: Workspace,
    experiment_id: str,
    name: str,
    key: tuple[Hashable, ...],
    _build: Callable[[], Drawn],
) -> Drawn:
    """A chart of one experiment, built once per workspace, experiment and ``key``.

    A widget change rebuilds only the charts it changes. ``_build`` is not hashed:
    the chart must follow from the workspace's cached results of the experiment and
    ``key`` (the widget values it uses) alone. Charts are shared by reruns and
    sessions: nothing may mutate them.
    """
    return _build()


def state_of(ws: Workspace, experiment: Experiment) -> ExperimentState:
    """Whether an experiment has numbers as of the workspace's day, and why not."""
    summaries = _summaries(ws)[experiment.id]
    return experiment_state(experiment, summaries.as_of[experiment.id], summaries)


def all_summaries(ws: Workspace) -> dict[str, Summaries]:
    """The cached summaries of every experiment that loads, by id."""
    return _summaries(ws)


def summaries_for(ws: Workspace, experiment_id: str) -> Summaries:
    """The cached summaries that hold one experiment (dimension tables, exposures)."""
    return _summaries(ws)[experiment_id]


def source_of(ws: Workspace) -> EventSource:
    """The resolved files of the workspace's log."""
    return resolve_source(ws.events)


# --- part B: config studio, data page, planner ------------------------------------
# Added for pages/configs.py, pages/data.py and pages/planner.py; keyed like the rest
# on the log's fingerprint and the configs' hashes.


def experiments_folder() -> Path:
    """The experiments folder of the session (``experiments/`` by default)."""
    return Path(st.session_state.get("experiments_dir") or EXPERIMENTS_DIR)


def preview(ws: Workspace, draft: Experiment, catalog: Catalog) -> ExperimentResult:
    """An unsaved experiment analysed on the workspace's log.

    A draft that the scan reads as it reads one of the workspace's experiments
    (they differ only outside :data:`~cxlab.summaries.READ_FIELDS`: a name, an
    owner, alpha, the decision method) is analysed on the summaries already
    scanned (:func:`_scanned_preview`); any other is scanned alone
    (:func:`load_preview`).
    """
    _, scanned, reduced = scan_inputs(ws)
    if catalog == scanned and as_reduced(draft) in reduced:
        return _scanned_preview(ws, draft)
    return load_preview(
        ws.events, ws.fingerprint, draft, catalog, ws.as_of, ws.engine, ws.spark_url
    )


@st.cache_resource(max_entries=16, show_spinner="Running the preview on the log…")
def _scanned_preview(ws: Workspace, draft: Experiment) -> ExperimentResult:
    """A draft analysed on the workspace's summaries (no scan of its own)."""
    catalog = scan_inputs(ws)[1]
    return results_for(draft, catalog, _summaries(ws)[draft.id], history=False)[0]


@st.cache_data(max_entries=16, show_spinner="Running the preview on the log…")
def load_preview(
    events: str,
    fingerprint: tuple,
    experiment: Experiment,
    catalog: Catalog,
    as_of: dt.date | None,
    engine: str,
    spark_url: str,
) -> ExperimentResult:
    """An unsaved experiment scanned alone and analysed by the chosen engine.

    ``fingerprint`` keys the cache.
    """
    summaries = _summarize(events, [experiment], catalog, engine, spark_url, as_of)
    return results_for(experiment, catalog, summaries[experiment.id], history=False)[0]


@st.cache_data(max_entries=8, show_spinner="Counting events per day…")
def load_events_per_day(events: str, fingerprint: tuple) -> pl.DataFrame:
    """Rows per day and event type (``fingerprint`` keys the cache)."""
    from cxlab.studio import events_per_day

    return events_per_day(resolve_source(events))


@st.cache_resource(max_entries=8, show_spinner=False)
def events_per_day_figure(events: str, fingerprint: tuple) -> dict[str, Any]:
    """The Data page's events-per-day chart (a Vega-Lite spec), built once per log."""
    from cxlab.charts import events_per_day_chart

    return events_per_day_chart(load_events_per_day(events, fingerprint))
