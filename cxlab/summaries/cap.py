"""Stage 2b, capped means: each user's value capped at the pooled percentile of the day.

A mean metric with ``cap: {percentile: p}`` (CONTRACT §2) caps each user's value
x at c_D, the p-th percentile (linear interpolation, numpy's default) of the
values of all the experiment's analysed users at the end of day D, pooled over
its arms, before any test: winsorization, as in Kohavi, Tang & Xu (2020),
Trustworthy Online Controlled Experiments, ch. 22 (capping outliers).

The cap belongs to the day: a user's capped contribution min(x, c_D) changes
whenever c_D does, not only when their own value does, so it is not a running
change of the user's rows. It is found on every day something happens to the
experiment (a counted row, an entry, a conflict; on other days nothing moves),
over every user who has entered by then, and each user's contribution on each of
those days is taken less the same on their previous one. The changes then sum per
(variant, day) like every other metric's, and per segment at the same pooled cap,
so any day's sums are those of a scan cut at that day (:func:`cxlab.summaries.at_day`
stays exact) and each ``--history`` day uses its own day's cap. The cost is one
row per (user, day with data) for the capped metrics only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from cxlab.config import MetricDef

CAP = "cap"
_DAY = "day"
CAP_SCHEMA = {
    "experiment_id": pl.String,
    "metric": pl.String,
    _DAY: pl.Date,
    CAP: pl.Float64,
}


def capped_changes(
    metric: MetricDef,
    column: str,
    contributions: Mapping[str, pl.Expr],
    days: pl.DataFrame,
    users: pl.DataFrame,
    seg_cols: Sequence[str],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A capped mean's changes per user and day, and its cap per experiment and day.

    Args:
        metric: the metric; its ``cap`` is the percentile.
        column: its component's column (the user's value at the end of a day).
        contributions: summary column → a user's contribution, from ``column``.
        days: per (``uk``, ``day``) with a counted row: the components' values.
        users: the analysed assignments of the metric's experiments (``uk``,
            ``experiment_id``, ``arm``, ``exposure_day``, ``conflict_day``, the
            segments and CUPED covariates).
        seg_cols: the segment columns.

    Returns:
        Per user and day of their experiment's from their entry on: ``arm``,
        ``day``, the segments and the changes of ``contributions``; and per
        (``experiment_id``, ``metric``, ``day``) the ``cap`` from that day on.
    """
    assert metric.cap is not None
    exp_days = pl.concat(
        [
            days.select("uk", _DAY)
            .join(users.select("uk", "experiment_id"), on="uk")
            .select("experiment_id", _DAY),
            users.select("experiment_id", pl.col("exposure_day").alias(_DAY)),
            users.select("experiment_id", pl.col("conflict_day").alias(_DAY)),
        ]
    ).unique()
    grid = (
        users.join(exp_days.drop_nulls(), on="experiment_id")
        .filter(pl.col(_DAY) >= pl.col("exposure_day"))
        .sort(_DAY)
    )
    valued = grid.join_asof(
        days.select("uk", _DAY, column).sort(_DAY),
        on=_DAY,
        by="uk",
        check_sortedness=False,  # both sides sorted by day above
    ).sort("uk", _DAY)
    conflict = pl.col("conflict_day")
    active = conflict.is_null() | (pl.col(_DAY) < conflict)
    x = pl.col(column).fill_null(0.0)
    cap = x.filter(active).quantile(metric.cap, "linear").over("experiment_id", _DAY)
    capped = valued.with_columns(cap.alias(CAP)).with_columns(
        pl.min_horizontal(x, pl.col(CAP)).alias(column)
    )
    same_user = pl.col("uk") == pl.col("uk").shift(1)
    now = {k: pl.when(active).then(e).otherwise(0.0) for k, e in contributions.items()}
    changes = (
        capped.lazy()
        .select("uk", "arm", _DAY, *seg_cols, **now)
        .select(
            "arm",
            _DAY,
            *seg_cols,
            *[
                (
                    pl.col(k)
                    - pl.when(same_user).then(pl.col(k).shift(1)).otherwise(0.0)
                ).alias(k)
                for k in now
            ],
        )
        .collect()
    )
    caps = (
        capped.select("experiment_id", pl.lit(metric.id).alias("metric"), _DAY, CAP)
        .unique()
        .sort("experiment_id", _DAY)
    )
    return changes, caps
