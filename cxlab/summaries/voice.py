"""Stage 2b, the detail tables: per-category sums and times to an event, by day.

Two metric types need more than one row of sums per (variant, day):

* ``categorical``: per category, each user's count of the metric's events of
  that category (x) is summed as Σx and Σx², and each user's FIRST category is
  counted (``first``), for the composition test. Kept as daily changes per
  (experiment, metric, variant, category, day), like the daily sums: a user's
  counts enter on the day of each event and, for a user who meets a second
  variant, are taken back on that day.
* ``time_to_event``: each user's time from their first start event to the next
  end event, in whole minutes (rounded up), censored at the as-of moment while
  still open: the end of the as-of day, or earlier the experiment's end or the
  log's last event. A time past the horizon is censored at the horizon. A
  user's state as of a day is (minutes, kind), ``kind`` one of :data:`OPEN`,
  :data:`RESOLVED` and :data:`LATE` (resolved after the horizon); it changes
  while the contact is open (its censoring time grows with the as-of day) until
  it is resolved or reaches the horizon. The table keeps the changes of the
  states' counts per (experiment, metric, variant, day, minutes, kind): any
  day's Kaplan–Meier counts are their sum up to that day, so an earlier as-of
  day (:func:`cxlab.summaries.at_day`) and every day of a history need no
  rescan. Rows per user: at most the days until the horizon, plus two.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import polars as pl

from cxlab.config import Catalog
from cxlab.metrics import END_PREFIX, START_PREFIX, category_column, metric_type

OPEN, RESOLVED, LATE = 0, 1, 2
GONE = -1  # the user left the analysis (met a second variant)
CATEGORY_SCHEMA = {
    "experiment_id": pl.String,
    "metric": pl.String,
    "variant": pl.String,
    "category": pl.String,
    "day": pl.Date,
    "sum_x": pl.Float64,
    "sum_xx": pl.Float64,
    "first": pl.Float64,
}
SURVIVAL_SCHEMA = {
    "experiment_id": pl.String,
    "metric": pl.String,
    "variant": pl.String,
    "day": pl.Date,
    "minutes": pl.Int64,
    "kind": pl.Int8,
    "users": pl.Int64,
}
MICROSECOND = dt.timedelta(microseconds=1)


def category_changes(
    rows: pl.DataFrame,
    users: pl.DataFrame,
    catalog: Catalog,
    metric_users: Mapping[str, Sequence[str]],
) -> pl.DataFrame:
    """Per (experiment, metric, variant, category, day): the changes of Σx, Σx², first.

    Args:
        rows: the counted rows with a detail value: ``uk``, ``day`` and the
            detail columns, ordered by (uk, time).
        users: the assignments (``uk``, ``experiment_id``, ``variant``,
            ``conflict_day``).
        catalog: the metric catalog.
        metric_users: metric id → ids of the experiments that analyse it.
    """
    frames = []
    for metric_id, exp_ids in metric_users.items():
        if metric_type(catalog[metric_id]).detail == "categories":
            of_exps = users.filter(pl.col("experiment_id").is_in(exp_ids))
            column = category_column(catalog[metric_id])
            frames.append(_categories_of(rows, of_exps, metric_id, column))
    return pl.concat(
        [pl.DataFrame(schema=CATEGORY_SCHEMA), *frames], how="vertical_relaxed"
    )


def _categories_of(
    rows: pl.DataFrame, users: pl.DataFrame, metric_id: str, column: str
) -> pl.DataFrame:
    conflict = pl.col("conflict_day")
    kept = conflict.is_null() | (pl.col("day") < conflict)
    events = (
        rows.filter(pl.col(column).is_not_null())
        .select("uk", "day", pl.col(column).alias("category"))
        .join(users.select("uk", "experiment_id", "variant", "conflict_day"), on="uk")
        .filter(kept)
    )
    keys = ["experiment_id", "variant", "category"]
    per_day = (
        events.group_by("uk", *keys, "day", maintain_order=True)
        .agg(pl.len().cast(pl.Float64).alias("sum_x"))
        .sort("uk", "category", "day", maintain_order=True)
        .with_columns(pl.col("sum_x").cum_sum().over("uk", "category").alias("total"))
    )
    # A user's x² grows from (total − today)² to total².
    counted = per_day.select(
        *keys,
        "day",
        "sum_x",
        (pl.col("total") ** 2 - (pl.col("total") - pl.col("sum_x")) ** 2).alias(
            "sum_xx"
        ),
        pl.lit(0.0).alias("first"),
    )
    retired = (
        per_day.group_by("uk", *keys)
        .agg(pl.col("total").last())
        .join(events.select("uk", "conflict_day").unique("uk"), on="uk")
        .filter(conflict.is_not_null())
        .select(
            *keys,
            conflict.alias("day"),
            (-pl.col("total")).alias("sum_x"),
            (-(pl.col("total") ** 2)).alias("sum_xx"),
            pl.lit(0.0).alias("first"),
        )
    )
    first = events.unique("uk", keep="first", maintain_order=True)
    firsts = pl.concat(
        [
            first.select(*keys, "day", pl.lit(1.0).alias("first")),
            first.filter(conflict.is_not_null()).select(
                *keys, conflict.alias("day"), pl.lit(-1.0).alias("first")
            ),
        ]
    ).with_columns(pl.lit(0.0).alias("sum_x"), pl.lit(0.0).alias("sum_xx"))
    return (
        pl.concat([counted, retired, firsts], how="diagonal")
        .group_by(*keys, "day")
        .agg(pl.col("sum_x", "sum_xx", "first").sum())
        .select(
            "experiment_id",
            pl.lit(metric_id).alias("metric"),
            "variant",
            "category",
            "day",
            "sum_x",
            "sum_xx",
            "first",
        )
        .sort("experiment_id", "variant", "category", "day")
    )


def survival_changes(
    rows: pl.DataFrame,
    users: pl.DataFrame,
    catalog: Catalog,
    metric_users: Mapping[str, Sequence[str]],
    last_event: dt.datetime | None,
) -> pl.DataFrame:
    """Per (experiment, metric, variant, day, minutes, kind): users in less users out.

    Args:
        rows: the counted rows with a detail value, ordered by (uk, time).
        users: the assignments (``uk``, ``experiment_id``, ``variant``,
            ``conflict_day``, ``window_end``).
        catalog: the metric catalog.
        metric_users: metric id → ids of the experiments that analyse it.
        last_event: the log's last event: no contact is known to be open later.
    """
    frames = []
    for metric_id, exp_ids in metric_users.items():
        metric = catalog[metric_id]
        if metric_type(metric).detail == "survival":
            of_exps = users.filter(pl.col("experiment_id").is_in(exp_ids))
            horizon = round(float(metric.horizon_hours or 0) * 60)
            frames.append(_survival_of(rows, of_exps, metric_id, horizon, last_event))
    return pl.concat(
        [pl.DataFrame(schema=SURVIVAL_SCHEMA), *frames], how="vertical_relaxed"
    )


def _minutes(duration: pl.Expr) -> pl.Expr:
    """A duration in whole minutes, rounded up."""
    return (duration.dt.total_microseconds() + 59_999_999) // 60_000_000


def _survival_of(
    rows: pl.DataFrame,
    users: pl.DataFrame,
    metric_id: str,
    horizon: int,
    last_event: dt.datetime | None,
) -> pl.DataFrame:
    start, end = pl.col(START_PREFIX + metric_id), pl.col(END_PREFIX + metric_id)
    first_start = pl.col("pos").filter(start.is_not_null()).min()
    times = (
        rows.filter(start.is_not_null() | end.is_not_null())
        .with_row_index("pos")
        .group_by("uk", maintain_order=True)
        .agg(
            start.drop_nulls().first().alias("start"),
            end.filter(pl.col("pos") > first_start).drop_nulls().first().alias("end"),
        )
        .filter(pl.col("start").is_not_null())
        .join(
            users.select(
                "uk", "experiment_id", "variant", "conflict_day", "window_end"
            ),
            on="uk",
        )
    )
    final = pl.col("window_end")
    if last_event is not None:
        final = pl.min_horizontal(final, pl.lit(last_event))
    s, conflict = pl.col("start"), pl.col("conflict_day")
    reach = s + pl.duration(minutes=horizon)
    resolved_day = pl.col("end").dt.date()
    horizon_day = pl.when(final >= reach).then((reach - MICROSECOND).dt.date())
    last_day = (final - MICROSECOND).dt.date()
    stop = pl.min_horizontal(resolved_day, horizon_day, last_day, conflict)
    timed = times.with_columns(
        s.dt.date().alias("first_day"), stop.alias("stop"), final.alias("final")
    ).filter(conflict.is_null() | (pl.col("first_day") < conflict))
    # The days a user's state can change: each day to the first of (resolved,
    # horizon reached, last day, excluded), then the day resolved or excluded.
    days = pl.concat(
        [
            timed.with_columns(pl.date_ranges("first_day", "stop").alias("day")),
            timed.with_columns(pl.concat_list(resolved_day, conflict).alias("day")),
        ]
    ).explode("day")
    days = days.filter(
        pl.col("day").is_not_null() & (pl.col("day") <= pl.col("final").dt.date())
    ).unique(["uk", "day"])
    as_of_moment = pl.min_horizontal(
        pl.col("day").cast(pl.Datetime("us", "UTC")) + pl.duration(days=1), "final"
    )
    done = pl.col("end").is_not_null() & (pl.col("day") >= resolved_day)
    taken = _minutes(pl.col("end") - s)
    states = days.sort("uk", "day").select(
        "uk",
        "experiment_id",
        "variant",
        "day",
        pl.when(done)
        .then(pl.min_horizontal(taken, horizon))
        .otherwise(pl.min_horizontal(_minutes(as_of_moment - s), horizon))
        .alias("minutes"),
        pl.when(conflict.is_not_null() & (pl.col("day") >= conflict))
        .then(GONE)
        .when(done & (taken <= horizon))
        .then(RESOLVED)
        .when(done)
        .then(LATE)
        .otherwise(OPEN)
        .cast(pl.Int8)
        .alias("kind"),
    )
    same_user = pl.col("uk") == pl.col("uk").shift(1)
    keys = ["experiment_id", "variant", "day", "minutes", "kind"]
    entering = states.filter(pl.col("kind") != GONE).select(
        *keys, pl.lit(1).alias("users")
    )
    leaving = (
        states.with_columns(
            pl.col("minutes").shift(1).alias("prev_minutes"),
            pl.col("kind").shift(1).alias("prev_kind"),
            same_user.alias("same"),
        )
        .filter(pl.col("same") & (pl.col("prev_kind") != GONE))
        .select(
            "experiment_id",
            "variant",
            "day",
            pl.col("prev_minutes").alias("minutes"),
            pl.col("prev_kind").alias("kind"),
            pl.lit(-1).alias("users"),
        )
    )
    return (
        pl.concat([entering, leaving], how="vertical_relaxed")
        .group_by(keys)
        .agg(pl.col("users").sum())
        .filter(pl.col("users") != 0)
        .select(
            "experiment_id",
            pl.lit(metric_id).alias("metric"),
            "variant",
            "day",
            pl.col("minutes").cast(pl.Int64),
            pl.col("kind").cast(pl.Int8),
            pl.col("users").cast(pl.Int64),
        )
        .sort("experiment_id", "variant", "day", "minutes", "kind")
    )
