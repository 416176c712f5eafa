"""Daily tables: the summed changes per day, cumulated into statistics per day.

The reduction leaves, per (experiment, metric, variant, day), the change of the
sums from the users' contributions, and per (experiment, variant, day) the users
entering and leaving. Here they become the ``daily`` table: every day from the
experiment's start to its as-of day, n and the sums as of the end of that day
(one group-by and a cumulative sum, never an analysis per day). The same changes
per segment and the health counts are kept by day for :mod:`.as_of`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import polars as pl

from cxlab.config import Catalog, Experiment
from cxlab.metrics import RESPONDERS, metric_type
from cxlab.summaries.tables import (
    CUPED_COLUMNS,
    DELTA_COLUMNS,
    DIMENSION_KEYS,
    DIMENSION_SUMS,
    SUM_COLUMNS,
)

KEYS = ["experiment_id", "metric", "variant", "day"]


def as_of_day(
    exp: Experiment, as_of: dt.date | None, last_day: dt.date | None
) -> dt.date:
    """The day an experiment is analysed at: asked, its end, or the log's last."""
    if as_of is not None:
        return as_of
    return exp.end or last_day or exp.start


def grid_keys(experiments: Sequence[Experiment]) -> pl.DataFrame:
    """Every (experiment, metric, variant) with the experiment's start day."""
    keys = [
        (e.id, metric, variant, e.start)
        for e in experiments
        for metric, _ in e.metric_roles
        for variant in e.variant_ids
    ]
    schema = {
        "experiment_id": pl.String,
        "metric": pl.String,
        "variant": pl.String,
        "start": pl.Date,
    }
    return pl.DataFrame(keys, schema=schema, orient="row")


def days_from_start(keys: pl.DataFrame, last: pl.Expr | dt.date) -> pl.DataFrame:
    """One row per key and day from its ``start`` to ``last`` (none if last < start)."""
    return (
        keys.with_columns(pl.date_ranges("start", last).alias("day"))
        .explode("day")
        .drop("start")
        .drop_nulls("day")
    )


def _grid(
    experiments: Sequence[Experiment], as_of_by_exp: Mapping[str, dt.date]
) -> pl.DataFrame:
    """Every (experiment, metric, variant, day) from the start to the as-of day."""
    as_of = pl.col("experiment_id").replace_strict(
        dict(as_of_by_exp), return_dtype=pl.Date
    )
    return days_from_start(grid_keys(experiments), as_of)


def _responders(catalog: Catalog) -> pl.DataFrame:
    """Per metric: whether its population is responders rather than exposed users."""
    return pl.DataFrame(
        {
            "metric": list(catalog.ids),
            "responders": [
                metric_type(m).population == "responders" for m in catalog.metrics
            ],
        }
    )


def _population(users: str) -> pl.Expr:
    """n: responders (``d_pop``) where the type counts them, else exposed users."""
    n = pl.when(pl.col("responders")).then(pl.col(RESPONDERS)).otherwise(pl.col(users))
    return n.round(0).cast(pl.Int64).alias("n")


ENTRY = "entry:"


def _pre_period_sums(flow: pl.DataFrame) -> pl.DataFrame:
    """The flow's "<metric>:<sum>" entry sums as rows per metric, "entry:<sum>"."""
    pre_metrics = sorted({c.split(":")[0] for c in flow.columns if ":pre_" in c})
    entry = [ENTRY + c for c in CUPED_COLUMNS]
    keys = {"experiment_id": pl.String, "variant": pl.String, "day": pl.Date}
    empty = pl.DataFrame(
        schema={**keys, "metric": pl.String, **dict.fromkeys(entry, pl.Float64)}
    )
    return pl.concat(
        [
            empty,
            *[
                flow.select(
                    *keys,
                    pl.lit(m).alias("metric"),
                    *[
                        pl.col(f"{m}:{c}").alias(ENTRY + c)
                        for c in CUPED_COLUMNS
                        if f"{m}:{c}" in flow.columns
                    ],
                )
                for m in pre_metrics
            ],
        ],
        how="diagonal_relaxed",
    )


