"""From an event log to per-variant sufficient statistics: the only code touching rows.

One lazy plan per log (collected once with ``pl.collect_all``) reduces the events to:

* ``daily``: for every experiment, metric, variant and day from the start to the
  as-of day, the *cumulative* sufficient statistics as they stood at the end of that
  day: n, Σx, Σx², Σy, Σy², Σxy and the CUPED sums Σx₀, Σx₀², Σxx₀;
* ``by_dimension``: the same at the as-of day, per dimension value;
* ``exposures``: new analysed users per experiment, variant and day;
* counts of everything set aside, by reason, and the log's own health figures.

How the daily cumulative statistics come from one group-by: per (experiment, user,
day) the plan aggregates each metric's events; a cumulative sum per user gives the
user's metric value x(d) at the end of every day on which it changed; the changes
x(d) − x(d′) and x(d)² − x(d′)² (d′ the user's previous such day) summed per
(variant, day) and cumulated over days give Σx and Σx² as of every day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from cxlab.attribution import (
    DIM_PREFIX,
    KEYS,
    analysis_cutoff,
    attribute_exposures,
    experiment_windows,
    exposure_rows,
)
from cxlab.config import Catalog, EventSpec, Experiment, Filter, MetricDef
from cxlab.errors import EventLogError
from cxlab.events import (
    EXPOSURE,
    EventSource,
    raise_for_violations,
    rule_counts_exprs,
    scan_events,
    offending_rows,
    format_rows,
    FILE_COL,
)

SUM_COLUMNS = (
    "sum_x",
    "sum_xx",
    "sum_y",
    "sum_yy",
    "sum_xy",
    "pre_x",
    "pre_xx",
    "pre_xy",
)
STAT_COLUMNS = ("n", *SUM_COLUMNS)
NPS_PROMOTER_MIN = 9
NPS_PASSIVE_MIN = 7


@dataclass(frozen=True, slots=True)
class LogHealth:
    """What the whole log looks like (the data-health report)."""

    rows: int
    users: int
    first_event: dt.datetime | None
    last_event: dt.datetime | None
    events_by_type: pl.DataFrame
    exposures_by_variant: pl.DataFrame
    set_aside: dict[str, int]


@dataclass(frozen=True, slots=True)
class ExperimentHealth:
    """Per experiment: exposure bookkeeping and what was set aside."""

    exposure_rows: int
    exposures_outside_window: int
    exposed_users: int
    multiple_exposures: int
    pre_exposure_events: int


@dataclass(frozen=True)
class Summaries:
    """Small tables that every statistic, chart and page works from."""

    daily: pl.DataFrame
    by_dimension: pl.DataFrame
    exposures: pl.DataFrame
    health: dict[str, ExperimentHealth]
    as_of: dict[str, dt.date]
    log: LogHealth
    fingerprint: tuple = field(default=())


# --- per-user metric values ------------------------------------------------------


def _filter_expr(conditions: Filter) -> pl.Expr:
    expr = pl.lit(True)
    for column, value in conditions:
        if isinstance(value, bool):
            expr &= (
                pl.col(column).cast(pl.String).str.to_lowercase() == str(value).lower()
            )
        elif isinstance(value, int | float):
            expr &= pl.col(column).cast(pl.Float64, strict=False) == float(value)
        else:
            expr &= pl.col(column).cast(pl.String) == value
    return expr


@dataclass(frozen=True, slots=True)
class _Component:
    """One per-user aggregate of events: (event, filter, window, aggregate)."""

    event: str
    filter: Filter
    window_days: int | None
    aggregate: str  # count | sum | max | last

    @property
    def name(self) -> str:
        return "c_" + hashlib.sha1(repr(self).encode()).hexdigest()[:12]

    def condition(self) -> pl.Expr:
        cond = (pl.col("event") == self.event) & _filter_expr(self.filter)
        if self.aggregate != "count":
            cond &= pl.col("value").is_not_null()
        if self.window_days is not None:
            limit = pl.col("first_exposure") + pl.duration(days=self.window_days)
            cond &= pl.col("timestamp") < limit
        return cond

    def daily_agg(self) -> pl.Expr:
        cond = self.condition()
        value = pl.col("value").filter(cond)
        expr = {
            "count": cond.sum().cast(pl.Float64),
            "sum": value.sum(),
            "max": value.max(),
            "last": value.sort_by(pl.col("timestamp").filter(cond)).last(),
        }[self.aggregate]
        return expr.alias(self.name)

    def cumulative(self) -> pl.Expr:
        """The user's value as of each row (rows sorted by user and day)."""
        col = pl.col(self.name)
        by_user = KEYS
        if self.aggregate in ("count", "sum"):
            return col.fill_null(0).cum_sum().over(by_user)
        if self.aggregate == "max":
            return col.cum_max().over(by_user).forward_fill().over(by_user)
        return col.forward_fill().over(by_user)


