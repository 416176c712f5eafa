"""Stage 2a, per-user values: each assignment's metric components, day by day.

The outcome rows are sorted by (user code, time, log order); each (experiment,
user) assignment then owns slices of them (:func:`cxlab.attribution.locate`): the
rows before its first exposure, the CUPED pre-period and the rows that count. The
counted rows are gathered per assignment, each component's running value is taken
after every row, and the last row of each (user, day) is the user's value at the
end of that day. No row of the log is joined to every experiment of its user.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from cxlab.attribution import (
    DIM_PREFIX,
    USER_CHECK,
    USER_CODE,
    check_sorted_codes,
    locate,
    rows_between,
)
from cxlab.config import Catalog, Experiment
from cxlab.metrics import Component, metric_type
from cxlab.summaries.novelty import BUCKET, BUCKETS, row_bucket
from cxlab.summaries.scan import Handover
from cxlab.summaries.set_aside import (
    BeforeExposure,
    Fates,
    before_exposure,
    outcome_fates,
)
from cxlab.summaries.tables import MISSING, SEGMENT_PREFIX

SLICE_COLUMNS = ("seg_lo", "seg_hi", "pre_lo", "lo", "hi")
RAW = "raw:"  # a component's own row value, beside its running value
AGE = "age:"  # a component over the rows of the row's exposure-age bucket


@dataclass(frozen=True)
class Users:
    """The analysed assignments and what was counted before their exposure."""

    table: pl.DataFrame  # per assignment (row ``uk``): arm, days, segments, pre x
    before: BeforeExposure  # the outcome rows before a first exposure
    pre_columns: dict[str, dict[str, str]]  # metric id → covariate → its column
    fates: Fates | None  # every outcome row's fate (the ledger), when asked
    detail_rows: pl.DataFrame  # uk, day and the detail columns, rows with any


def user_days(
    assignments: pl.DataFrame,
    outcomes: Handover,
    arms: pl.DataFrame,
    experiments: Sequence[Experiment],
    catalog: Catalog,
    metric_users: Mapping[str, Sequence[str]],
    components: Sequence[Component],
    dims: Sequence[str],
    *,
    by_age: Sequence[Component] = (),
    ledger: bool = False,
) -> tuple[Users, pl.DataFrame, pl.DataFrame | None]:
    """The users, and per (user, day) their components at the end of the day.

    Args:
        assignments: one row per (experiment, user), ``uk`` = its row index.
        outcomes: the outcome rows, taken here and freed once counted.
        arms: (experiment_id, variant) → ``arm`` number.
        experiments: the experiments.
        catalog: the metric catalog.
        metric_users: metric id → ids of the experiments that analyse it.
        components: every per-user aggregate the metrics need.
        dims: dimension names.
        by_age: the components also taken per exposure-age bucket (the
            novelty check's, :mod:`cxlab.summaries.novelty`).
        ledger: also judge every outcome row (used, or why not).

    Returns:
        The users; one row per (``uk``, ``day``) with a counted row: the
        components' values, the user's arm, conflict day, segments and CUPED
        pre-period values; and with ``by_age``, one row per (user, bucket, day)
        with a counted row of that bucket: ``uk`` = user · N + bucket,
        ``bucket``, ``day``, the ``by_age`` components over the bucket's rows,
        ``arm`` and ``conflict_day`` (None without ``by_age``).
    """
    rows = _sorted_by_user(outcomes.take())
    located = locate(_with_arms(assignments, arms, dims), rows)
    users = located.drop(*SLICE_COLUMNS)
    windowed = any(c.window_days is not None for c in components)
    first_exposure = users["first_exposure"] if windowed or by_age else None
    pre_columns = _cuped_columns(experiments, catalog, metric_users)
    pre = _pre_period(rows, located, first_exposure, catalog, pre_columns)
    before = before_exposure(located, rows)
    fates = outcome_fates(located, rows, experiments, catalog) if ledger else None
    day = pl.col("timestamp").dt.date().alias("day")
    detail = {
        name: expr.alias(name)
        for m in metric_users
        for name, expr in metric_type(catalog[m]).row_columns(catalog[m]).items()
    }
    row_values = [day, *[c.row_value() for c in components], *detail.values()]
    if by_age:
        row_values.append(row_bucket())
    counted = _counted_rows(rows, located, first_exposure, "lo", "hi", row_values)
    del rows, located  # the sorted outcome rows are no longer needed
    detail_rows = counted.select("uk", "day", *detail).filter(
        pl.any_horizontal(pl.col(list(detail)).is_not_null()) if detail else False
    )
    seg_cols = [SEGMENT_PREFIX + d for d in dims]
    days, ages = _end_of_day(
        counted, users, components, ["arm", "conflict_day", *seg_cols], by_age
    )
    del counted
    if pre is not None:
        days = days.join(pre, on="uk", how="left", maintain_order="left")
        users = users.join(pre, on="uk", how="left", maintain_order="left")
    return Users(users, before, pre_columns, fates, detail_rows), days, ages


def _sorted_by_user(outcomes: pl.DataFrame) -> pl.DataFrame:
    """By (user code, time, log order); a user code shared by two ids raises.

    Two stable sorts, each rebinding the name so the previous order is freed
    (two copies at most, not three).
    """
    outcomes = outcomes.sort("timestamp", maintain_order=True)
    outcomes = outcomes.sort(USER_CODE, maintain_order=True)
    check_sorted_codes(outcomes)
    return outcomes


def _with_arms(
    assignments: pl.DataFrame, arms: pl.DataFrame, dims: Sequence[str]
) -> pl.DataFrame:
    """Integer keys for the group-bys: the arm, each segment as a categorical."""
    arm_of = assignments.select("experiment_id", "variant").join(
        arms, on=["experiment_id", "variant"], how="left", maintain_order="left"
    )
    return assignments.with_columns(
        arm_of["arm"],
        *(
            pl.col(DIM_PREFIX + d)
            .cast(pl.String)
            .fill_null(MISSING)
            .cast(pl.Categorical)
            .alias(SEGMENT_PREFIX + d)
            for d in dims
        ),
    )


def _cuped_columns(
    experiments: Sequence[Experiment],
    catalog: Catalog,
    metric_users: Mapping[str, Sequence[str]],
) -> dict[str, dict[str, str]]:
    """Metric id → covariate → its column, for metrics CUPED applies to somewhere."""
    cuped_ids = {e.id for e in experiments if e.cuped_days > 0}
    out = {}
    for m, exp_ids in metric_users.items():
        kind = metric_type(catalog[m])
        if kind.cuped and cuped_ids & set(exp_ids):
            values = [pl.col(c.name) for c in kind.components(catalog[m])]
            out[m] = {name: f"pre_{m}:{name}" for name in kind.pre_values(values)}
    return out


def _counted_rows(
    outcomes: pl.DataFrame,
    of: pl.DataFrame,
    first_exposure: pl.Series | None,
    start: str,
    end: str,
    exprs: Sequence[pl.Expr],
) -> pl.DataFrame:
    """``uk`` and ``exprs`` per outcome row in [start, end) of each assignment.

    Rows are ordered by (uk, time); the gathered columns are dropped here. The
    users' ``first_exposure`` (by ``uk``) is attached when a metric has a window.
    """
    pairs = rows_between(of, start, end)
    columns = [c for c in outcomes.columns if c not in (USER_CODE, USER_CHECK)]
    gathered = outcomes.select(pl.col(columns).gather(pairs["pos"]))
    if first_exposure is not None:
        gathered = gathered.with_columns(first_exposure.gather(pairs["uk"]))
    return gathered.with_columns(pairs["uk"]).lazy().select("uk", *exprs).collect()


def _pre_period(
    outcomes: pl.DataFrame,
    located: pl.DataFrame,
    first_exposure: pl.Series | None,
    catalog: Catalog,
    pre_columns: Mapping[str, Mapping[str, str]],
) -> pl.DataFrame | None:
    """Per user with a pre-period: each CUPED metric's covariates before exposure.

    The covariates are the type's :meth:`~cxlab.metrics.MetricKind.pre_values`
    over the pre-period: the metric's own per-user value, as in Deng, Xu,
    Kohavi & Walker (2013), CUPED (WSDM 2013, DOI:10.1145/2433396.2433413).
    """
    if not pre_columns:
        return None
    metrics = [catalog[m] for m in pre_columns]
    pre_components = list(
        dict.fromkeys(c for m in metrics for c in metric_type(m).components(m))
    )
    per_user = (
        _counted_rows(
            outcomes,
            located.filter(pl.col("cuped_days") > 0),
            first_exposure,
            "pre_lo",
            "lo",
            [c.row_value() for c in pre_components],
        )
        .group_by("uk")
        .agg(*[c.group_agg() for c in pre_components])
    )
    values = [
        value.alias(columns[name])
        for m, columns in zip(metrics, pre_columns.values(), strict=True)
        for name, value in metric_type(m)
        .pre_values([pl.col(c.name) for c in metric_type(m).components(m)])
        .items()
    ]
    return per_user.select("uk", *values)


def _end_of_day(
    counted: pl.DataFrame,
    users: pl.DataFrame,
    components: Sequence[Component],
    user_columns: Sequence[str],
    by_age: Sequence[Component],
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The components after each user's last counted row of each day.

    Rows are sorted by (uk, time); the user's own columns are attached by ``uk``.
    With ``by_age``, in the same pass, those components over each exposure-age
    bucket's rows after its last row of each day: a user's rows are in time
    order, so their buckets are consecutive runs, each (user, bucket) a unit of
    its own keyed by ``uk · N + bucket``.
    """
    day_ends = _differs(pl.col("uk")) | _differs(pl.col("day"))
    running = [c.cumulative() for c in components]
    if not by_age:
        days = counted.lazy().select("uk", "day", *running).filter(day_ends).collect()
        return with_user(days, users, user_columns, "uk"), None
    unit = pl.col("uk") * len(BUCKETS) + pl.col(BUCKET)
    ends = (
        counted.lazy()
        .select(
            "uk",
            "day",
            BUCKET,
            *[pl.col(c.name).alias(RAW + c.name) for c in by_age],
            *running,
            day_ends.alias("day_end"),
        )
        .with_columns(
            c.cumulative_since(unit, pl.col(c.name), pl.col(RAW + c.name)).alias(
                AGE + c.name
            )
            for c in by_age
        )
        .filter(pl.col("day_end") | _differs(pl.col(BUCKET)))
        .drop(RAW + c.name for c in by_age)
        .collect()
    )
    days = ends.filter("day_end").select("uk", "day", *[c.name for c in components])
    ages = ends.select(
        unit.alias("unit"),
        "uk",
        "day",
        pl.col(BUCKET).cast(pl.Int64),
        *[pl.col(AGE + c.name).alias(c.name) for c in by_age],
    )
    del ends
    ages = with_user(ages, users, ["arm", "conflict_day"], "uk")
    return with_user(days, users, user_columns, "uk"), ages.drop("uk").rename(
        {"unit": "uk"}
    )


def _differs(key: pl.Expr) -> pl.Expr:
    """Whether the next row's key differs (true on the last row)."""
    return (key != key.shift(-1)).fill_null(True)


def with_user(
    rows: pl.DataFrame, users: pl.DataFrame, columns: Sequence[str], key: str
) -> pl.DataFrame:
    """``rows`` with the users' ``columns`` attached by their row number ``key``.

    A gather, in the rows' order: cheaper than a join or a filter over every
    assignment when the rows are few.
    """
    return rows.hstack(list(users.select(pl.col(columns).gather(rows[key]))))
