"""Stage 2c, the novelty check's sums: each metric by days since the first exposure.

A user's events are split by their age, the time since the user's first exposure,
into :data:`BUCKETS`: day 1 is hours [0, 24), days 2–7 hours [24, 168), days 8–14
hours [168, 336), day 15+ hours [336, ∞). The unit of the reduction is the pair
(user, bucket): its components are taken over the bucket's events only, at the end
of each day (:func:`cxlab.summaries.users.user_days` keys the running values by
``uk · N + bucket``), and its contribution less the same on its previous day is
summed per (variant, bucket, day), exactly like the whole-period sums
(:mod:`.reduce`). So the table is daily changes, any earlier as-of day is a sum of
them (:func:`cxlab.summaries.at_day`), and no second scan is needed.

Who counts in a bucket (``n`` of the exposed-population types): every analysed
user who has reached it by the end of the day, i.e. whose first exposure plus the
bucket's start is before the day ends; they enter on that day, and a user who meets
a second variant leaves every bucket on that day, as in the whole-period table. A
user still inside a bucket counts with the events so far, the convention of the
whole-period metric (which also counts users exposed an hour ago); both arms mature
alike, so the comparison stays fair. A metric's ``window_days`` still bounds its
events; a bucket starting at or after the window's end has no events and is not
kept. Capped means (their cap is pooled per day over the whole period) and the
detail types (categorical, time to event) are not split.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import polars as pl

from cxlab.config import Catalog, Experiment, MetricDef
from cxlab.metrics import RESPONDERS, metric_type

# (label, first hour, end hour or None): the exposure-age buckets, oldest last.
BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("day 1", 0, 24),
    ("days 2–7", 24, 168),
    ("days 8–14", 168, 336),
    ("day 15+", 336, None),
)
BUCKET = "bucket"  # the bucket's index in BUCKETS
HOUR_US = 3_600_000_000
NOVELTY_SUMS = ["sum_x", "sum_xx", "sum_y", "sum_yy", "sum_xy"]
NOVELTY_SCHEMA = {
    "experiment_id": pl.String,
    "metric": pl.String,
    "variant": pl.String,
    BUCKET: pl.Int64,
    "day": pl.Date,
    "users": pl.Int64,
    RESPONDERS: pl.Float64,
    **dict.fromkeys(NOVELTY_SUMS, pl.Float64),
}


def splits(metric: MetricDef) -> bool:
    """Whether the metric is split by exposure age (not capped, no detail table)."""
    kind = metric_type(metric)
    return metric.cap is None and kind.detail is None


def kept_buckets(metric: MetricDef) -> list[int]:
    """The buckets a metric has events in: those starting before its window ends."""
    if metric.window_days is None:
        return list(range(len(BUCKETS)))
    end = metric.window_days * 24
    return [b for b, (_, start, _) in enumerate(BUCKETS) if start < end]


def row_bucket() -> pl.Expr:
    """Per counted row: its bucket, from ``timestamp`` − ``first_exposure``."""
    age = pl.col("timestamp") - pl.col("first_exposure")
    starts = [start for _, start, _ in BUCKETS[1:]]
    return pl.sum_horizontal(
        (age >= pl.duration(hours=h)).cast(pl.UInt8) for h in starts
    ).alias(BUCKET)


def bucket_flow(users: pl.DataFrame) -> pl.DataFrame:
    """Users entering and leaving each (arm, bucket, day).

    A user enters bucket b on the day their first exposure plus the bucket's
    start falls in, unless they met a second variant before that day; they leave
    every bucket they entered on their conflict day.

    Args:
        users: the analysed assignments (``arm``, ``first_exposure``,
            ``conflict_day``).

    Returns:
        Per ``arm``, ``bucket``, ``day``: ``users``, the net change.
    """
    conflict = pl.col("conflict_day")
    # A bucket starts a whole number of hours after the exposure, so the hour of
    # the first exposure decides the day each bucket is reached: the users who
    # never met a second variant are counted per (arm, hour), the few who did
    # one by one.
    exposed = users.lazy().select(
        "arm",
        (pl.col("first_exposure").dt.epoch("us") // HOUR_US).alias("hour"),
        conflict,
    )
    exposed = pl.concat(
        [
            exposed.filter(conflict.is_null())
            .group_by("arm", "hour")
            .agg(pl.len().cast(pl.Int64).alias("users"), conflict.first()),
            exposed.filter(conflict.is_not_null()).with_columns(
                pl.lit(1, pl.Int64).alias("users")
            ),
        ],
        how="diagonal",
    ).collect()
    frames = []
    for b, (_, start, _) in enumerate(BUCKETS):
        # the UTC day the bucket is reached: (hour + start) // 24 days since 1970
        entry = (pl.col("hour") + start) // 24
        reached = (
            exposed.lazy()
            .select(
                "arm",
                entry.cast(pl.Int32).cast(pl.Date).alias("day"),
                conflict,
                "users",
            )
            .filter(conflict.is_null() | (pl.col("day") <= conflict))
        )
        frames += [
            reached.select("arm", pl.lit(b).alias(BUCKET), "day", "users"),
            reached.filter(conflict.is_not_null()).select(
                "arm",
                pl.lit(b).alias(BUCKET),
                conflict.alias("day"),
                -pl.col("users"),
            ),
        ]
    return (
        pl.concat(frames, how="vertical_relaxed")
        .group_by("arm", BUCKET, "day")
        .agg(pl.col("users").sum())
        .collect()
    )


def novelty_table(
    sums: pl.DataFrame,
    flow: pl.DataFrame,
    metric_users: Mapping[str, Sequence[str]],
    catalog: Catalog,
) -> pl.DataFrame:
    """Per (experiment, metric, variant, bucket, day): the daily changes.

    Args:
        sums: per ``experiment_id``, ``variant``, ``bucket``, ``day`` the summed
            changes as wide "<metric>|<sum>" columns.
        flow: the same keys with ``users``, the users entering less leaving.
        metric_users: metric id → its experiments (the metrics split here).
        catalog: the metric catalog.

    Returns:
        The long table (:data:`NOVELTY_SCHEMA`); a metric's buckets past its
        window are left out.
    """
    keys = ["experiment_id", "variant", BUCKET, "day"]
    joined = flow.join(sums, on=keys, how="full", coalesce=True)
    frames = [pl.DataFrame(schema=NOVELTY_SCHEMA)]
    for metric_id, exp_ids in metric_users.items():
        columns = [RESPONDERS, *NOVELTY_SUMS]
        frames.append(
            joined.filter(
                pl.col("experiment_id").is_in(exp_ids)
                & pl.col(BUCKET).is_in(kept_buckets(catalog[metric_id]))
            ).select(
                "experiment_id",
                pl.lit(metric_id).alias("metric"),
                "variant",
                BUCKET,
                "day",
                "users",
                *[
                    pl.col(f"{metric_id}|{c}").alias(c)
                    if f"{metric_id}|{c}" in joined.columns
                    else pl.lit(0.0).alias(c)
                    for c in columns
                ],
            )
        )
    return (
        pl.concat(frames, how="vertical_relaxed")
        .with_columns(
            pl.col("users").fill_null(0), pl.col(RESPONDERS, *NOVELTY_SUMS).fill_null(0)
        )
        .sort("experiment_id", "metric", "variant", BUCKET, "day")
    )


def cut_at(
    table: pl.DataFrame, experiments: Sequence[Experiment], as_of: dt.date | None
) -> pl.DataFrame:
    """The changes up to each experiment's analysis window: its end and ``as_of``.

    A user reaching a bucket after the window has closed has no events to count
    there. An open experiment analysed without ``as_of`` keeps the entries after
    the last day of data (at most 15 days' worth): a later as-of day counts them
    (:func:`cxlab.summaries.at_day`), the analysis sums up to its own day.
    """
    last = {
        e.id: min(d for d in (as_of, e.end, dt.date.max) if d is not None)
        for e in experiments
    }
    upto = pl.col("experiment_id").replace_strict(last, return_dtype=pl.Date)
    return table.filter(pl.col("day") <= upto)