def _side(
    metric: MetricDef, spec: EventSpec | None = None, aggregate: str | None = None
) -> _Component:
    event = spec.event if spec else metric.event
    assert event is not None
    conditions = tuple(sorted({*metric.filter, *(spec.filter if spec else ())}))
    agg = aggregate or (spec.aggregate if spec else metric.aggregate)
    return _Component(event, conditions, metric.window_days, agg)


def metric_components(metric: MetricDef) -> tuple[_Component, ...]:
    """The per-user aggregates a metric needs: (x,) or (x, y) for ratios."""
    if metric.type == "ratio":
        return (_side(metric, metric.numerator), _side(metric, metric.denominator))
    if metric.type == "proportion":
        return (_side(metric, aggregate="count"),)
    if metric.type == "nps":
        return (_side(metric, aggregate="last"),)
    return (_side(metric),)


def _user_value(metric: MetricDef) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(x, y, in_population) of a user from the cumulative component columns."""
    comps = metric_components(metric)
    first = pl.col(comps[0].name)
    if metric.type == "proportion":
        return (first.fill_null(0) > 0).cast(pl.Float64), pl.lit(0.0), pl.lit(1.0)
    if metric.type == "ratio":
        return first.fill_null(0.0), pl.col(comps[1].name).fill_null(0.0), pl.lit(1.0)
    if metric.type == "nps":
        score = (
            pl.when(first.is_null())
            .then(0.0)
            .when(first >= NPS_PROMOTER_MIN)
            .then(100.0)
            .when(first >= NPS_PASSIVE_MIN)
            .then(0.0)
            .otherwise(-100.0)
        )
        responded = first.is_not_null()
        return score, pl.lit(0.0), responded.cast(pl.Float64)
    return first.fill_null(0.0), pl.lit(0.0), pl.lit(1.0)


# --- the plan ---------------------------------------------------------------------


def _needed_dimensions(
    experiments: Sequence[Experiment], schema: pl.Schema, label: str
) -> list[str]:
    dims = list(dict.fromkeys(d for e in experiments for d in e.dimensions))
    for d in dims:
        if d not in schema:
            users = [e.id for e in experiments if d in e.dimensions]
            raise EventLogError(
                label,
                f"dimension '{d}' of experiment {', '.join(users)} is not a column of the log",
                column=d,
            )
    return dims


def _metrics_by_experiment(
    experiments: Sequence[Experiment], catalog: Catalog
) -> dict[str, list[str]]:
    """Metric id → ids of the experiments that analyse it."""
    users: dict[str, list[str]] = {}
    for exp in experiments:
        for metric_id, _ in exp.metric_roles:
            users.setdefault(metric_id, []).append(exp.id)
    return users


def _check_filter_columns(
    catalog: Catalog, metric_ids: Sequence[str], schema: pl.Schema, label: str
) -> None:
    for metric_id in metric_ids:
        for comp in metric_components(catalog[metric_id]):
            for column, _ in comp.filter:
                if column not in schema:
                    raise EventLogError(
                        label,
                        f"metric '{metric_id}' filters on '{column}', which is not a column of the log",
                        column=column,
                    )


def summarize(
    source: EventSource,
    experiments: Sequence[Experiment],
    catalog: Catalog,
    *,
    as_of: dt.date | None = None,
) -> Summaries:
    """Reduce a log to the summaries of a set of experiments in one lazy plan.

    Args:
        source: the event log's files.
        experiments: experiments to analyse (sharing one ``columns`` mapping).
        catalog: the metric catalog.
        as_of: analyse the data as it stood at the end of this UTC day.

    Returns:
        The summaries (see module docstring).

    Raises:
        EventLogError: bad input, naming the file, the column and the first rows.
    """
    columns = dict(experiments[0].columns) if experiments else {}
    events = scan_events(source, columns)
    schema = events.collect_schema()
    dims = _needed_dimensions(experiments, schema, source.label)
    metric_users = _metrics_by_experiment(experiments, catalog)
    _check_filter_columns(catalog, list(metric_users), schema, source.label)
    if as_of is not None:
        events = events.filter(pl.col("timestamp") < analysis_cutoff_of_day(as_of))

    windows = experiment_windows(experiments, as_of)
    exposures = exposure_rows(events, windows)
    assignments = attribute_exposures(exposures, dims)

    # Log-level health and rule counts.
    log_stats = events.select(
        pl.len().alias("rows"),
        pl.col("user_id").n_unique().alias("users"),
        pl.col("timestamp").min().alias("first_event"),
        pl.col("timestamp").max().alias("last_event"),
        *rule_counts_exprs(),
        (
            (pl.col("event") == EXPOSURE)
            & ~pl.col("experiment_id").is_in([e.id for e in experiments])
        )
        .sum()
        .alias("exposure_rows_of_other_experiments"),
    )
    events_by_type = (
        events.group_by("event")
        .agg(pl.len().alias("rows"), pl.col("user_id").n_unique().alias("users"))
        .sort("rows", descending=True)
    )
    exposures_by_variant = (
        exposures.group_by("experiment_id", "variant")
        .agg(
            pl.len().alias("exposure_rows"),
            pl.col("in_window").sum().alias("in_window_rows"),
            pl.col("user_id").filter(pl.col("in_window")).n_unique().alias("users"),
        )
        .sort("experiment_id", "variant")
    )

    # Outcome events of every analysed user: one join of the needed events.
    needed_events = sorted(
        {c.event for m in metric_users for c in metric_components(catalog[m])}
        - {EXPOSURE}
    )
    dim_cols = [DIM_PREFIX + d for d in dims]
    user_cols = [
        *KEYS,
        "variant",
        "first_exposure",
        "window_end",
        "cuped_days",
        "conflict_day",
        *dim_cols,
    ]
    outcomes = (
        events.filter(pl.col("event").is_in(needed_events))
        .select(
            "timestamp",
            "user_id",
            "event",
            "value",
            *{
                c
                for m in metric_users
                for comp in metric_components(catalog[m])
                for c, _ in comp.filter
            },
        )
        .join(assignments.select(user_cols), on="user_id", how="inner")
    )
    after_start = pl.col("timestamp") >= pl.col("first_exposure")
    before_end = pl.col("timestamp") < pl.col("window_end")
    pre_start = pl.col("first_exposure") - pl.duration(days=pl.col("cuped_days"))

    components = list(
        dict.fromkeys(c for m in metric_users for c in metric_components(catalog[m]))
    )
    per_user_day = (
        outcomes.filter(after_start & before_end)
        .with_columns(pl.col("timestamp").dt.date().alias("day"))
        .group_by([*KEYS, "day"])
        .agg(*[c.daily_agg() for c in components])
    )
    # A conflict day gets a row of its own, so the user's values can be retired then.
    conflict_rows = assignments.filter(pl.col("conflict_day").is_not_null()).select(
        *KEYS,
        pl.col("conflict_day").alias("day"),
        *[pl.lit(None, pl.Float64).alias(c.name) for c in components],
    )
    per_user = assignments.select(
        *[c for c in user_cols if c not in ("user_id", "experiment_id")],
        *KEYS,
        "exposure_day",
    )
    user_days = (
        pl.concat([per_user_day, conflict_rows], how="vertical_relaxed")
        .join(per_user, on=KEYS, how="inner")
        .sort([*KEYS, "day"])
        .with_columns(*[c.cumulative() for c in components])
    )

    cuped_metrics = [
        m
        for m in metric_users
        if catalog[m].type in ("proportion", "mean")
        and any(e.cuped_days > 0 for e in experiments if e.id in metric_users[m])
    ]
    pre_components = list(
        dict.fromkeys(c for m in cuped_metrics for c in metric_components(catalog[m]))
    )
    pre_values = (
        outcomes.filter(
            (pl.col("cuped_days") > 0)
            & (pl.col("timestamp") < pl.col("first_exposure"))
            & (pl.col("timestamp") >= pre_start)
        )
        .group_by(KEYS)
        .agg(*[c.daily_agg() for c in pre_components])
    )
    pre_cols = {m: f"pre_{m}" for m in cuped_metrics}

    def pre_value(metric_id: str) -> pl.Expr:
        comp = metric_components(catalog[metric_id])[0]
        col = pl.col(comp.name).fill_null(0.0)
        if catalog[metric_id].type == "proportion":
            col = (col > 0).cast(pl.Float64)
        return col.alias(pre_cols[metric_id])

    if cuped_metrics:
        pre_per_user = pre_values.select(*KEYS, *[pre_value(m) for m in cuped_metrics])
        user_days = user_days.join(pre_per_user, on=KEYS, how="left")
        users_with_pre = assignments.join(pre_per_user, on=KEYS, how="left")
    else:
        users_with_pre = assignments

    # Per metric: the change of each user's contribution on each of their days.
    active = pl.col("conflict_day").is_null() | (pl.col("day") < pl.col("conflict_day"))
    deltas = []
    for metric_id, exp_ids in metric_users.items():
        metric = catalog[metric_id]
        x, y, pop = _user_value(metric)
        x, y, pop = (pl.when(active).then(e).otherwise(0.0) for e in (x, y, pop))
        pre = (
            pl.col(pre_cols[metric_id]).fill_null(0.0)
            if metric_id in pre_cols
            else pl.lit(0.0)
        )
        frame = (
            user_days.filter(pl.col("experiment_id").is_in(exp_ids))
            .with_columns(x.alias("x"), y.alias("y"), pop.alias("pop"))
            .with_columns(
                (pl.col("x") * pl.col("x")).alias("xx"),
                (pl.col("y") * pl.col("y")).alias("yy"),
                (pl.col("x") * pl.col("y")).alias("xy"),
                (pl.col("x") * pre).alias("xpre"),
            )
        )
        prev = {
            c: pl.col(c).shift(1).over(KEYS).fill_null(0.0)
            for c in ("x", "xx", "y", "yy", "xy", "pop", "xpre")
        }
        deltas.append(
            frame.select(
                "experiment_id",
                "variant",
                "day",
                *dim_cols,
                pl.lit(metric_id).alias("metric"),
                (pl.col("pop") - prev["pop"]).alias("d_pop"),
                (pl.col("x") - prev["x"]).alias("sum_x"),
                (pl.col("xx") - prev["xx"]).alias("sum_xx"),
                (pl.col("y") - prev["y"]).alias("sum_y"),
                (pl.col("yy") - prev["yy"]).alias("sum_yy"),
                (pl.col("xy") - prev["xy"]).alias("sum_xy"),
                (pl.col("xpre") - prev["xpre"]).alias("pre_xy"),
            )
        )
    empty_delta = pl.LazyFrame(
        schema={
            "experiment_id": pl.String,
            "variant": pl.String,
            "day": pl.Date,
            **{DIM_PREFIX + d: schema[d] for d in dims},
            "metric": pl.String,
            "d_pop": pl.Float64,
            "sum_x": pl.Float64,
            "sum_xx": pl.Float64,
            "sum_y": pl.Float64,
            "sum_yy": pl.Float64,
            "sum_xy": pl.Float64,
            "pre_xy": pl.Float64,
        }
    )
    all_deltas = pl.concat(deltas, how="vertical_relaxed") if deltas else empty_delta
    delta_cols = ["d_pop", "sum_x", "sum_xx", "sum_y", "sum_yy", "sum_xy", "pre_xy"]
    daily_deltas = all_deltas.group_by("experiment_id", "metric", "variant", "day").agg(
        pl.col(delta_cols).sum()
    )

    # New and retired users per day, with their pre-period sums.
    joined_day = users_with_pre.select(
        "experiment_id",
        "variant",
        "exposure_day",
        "conflict_day",
        *dim_cols,
        *[pl.col(c).fill_null(0.0) for c in pre_cols.values()],
    )
    entering = joined_day.select(
        "experiment_id",
        "variant",
        pl.col("exposure_day").alias("day"),
        pl.lit(1).alias("d_users"),
        pl.lit(0).alias("d_conflicts"),
        *[pl.col(c) for c in pre_cols.values()],
        *[(pl.col(c) ** 2).alias(f"{c}__sq") for c in pre_cols.values()],
    )
    leaving = joined_day.filter(pl.col("conflict_day").is_not_null()).select(
        "experiment_id",
        "variant",
        pl.col("conflict_day").alias("day"),
        pl.lit(-1).alias("d_users"),
        pl.lit(1).alias("d_conflicts"),
        *[-pl.col(c) for c in pre_cols.values()],
        *[-(pl.col(c) ** 2).alias(f"{c}__sq") for c in pre_cols.values()],
    )
    pre_sum_cols = [*pre_cols.values(), *[f"{c}__sq" for c in pre_cols.values()]]
    user_flow = (
        pl.concat([entering, leaving], how="vertical_relaxed")
        .group_by("experiment_id", "variant", "day")
        .agg(pl.col(["d_users", "d_conflicts", *pre_sum_cols]).sum())
    )

    # Per dimension value, as of the last day (the deltas telescope to final values).
    dim_frames = []
    for d in dims:
        exp_ids = [e.id for e in experiments if d in e.dimensions]
        sums = (
            all_deltas.filter(pl.col("experiment_id").is_in(exp_ids))
            .group_by(
                "experiment_id",
                "metric",
                "variant",
                pl.col(DIM_PREFIX + d).cast(pl.String).alias("segment"),
            )
            .agg(pl.col(delta_cols).sum())
        )
        counts = (
            joined_day.filter(
                pl.col("experiment_id").is_in(exp_ids)
                & pl.col("conflict_day").is_null()
            )
            .group_by(
                "experiment_id",
                "variant",
                pl.col(DIM_PREFIX + d).cast(pl.String).alias("segment"),
            )
            .agg(pl.len().alias("users"))
        )
        dim_frames.append((d, sums, counts))

    # Set-aside bookkeeping per experiment.
    exposure_health = exposures.group_by("experiment_id").agg(
        pl.len().alias("exposure_rows"),
        (~pl.col("in_window")).sum().alias("exposures_outside_window"),
    )
    user_health = assignments.group_by("experiment_id").agg(
        pl.len().alias("exposed_users"),
        pl.col("conflict_at").is_not_null().sum().alias("multiple_exposures"),
    )
    pre_events = (
        outcomes.filter(~after_start & pl.col("conflict_day").is_null())
        .group_by("experiment_id")
        .agg(pl.len().alias("pre_exposure_events"))
    )

    never_exposed = events.join(
        assignments.select("user_id").unique(), on="user_id", how="anti"
    ).select(pl.len().alias("rows"), pl.col("user_id").n_unique().alias("users"))
    plans = [
        never_exposed,
        log_stats,
        events_by_type,
        exposures_by_variant,
        daily_deltas,
        user_flow,
        exposure_health,
        user_health,
        pre_events,
    ]
    for _, sums, counts in dim_frames:
        plans += [sums, counts]
    try:
        collected = pl.collect_all(plans)
    except pl.exceptions.PolarsError as exc:
        raise EventLogError(source.label, f"cannot read the log: {exc}") from exc
    never_row = collected.pop(0).row(0, named=True)
    log_row = collected[0].row(0, named=True)
    raise_for_violations(events, log_row, source.label)
    if not log_row["rows"]:
        raise EventLogError(source.label, "the event log is empty")
    _check_declared_variants(events, collected[2], experiments, source.label)

    last_day = log_row["last_event"].date() if log_row["last_event"] else None
    as_of_by_exp = {e.id: _as_of_day(e, as_of, last_day) for e in experiments}
    daily = _cumulate(
        collected[3], collected[4], experiments, catalog, as_of_by_exp, pre_cols
    )
    by_dimension = _dimension_table(dim_frames, collected[8:], experiments, catalog)
    health = _health(experiments, collected[5], collected[6], collected[7])
    set_aside = {
        "exposure_rows_of_other_experiments": int(
            log_row["exposure_rows_of_other_experiments"]
        ),
        "exposure_rows_outside_window": sum(
            h.exposures_outside_window for h in health.values()
        ),
        "events_of_users_in_no_analysed_experiment": int(never_row["rows"]),
        "events_before_first_exposure": sum(
            h.pre_exposure_events for h in health.values()
        ),
    }
    log = LogHealth(
        rows=log_row["rows"],
        users=log_row["users"],
        first_event=log_row["first_event"],
        last_event=log_row["last_event"],
        events_by_type=collected[1],
        exposures_by_variant=collected[2],
        set_aside=set_aside,
    )
    exposures_daily = (
        collected[4]
        .select("experiment_id", "variant", "day", "d_users", "d_conflicts")
        .sort("experiment_id", "variant", "day")
    )
    return Summaries(
        daily,
        by_dimension,
        exposures_daily,
        health,
        as_of_by_exp,
        log,
        source.fingerprint,
    )


def analysis_cutoff_of_day(day: dt.date) -> dt.datetime:
    """The first instant after a UTC day."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(
        days=1
    )


