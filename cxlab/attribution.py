"""Who is in which experiment, from when (CONTRACT §1, attribution).

A user enters an experiment at their first in-window exposure. A user who is later
exposed to a different variant is excluded from the moment that second variant
appears (so a daily history shows them where they stood that day) and is counted in
``multiple_exposures``. Dimension values come from the first exposure row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from cxlab.config import Experiment
from cxlab.events import EXPOSURE

UTC_DAY = dt.timedelta(days=1)
OPEN_END = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
KEYS = ["experiment_id", "user_id"]
DIM_PREFIX = "dim:"


def _utc_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def analysis_cutoff(experiment: Experiment, as_of: dt.date | None) -> dt.datetime:
    """The first instant not analysed: the end of the end day or of the as-of day."""
    ends = [d for d in (experiment.end, as_of) if d is not None]
    return _utc_midnight(min(ends)) + UTC_DAY if ends else OPEN_END


def experiment_windows(
    experiments: Sequence[Experiment], as_of: dt.date | None
) -> pl.LazyFrame:
    """One row per experiment: its id, analysis window and CUPED pre-period."""
    return pl.LazyFrame(
        {
            "experiment_id": [e.id for e in experiments],
            "window_start": [_utc_midnight(e.start) for e in experiments],
            "window_end": [analysis_cutoff(e, as_of) for e in experiments],
            "cuped_days": [e.cuped_days for e in experiments],
        },
        schema={
            "experiment_id": pl.String,
            "window_start": pl.Datetime("us", "UTC"),
            "window_end": pl.Datetime("us", "UTC"),
            "cuped_days": pl.Int64,
        },
    )


def exposure_rows(events: pl.LazyFrame, windows: pl.LazyFrame) -> pl.LazyFrame:
    """Exposure rows of the configured experiments, flagged in or out of window."""
    in_window = (pl.col("timestamp") >= pl.col("window_start")) & (
        pl.col("timestamp") < pl.col("window_end")
    )
    return (
        events.filter(pl.col("event") == EXPOSURE)
        .join(windows, on="experiment_id", how="inner")
        .with_columns(in_window.alias("in_window"))
    )


def exposures_by_variant(
    exposures: pl.LazyFrame, dimensions: Sequence[str]
) -> pl.LazyFrame:
    """One row per (experiment, user, variant) seen in the window: since when.

    Dimension values are those of that variant's first exposure row, named
    ``dim:<name>`` so they never clash with the event rows' own columns.
    """
    return (
        exposures.filter(pl.col("in_window"))
        .group_by(*KEYS, "variant")
        .agg(
            pl.col("timestamp").min().alias("since"),
            pl.col("window_end").first(),
            pl.col("cuped_days").first(),
            *[
                pl.col(d).sort_by("timestamp").first().alias(DIM_PREFIX + d)
                for d in dimensions
            ],
        )
    )


def attribute_exposures(
    per_variant: pl.LazyFrame, dimensions: Sequence[str]
) -> pl.LazyFrame:
    """First exposure per (experiment, user), with the moment of any conflict.

    Args:
        per_variant: the output of :func:`exposures_by_variant`.
        dimensions: dimension names to carry.

    Returns:
        One row per exposed user and experiment: ``first_exposure``, ``variant``
        (of the first exposure), ``conflict_at`` (first exposure to another
        variant, null if none: the second-earliest variant start), dimension
        values of the first exposure row, and the experiment's window columns.
    """
    earliest = pl.col("since").arg_min()
    return (
        per_variant.group_by(KEYS)
        .agg(
            pl.col("since").min().alias("first_exposure"),
            pl.col("variant").get(earliest),
            pl.col("since").sort().get(1, null_on_oob=True).alias("conflict_at"),
            pl.col("window_end").first(),
            pl.col("cuped_days").first(),
            *[pl.col(DIM_PREFIX + d).get(earliest) for d in dimensions],
        )
        .with_columns(
            pl.col("first_exposure").dt.date().alias("exposure_day"),
            pl.col("conflict_at").dt.date().alias("conflict_day"),
        )
    )