def cumulate(
    deltas: pl.DataFrame,
    flow: pl.DataFrame,
    experiments: Sequence[Experiment],
    catalog: Catalog,
    as_of_by_exp: Mapping[str, dt.date],
) -> pl.DataFrame:
    """Cumulative statistics for every (experiment, metric, variant, day)."""
    changes = [*DELTA_COLUMNS, "d_users", *[ENTRY + c for c in CUPED_COLUMNS]]
    table = (
        _grid(experiments, as_of_by_exp)
        .join(deltas, on=KEYS, how="left")
        .join(
            flow.select("experiment_id", "variant", "day", "d_users"),
            on=["experiment_id", "variant", "day"],
            how="left",
        )
        .join(_pre_period_sums(flow), on=KEYS, how="left")
        .join(_responders(catalog), on="metric", how="left")
        .with_columns(pl.col(changes).fill_null(0).cast(pl.Float64))
        .sort(KEYS)
        .with_columns(
            pl.col(changes).cum_sum().over(["experiment_id", "metric", "variant"])
        )
    )
    entered = [(pl.col(c) + pl.col(ENTRY + c)).alias(c) for c in CUPED_COLUMNS]
    return table.with_columns(entered).select(
        *KEYS, _population("d_users"), *SUM_COLUMNS
    )


def dimension_deltas(
    dimensions: Sequence[tuple[str, pl.DataFrame, pl.DataFrame]],
    experiments: Sequence[Experiment],
) -> pl.DataFrame:
    """Per (experiment, metric, variant, dimension, segment, day): the changes."""
    frames = []
    for dim, sums, counts in dimensions:
        pairs = [
            (e.id, m)
            for e in experiments
            if dim in e.dimensions
            for m, _ in e.metric_roles
        ]
        metrics = pl.DataFrame(pairs, schema=["experiment_id", "metric"], orient="row")
        frames.append(
            pl.concat(
                [counts.join(metrics, on="experiment_id", how="inner"), sums],
                how="diagonal_relaxed",
            )
            .with_columns(
                pl.lit(dim).alias("dimension"),
                pl.col("users").fill_null(0).cast(pl.Int64),
                pl.col(RESPONDERS, *DIMENSION_SUMS).fill_null(0.0),
            )
            .select(*DIMENSION_KEYS, "day", "users", RESPONDERS, *DIMENSION_SUMS)
        )
    schema = {
        **dict.fromkeys(DIMENSION_KEYS, pl.String),
        "day": pl.Date,
        "users": pl.Int64,
        **dict.fromkeys([RESPONDERS, *DIMENSION_SUMS], pl.Float64),
    }
    return pl.concat([pl.DataFrame(schema=schema), *frames], how="vertical_relaxed")


def dimension_table(
    deltas: pl.DataFrame, catalog: Catalog, day: dt.date | None = None
) -> pl.DataFrame:
    """Statistics per (experiment, metric, variant, segment) at the end of ``day``.

    Sums the daily changes up to that day (all of them when None); segments with
    no analysed user left are omitted.
    """
    upto = deltas if day is None else deltas.filter(pl.col("day") <= day)
    return (
        upto.group_by(DIMENSION_KEYS)
        .agg(pl.col("users", RESPONDERS, *DIMENSION_SUMS).sum())
        .filter(pl.col("users") > 0)
        .join(_responders(catalog), on="metric", how="left")
        .select(*DIMENSION_KEYS, _population("users"), *DIMENSION_SUMS)
        .sort("experiment_id", "metric", "dimension", "segment", "variant")
    )


def variants_by_day(
    exposure_days: pl.DataFrame, users_by_day: pl.DataFrame
) -> pl.DataFrame:
    """Per (experiment, variant, day): exposure rows, in-window rows, new users."""
    return (
        exposure_days.join(
            users_by_day,
            on=["experiment_id", "variant", "day"],
            how="full",
            coalesce=True,
        )
        .with_columns(pl.col("exposure_rows", "in_window_rows", "users").fill_null(0))
        .sort("experiment_id", "variant", "day")
    )


def health_by_day(
    exposure_days: pl.DataFrame, people_daily: pl.DataFrame
) -> pl.DataFrame:
    """Per (experiment, day): the changes of the ExperimentHealth counts."""
    return (
        exposure_days.group_by("experiment_id", "day")
        .agg(
            pl.col("exposure_rows").sum(),
            (pl.col("exposure_rows") - pl.col("in_window_rows"))
            .sum()
            .alias("exposures_outside_window"),
        )
        .join(people_daily, on=["experiment_id", "day"], how="full", coalesce=True)
        .with_columns(pl.exclude("experiment_id", "day").fill_null(0).cast(pl.Int64))
        .sort("experiment_id", "day")
    )