def _as_of_day(
    exp: Experiment, as_of: dt.date | None, last_day: dt.date | None
) -> dt.date:
    if as_of is not None:
        return as_of
    if exp.end is not None:
        return exp.end
    return last_day or exp.start


def _check_declared_variants(
    events: pl.LazyFrame,
    by_variant: pl.DataFrame,
    experiments: Sequence[Experiment],
    label: str,
) -> None:
    for exp in experiments:
        seen = by_variant.filter(
            (pl.col("experiment_id") == exp.id) & (pl.col("in_window_rows") > 0)
        )["variant"].to_list()
        unknown = sorted(set(seen) - set(exp.variant_ids))
        if unknown:
            condition = (
                (pl.col("event") == EXPOSURE)
                & (pl.col("experiment_id") == exp.id)
                & pl.col("variant").is_in(unknown)
            )
            rows = offending_rows(
                events, condition, ["variant", "experiment_id", "user_id"]
            )
            files = sorted(set(rows[FILE_COL].to_list())) or [label]
            raise EventLogError(
                ", ".join(files),
                f"variant(s) {', '.join(repr(v) for v in unknown)} of experiment '{exp.id}' are not declared in {exp.source or 'its config'} (declared: {', '.join(exp.variant_ids)})",
                column="variant",
                rows=format_rows(rows),
            )


