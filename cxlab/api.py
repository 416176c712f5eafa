"""The engine's front door: configs + log in, analysed experiments out.

Used by the CLI, the app's cached wrappers and notebooks alike::

    from cxlab import analyze_experiment
    result = analyze_experiment("proactive-shipping-email", "data/events.parquet")
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from cxlab.config import (
    CATALOG_FILE,
    Catalog,
    Experiment,
    find_experiment,
    load_catalog,
    load_experiments,
)
from cxlab.events import EventSource, resolve_source
from cxlab.sql.engines import summarize_with
from cxlab.summaries import SUM_COLUMNS, Summaries, as_reduced

if TYPE_CHECKING:  # the analysis (scipy) is imported on first use
    from cxlab.analysis import ExperimentResult
    from cxlab.sql.target import SparkTarget

DEFAULT_EXPERIMENTS_DIR = Path("experiments")


def catalog_path(experiments_dir: Path | str, metrics: Path | str | None) -> Path:
    """The metric catalog: ``--metrics`` or ``metrics.yaml`` in the experiments dir."""
    return (
        Path(metrics) if metrics is not None else Path(experiments_dir) / CATALOG_FILE
    )


def summarize_all(
    source: EventSource,
    experiments: Sequence[Experiment],
    catalog: Catalog,
    *,
    as_of: dt.date | None = None,
    log_health: bool = True,
    engine: str = "polars",
    spark: SparkTarget | None = None,
) -> dict[str, Summaries]:
    """Summaries for each experiment: one scan per distinct ``columns`` mapping.

    ``engine`` names the reduction engine (:mod:`cxlab.sql.engines`); ``spark``
    where the spark engine runs. The engines see each experiment as reduced
    (:func:`~cxlab.summaries.as_reduced`): only the fields the summaries depend on.
    """
    groups: dict[tuple, list[Experiment]] = {}
    for exp in map(as_reduced, experiments):
        groups.setdefault(exp.columns, []).append(exp)
    if not groups:
        groups[()] = []
    out: dict[str, Summaries] = {}
    for members in groups.values():
        summaries = summarize_with(
            engine,
            source,
            members,
            catalog,
            as_of=as_of,
            log_health=log_health,
            spark=spark,
        )
        out |= {exp.id: summaries for exp in members}
        if not members:
            out[""] = summaries
    return out


def _zero_summaries(
    exp: Experiment, catalog: Catalog, summaries: Summaries
) -> Summaries:
    """Summaries with one all-zero look at the as-of day (as-of before the start)."""
    day = summaries.as_of[exp.id]
    rows = [
        {"experiment_id": exp.id, "metric": m, "variant": v, "day": day}
        for m, _ in exp.metric_roles
        for v in exp.variant_ids
    ]
    zero = pl.DataFrame(rows).with_columns(
        pl.lit(0, pl.Int64).alias("n"),
        *[pl.lit(0.0).alias(c) for c in SUM_COLUMNS],
    )
    return dataclasses.replace(summaries, daily=zero)


def results_for(
    exp: Experiment,
    catalog: Catalog,
    summaries: Summaries,
    *,
    history: bool,
    details: bool = True,
) -> list[ExperimentResult]:
    """The as-of result (a one-element list) or the whole daily history.

    ``details``: the as-of result's details (:func:`cxlab.analysis.with_details`).
    """
    from cxlab.analysis import analyze_history

    results = analyze_history(
        exp, catalog, summaries, last_only=not history, details=details
    )
    if results or history:
        return results
    return analyze_history(
        exp,
        catalog,
        _zero_summaries(exp, catalog, summaries),
        last_only=True,
        details=details,
    )


def analyze_experiment(
    experiment: str | Experiment,
    events: str | Path,
    *,
    experiments_dir: str | Path = DEFAULT_EXPERIMENTS_DIR,
    metrics: str | Path | None = None,
    as_of: dt.date | None = None,
) -> ExperimentResult:
    """Analyse one experiment (an id, a YAML path or a loaded config) on a log."""
    catalog = load_catalog(catalog_path(experiments_dir, metrics))
    exp = (
        experiment
        if isinstance(experiment, Experiment)
        else find_experiment(experiment, experiments_dir, catalog)
    )
    summaries = summarize_all(resolve_source(events), [exp], catalog, as_of=as_of)
    return results_for(exp, catalog, summaries[exp.id], history=False)[0]


def analyze_folder(
    events: str | Path,
    *,
    experiments_dir: str | Path = DEFAULT_EXPERIMENTS_DIR,
    metrics: str | Path | None = None,
    as_of: dt.date | None = None,
) -> list[ExperimentResult]:
    """Analyse every experiment of a folder on one log (one scan)."""
    catalog = load_catalog(catalog_path(experiments_dir, metrics))
    experiments = load_experiments(experiments_dir, catalog)
    summaries = summarize_all(resolve_source(events), experiments, catalog, as_of=as_of)
    return [
        results_for(e, catalog, summaries[e.id], history=False)[0] for e in experiments
    ]