def _grid(
    experiments: Sequence[Experiment],
    as_of_by_exp: dict[str, dt.date],
    catalog: Catalog,
) -> pl.DataFrame:
    """Every (experiment, metric, variant, day) from the start to the as-of day."""
    frames = []
    for exp in experiments:
        last = as_of_by_exp[exp.id]
        days = (
            pl.date_range(exp.start, last, "1d", eager=True)
            if last >= exp.start
            else pl.Series("day", [], pl.Date)
        )
        frames.append(
            pl.DataFrame({"experiment_id": exp.id})
            .join(
                pl.DataFrame({"metric": [m for m, _ in exp.metric_roles]}), how="cross"
            )
            .join(pl.DataFrame({"variant": list(exp.variant_ids)}), how="cross")
            .join(pl.DataFrame({"day": days}), how="cross")
        )
    schema = {
        "experiment_id": pl.String,
        "metric": pl.String,
        "variant": pl.String,
        "day": pl.Date,
    }
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)


def _cumulate(
    deltas: pl.DataFrame,
    flow: pl.DataFrame,
    experiments: Sequence[Experiment],
    catalog: Catalog,
    as_of_by_exp: dict[str, dt.date],
    pre_cols: dict[str, str],
) -> pl.DataFrame:
    grid = _grid(experiments, as_of_by_exp, catalog)
    keys = ["experiment_id", "metric", "variant", "day"]
    metric_pre = pl.DataFrame(
        {"metric": list(pre_cols), "pre_col": list(pre_cols.values())},
        schema={"metric": pl.String, "pre_col": pl.String},
    )
    # Per-metric pre-period sums, moved from wide to long.
    pre_long = (
        pl.concat(
            [
                flow.select(
                    "experiment_id",
                    "variant",
                    "day",
                    pl.lit(m).alias("metric"),
                    pl.col(c).alias("pre_x"),
                    pl.col(f"{c}__sq").alias("pre_xx"),
                )
                for m, c in pre_cols.items()
            ],
            how="vertical_relaxed",
        )
        if pre_cols
        else pl.DataFrame(
            schema={
                "experiment_id": pl.String,
                "variant": pl.String,
                "day": pl.Date,
                "metric": pl.String,
                "pre_x": pl.Float64,
                "pre_xx": pl.Float64,
            }
        )
    )
    del metric_pre
    types = pl.DataFrame(
        {"metric": list(catalog.ids), "type": [m.type for m in catalog.metrics]}
    )
    table = (
        grid.join(deltas, on=keys, how="left")
        .join(
            flow.select("experiment_id", "variant", "day", "d_users"),
            on=["experiment_id", "variant", "day"],
            how="left",
        )
        .join(pre_long, on=keys, how="left")
        .join(types, on="metric", how="left")
        .with_columns(pl.exclude(keys + ["type"]).fill_null(0))
        .sort(keys)
    )
    cumulated = table.with_columns(
        pl.col(
            "d_pop",
            "d_users",
            "sum_x",
            "sum_xx",
            "sum_y",
            "sum_yy",
            "sum_xy",
            "pre_xy",
            "pre_x",
            "pre_xx",
        )
        .cum_sum()
        .over(["experiment_id", "metric", "variant"])
    )
    # Experiments without CUPED: the pre-period is empty by definition.
    cuped_ids = [e.id for e in experiments if e.cuped_days > 0]
    return cumulated.select(
        *keys,
        pl.when(pl.col("type") == "nps").then(pl.col("d_pop")).otherwise(pl.col("d_users")).round(0).cast(pl.Int64).alias("n"),
        "sum_x", "sum_xx", "sum_y", "sum_yy", "sum_xy",
        *[pl.when(pl.col("experiment_id").is_in(cuped_ids)).then(pl.col(c)).otherwise(0.0).alias(c) for c in ("pre_x", "pre_xx", "pre_xy")],
    )  # fmt: skip


def _dimension_table(
    dim_frames: list,
    collected: list[pl.DataFrame],
    experiments: Sequence[Experiment],
    catalog: Catalog,
) -> pl.DataFrame:
    frames = []
    types = pl.DataFrame(
        {"metric": list(catalog.ids), "type": [m.type for m in catalog.metrics]}
    )
    for i, (dim, _, _) in enumerate(dim_frames):
        sums, counts = collected[2 * i], collected[2 * i + 1]
        exp_ids = [e.id for e in experiments if dim in e.dimensions]
        metrics = pl.DataFrame(
            [
                (e.id, m)
                for e in experiments
                if e.id in exp_ids
                for m, _ in e.metric_roles
            ],
            schema=["experiment_id", "metric"],
            orient="row",
        )
        table = (
            counts.join(metrics, on="experiment_id", how="inner")
            .join(sums, on=["experiment_id", "metric", "variant", "segment"], how="left")
            .join(types, on="metric", how="left")
            .with_columns(pl.col("d_pop", "sum_x", "sum_xx", "sum_y", "sum_yy", "sum_xy").fill_null(0.0))
            .select(
                "experiment_id", "metric", "variant", pl.lit(dim).alias("dimension"), pl.col("segment").fill_null("(missing)"),
                pl.when(pl.col("type") == "nps").then(pl.col("d_pop")).otherwise(pl.col("users")).round(0).cast(pl.Int64).alias("n"),
                "sum_x", "sum_xx", "sum_y", "sum_yy", "sum_xy",
            )
        )  # fmt: skip
        frames.append(table)
    schema = {
        "experiment_id": pl.String,
        "metric": pl.String,
        "variant": pl.String,
        "dimension": pl.String,
        "segment": pl.String,
        "n": pl.Int64,
        **{c: pl.Float64 for c in ("sum_x", "sum_xx", "sum_y", "sum_yy", "sum_xy")},
    }
    return (
        pl.concat(frames, how="vertical_relaxed").sort(
            "experiment_id", "metric", "dimension", "segment", "variant"
        )
        if frames
        else pl.DataFrame(schema=schema)
    )


def _health(
    experiments: Sequence[Experiment],
    exposure_health: pl.DataFrame,
    user_health: pl.DataFrame,
    pre_events: pl.DataFrame,
) -> dict[str, ExperimentHealth]:
    def lookup(frame: pl.DataFrame, exp_id: str, column: str) -> int:
        row = frame.filter(pl.col("experiment_id") == exp_id)
        return int(row[column][0]) if row.height else 0

    return {
        e.id: ExperimentHealth(
            exposure_rows=lookup(exposure_health, e.id, "exposure_rows"),
            exposures_outside_window=lookup(
                exposure_health, e.id, "exposures_outside_window"
            ),
            exposed_users=lookup(user_health, e.id, "exposed_users"),
            multiple_exposures=lookup(user_health, e.id, "multiple_exposures"),
            pre_exposure_events=lookup(pre_events, e.id, "pre_exposure_events"),
        )
        for e in experiments
    }
