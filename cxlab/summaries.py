"""From an event log to per-variant sufficient statistics: the only code touching rows.

Stage 1 collects, in one ``pl.collect_all`` over the scan, the log's rule counts and
figures, the exposure rows of the configured experiments and the outcome rows the
metrics need (projected, events as an enum). Stage 2 works in memory:

* attribution (:mod:`cxlab.attribution`): one row per (experiment, user), and each
  assignment's slice of the outcome rows sorted by (user, time) — no join of every
  outcome row to every experiment of its user;
* per assignment, the user's cumulative metric components after each counted row; the
  last row of each (user, day) is their value at the end of that day;
* per metric, the change of each user's contribution (x, x², y, y², xy, x·x₀) from
  their previous day, summed per (variant, day) in one group-by and cumulated over the
  days: the ``daily`` table, n and the sums as of the end of every day.

Everything that depends on the as-of day (segments, health counts, set-aside counts) is
also kept as daily changes (:class:`ByDay`), so :func:`at_day` can show any earlier day
without rescanning the log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import polars as pl

from cxlab.attribution import (
    DIM_PREFIX,
    USER_CHECK,
    USER_CODE,
    UserCodeCollisionError,
    attribute_exposures,
    check_sorted_codes,
    experiment_windows,
    flag_windows,
    locate,
    rows_between,
    user_codes,
)
from cxlab.config import Catalog, EventSpec, Experiment, Filter, MetricDef
from cxlab.errors import EventLogError
from cxlab.events import (
    EXAMPLE_ROWS,
    EXPOSURE,
    FILE_COL,
    RAW_TS,
    RAW_VALUE,
    EventSource,
    format_rows,
    offending_rows,
    raise_for_violations,
    rule_counts_exprs,
    scan_events,
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
EXAMPLE_COLUMNS = ["timestamp", "user_id", "experiment_id", "variant"]
NPS_PROMOTER_MIN = 9
MISSING = "(missing)"
SEGMENT_PREFIX = "segment:"
PREVIOUS = "previous:"
NPS_PASSIVE_MIN = 7


@dataclass(frozen=True, slots=True)
class LogHealth:
    """What the whole log looks like (the data-health report)."""

    rows: int
    users: int | None  # None when not computed (log_health=False)
    first_event: dt.datetime | None
    last_event: dt.datetime | None
    events_by_type: pl.DataFrame
    exposures_by_variant: pl.DataFrame
    set_aside: dict[str, int]
    set_aside_examples: dict[str, pl.DataFrame] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExperimentHealth:
    """Per experiment: exposure bookkeeping and what was set aside."""

    exposure_rows: int
    exposures_outside_window: int
    exposed_users: int
    multiple_exposures: int
    pre_exposure_events: int


@dataclass(frozen=True)
class ByDay:
    """What depends on the as-of day, kept as daily changes.

    Any earlier day of the analysed range is a sum over these (:func:`at_day`),
    so changing the as-of day needs no rescan.
    """

    dimensions: pl.DataFrame  # experiment, metric, variant, dimension, segment, day
    health: pl.DataFrame  # experiment_id, day: the ExperimentHealth counts' changes
    variants: pl.DataFrame  # experiment_id, variant, day: exposure rows and users
    pre_exposure: pl.DataFrame  # per assignment: uid, exposure/conflict day, before
    assigned_rows: pl.DataFrame | None  # day, rows of users entering an experiment
    keys: pl.DataFrame  # experiment, metric, variant, start: the daily table's rows


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
    by_day: ByDay | None = None


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

    def row_value(self) -> pl.Expr:
        """Per event row: its contribution (1 or the value), or null."""
        contribution = pl.lit(1.0) if self.aggregate == "count" else pl.col("value")
        return pl.when(self.condition()).then(contribution).alias(self.name)

    def group_agg(self) -> pl.Expr:
        """Aggregate the row values of a group (rows sorted by time for ``last``)."""
        col = pl.col(self.name)
        expr = {
            "count": col.sum(),
            "sum": col.sum(),
            "max": col.max(),
            "last": col.drop_nulls().last(),
        }[self.aggregate]
        return expr.alias(self.name)

    def cumulative(self) -> pl.Expr:
        """The user's value as of each row (rows sorted by user key ``uk``, time).

        Counts are a running total less the total before the user's first row
        (exact: whole numbers in float64); ``last`` carries the position of the
        user's latest non-null row forward. Sums and maxima run per user.
        """
        col = pl.col(self.name)
        starts = (pl.col("uk") != pl.col("uk").shift(1)).fill_null(True)
        user = pl.col("uk").rle_id()  # dense ids of the sorted runs: faster windows
        if self.aggregate == "count":
            total = col.fill_null(0).cum_sum()
            before = pl.when(starts).then(total - col.fill_null(0)).forward_fill()
            return (total - before).alias(self.name)
        if self.aggregate == "sum":
            return col.fill_null(0).cum_sum().over(user)
        if self.aggregate == "max":
            return col.cum_max().forward_fill().over(user)
        position = pl.int_range(pl.len(), dtype=pl.Int64)
        user_start = pl.when(starts).then(position).forward_fill()
        latest = pl.when(col.is_not_null()).then(position).forward_fill()
        value = col.gather(latest.fill_null(0))
        return pl.when(latest >= user_start).then(value).alias(self.name)


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


def _user_value(
    metric: MetricDef, prefix: str = ""
) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(x, y, in_population) of a user from the component columns ``prefix+name``."""
    comps = metric_components(metric)
    first = pl.col(prefix + comps[0].name)
    if metric.type == "proportion":
        return (first.fill_null(0) > 0).cast(pl.Float64), pl.lit(0.0), pl.lit(1.0)
    if metric.type == "ratio":
        second = pl.col(prefix + comps[1].name).fill_null(0.0)
        return first.fill_null(0.0), second, pl.lit(1.0)
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
                f"dimension '{d}' of experiment {', '.join(users)} "
                "is not a column of the log",
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
                        f"metric '{metric_id}' filters on '{column}', "
                        "which is not a column of the log",
                        column=column,
                    )


def summarize(
    source: EventSource,
    experiments: Sequence[Experiment],
    catalog: Catalog,
    *,
    as_of: dt.date | None = None,
    log_health: bool = True,
    thorough_timestamps: bool = False,
    exact_user_codes: bool = False,
) -> Summaries:
    """Reduce a log to the summaries of a set of experiments.

    Stage 1 scans the log once (``pl.collect_all`` over plans that share the scan):
    the rule counts and log health, one row per exposed (experiment, user), and the
    projected outcome events the metrics need. Stage 2 works on those in memory.

    Args:
        source: the event log's files.
        experiments: experiments to analyse (sharing one ``columns`` mapping).
        catalog: the metric catalog.
        as_of: analyse the data as it stood at the end of this UTC day.
        log_health: also count users, rows per user and rows per event type over
            the whole log (for the health report; ``analyze`` does without).
        thorough_timestamps: parse text timestamps with every ISO-8601 spelling;
            set automatically (a second pass) when the fast parse leaves rows
            unparsed, so a log mixing formats still works.
        exact_user_codes: number users by a dictionary rather than by hashing;
            set automatically (a second pass) if two ids ever share a hash.

    Returns:
        The summaries (see module docstring).

    Raises:
        EventLogError: bad input, naming the file, the column and the first rows.
    """
    columns = dict(experiments[0].columns) if experiments else {}
    scanned = scan_events(source, columns, thorough_timestamps=thorough_timestamps)
    schema = scanned.collect_schema()
    dims = _needed_dimensions(experiments, schema, source.label)
    metric_users = _metrics_by_experiment(experiments, catalog)
    _check_filter_columns(catalog, list(metric_users), schema, source.label)
    components = list(
        dict.fromkeys(c for m in metric_users for c in metric_components(catalog[m]))
    )
    needed_events = sorted({c.event for c in components} - {EXPOSURE})
    filter_columns = sorted({col for c in components for col, _ in c.filter})
    events = _parsed_once(scanned, source, [*dims, *filter_columns])

    analysed = events
    if as_of is not None:
        analysed = events.filter(pl.col("timestamp") < analysis_cutoff_of_day(as_of))
    ids = [e.id for e in experiments]
    codes = user_codes(exact=exact_user_codes)
    # The outcome events' names as a small enum (a few bytes per row, not text).
    component_events = sorted({c.event for c in components})
    event_code = pl.col("event")
    if component_events:
        event_code = event_code.cast(pl.Enum(component_events))
    plans = [
        _log_stats(events, ids),
        events.group_by("event")
        .agg(pl.len().alias("rows"))
        .sort("rows", descending=True)
        if log_health
        else pl.LazyFrame(schema={"event": pl.String, "rows": pl.UInt32}),
        analysed.filter(
            (pl.col("event") == EXPOSURE) & pl.col("experiment_id").is_in(ids)
        ).select("timestamp", "user_id", "experiment_id", "variant", *dims),
        analysed.filter(pl.col("event").is_in(needed_events)).select(
            "timestamp", *codes, event_code, "value", *filter_columns
        ),  # the user codes stand in for the text ids
        events.group_by("user_id").agg(pl.len().alias("rows"))
        if log_health
        else pl.LazyFrame(schema={"user_id": pl.String, "rows": pl.UInt32}),
        events.filter(
            (pl.col("event") == EXPOSURE) & ~pl.col("experiment_id").is_in(ids)
        )
        .select(EXAMPLE_COLUMNS)
        .head(EXAMPLE_ROWS),
    ]
    try:
        log_row, events_by_type, exposure_log, outcomes, rows_per_user, other = (
            pl.collect_all(plans)
        )
    except pl.exceptions.PolarsError as exc:
        raise EventLogError(source.label, f"cannot read the log: {exc}") from exc
    windows = experiment_windows(experiments, as_of)
    exposures = flag_windows(exposure_log, windows)

    def named(by_index: pl.LazyFrame) -> pl.DataFrame:
        """Group-by results keyed by the experiment's number, named by its id."""
        ids = windows.lazy().select("experiment_index", "experiment_id")
        named = by_index.join(ids, on="experiment_index")
        return named.select(
            "experiment_id", pl.exclude("experiment_id", "experiment_index")
        ).collect()

    exposure_days = named(
        exposures.lazy()
        .group_by(
            "experiment_index", "variant", pl.col("timestamp").dt.date().alias("day")
        )
        .agg(
            pl.len().alias("exposure_rows"),
            pl.col("in_window").sum().alias("in_window_rows"),
        )
    )
    rows_by_variant = exposure_days.group_by("experiment_id", "variant").agg(
        pl.col("exposure_rows", "in_window_rows").sum()
    )
    outside = (
        exposures.filter(~pl.col("in_window"))
        .select(EXAMPLE_COLUMNS)
        .head(EXAMPLE_ROWS)
    )

    def again(**changed: bool) -> Summaries:
        """The same summaries from a second pass with a slower, surer option on."""
        flags = {
            "thorough_timestamps": thorough_timestamps,
            "exact_user_codes": exact_user_codes,
        }
        return summarize(
            source, experiments, catalog, as_of=as_of, log_health=log_health,
            **(flags | changed),
        )  # fmt: skip

    log_row = log_row.row(0, named=True)
    if log_row["timestamp_unparseable"] and not thorough_timestamps:
        # Mixed ISO-8601 spellings: parse again, trying every format per row.
        return again(thorough_timestamps=True)
    raise_for_violations(scanned, log_row, source.label)
    if not log_row["rows"]:
        raise EventLogError(source.label, "the event log is empty")
    _check_declared_variants(scanned, rows_by_variant, experiments, source.label)

    # Stage 2. Big frames are dropped as soon as they are used (peak memory).
    coded = exposures.with_columns(codes)
    del exposure_log, exposures
    try:
        assignments = attribute_exposures(coded, dims).with_row_index("uk")
        # Users per variant by the day they first saw it in the window.
        users_by_day = named(
            coded.lazy()
            .filter(pl.col("in_window"))
            .group_by("experiment_index", "variant", USER_CODE)
            .agg(pl.col("timestamp").min().dt.date().alias("day"))
            .group_by("experiment_index", "variant", "day")
            .agg(pl.len().alias("users"))
        )
        del coded
        # By (user code, time, log order): two stable sorts, each rebinding the
        # name so the previous order is freed (two copies at most, not three).
        outcomes = outcomes.sort("timestamp", maintain_order=True)
        outcomes = outcomes.sort(USER_CODE, maintain_order=True)
        check_sorted_codes(outcomes)
        # Handed over in a box so that _reduce holds the only reference and can
        # free the sorted outcome rows once it has counted them.
        box = [outcomes]
        del outcomes
        args = (experiments, catalog, metric_users, components, dims)
        tables = _reduce(assignments, box, *args)
    except UserCodeCollisionError:  # two ids share both hashes: use exact codes
        return again(exact_user_codes=True)
    variants_daily = (
        exposure_days.join(
            users_by_day,
            on=["experiment_id", "variant", "day"],
            how="full",
            coalesce=True,
        )
        .with_columns(pl.col("exposure_rows", "in_window_rows", "users").fill_null(0))
        .sort("experiment_id", "variant", "day")
    )
    by_variant = _variants_at(variants_daily)
    last_day = log_row["last_event"].date() if log_row["last_event"] else None
    as_of_by_exp = {e.id: _as_of_day(e, as_of, last_day) for e in experiments}
    daily = _cumulate(tables.deltas, tables.flow, experiments, catalog, as_of_by_exp)
    dimension_deltas = _dimension_deltas(tables.dimensions, experiments)
    health_daily = (
        exposure_days.group_by("experiment_id", "day")
        .agg(
            pl.col("exposure_rows").sum(),
            (pl.col("exposure_rows") - pl.col("in_window_rows"))
            .sum()
            .alias("exposures_outside_window"),
        )
        .join(
            tables.people_daily, on=["experiment_id", "day"], how="full", coalesce=True
        )
        .with_columns(pl.exclude("experiment_id", "day").fill_null(0).cast(pl.Int64))
        .sort("experiment_id", "day")
    )
    by_dimension = dimension_table(dimension_deltas, catalog)
    health = _health_at([e.id for e in experiments], health_daily, None)
    # Each user's rows with the day they first entered an analysed experiment.
    user_rows = rows_per_user.join(
        assignments.group_by("user_id").agg(pl.col("exposure_day").min().alias("day")),
        on="user_id",
        how="left",
    )
    not_in_any = user_rows.filter(pl.col("day").is_null()).drop("day")
    assigned_rows = (
        user_rows.filter(pl.col("day").is_not_null())
        .group_by("day")
        .agg(pl.col("rows").sum().cast(pl.Int64))
        .sort("day")
    )
    in_no_experiment = not_in_any["rows"].sum()
    examples = {
        "exposure_rows_of_other_experiments": other,
        "exposure_rows_outside_window": outside,
        "events_of_users_in_no_analysed_experiment": not_in_any.sort("user_id").head(
            EXAMPLE_ROWS
        ),
        "events_before_first_exposure": tables.pre_event_examples,
    }
    set_aside = {
        "exposure_rows_of_other_experiments": int(
            log_row["exposure_rows_of_other_experiments"]
        ),
        "exposure_rows_outside_window": sum(
            h.exposures_outside_window for h in health.values()
        ),
        "events_of_users_in_no_analysed_experiment": int(in_no_experiment or 0),
        "events_before_first_exposure": tables.pre_event_rows,
    }
    if not log_health:  # not counted: say nothing rather than a false zero
        del set_aside["events_of_users_in_no_analysed_experiment"]
        del examples["events_of_users_in_no_analysed_experiment"]
    log = LogHealth(
        rows=log_row["rows"],
        users=rows_per_user.height if log_health else None,
        first_event=log_row["first_event"],
        last_event=log_row["last_event"],
        events_by_type=events_by_type,
        exposures_by_variant=by_variant,
        set_aside=set_aside,
        set_aside_examples=examples,
    )
    exposures_daily = tables.flow.select(
        "experiment_id", "variant", "day", "d_users", "d_conflicts"
    ).sort("experiment_id", "variant", "day")
    by_day = ByDay(
        dimensions=dimension_deltas,
        health=health_daily,
        variants=variants_daily,
        pre_exposure=tables.pre_exposure_users,
        assigned_rows=assigned_rows if log_health else None,
        keys=_grid_keys(experiments),
    )
    return Summaries(
        daily,
        by_dimension,
        exposures_daily,
        health,
        as_of_by_exp,
        log,
        source.fingerprint,
        by_day,
    )


TEXT_FORMATS = {".csv", ".ndjson", ".jsonl", ".json"}


def _parsed_once(
    scanned: pl.LazyFrame, source: EventSource, extra: Sequence[str]
) -> pl.LazyFrame:
    """Parquet is rescanned by each plan; text is parsed once and kept in memory.

    Every plan of stage 1 reads the log; re-reading Parquet costs little, but
    re-parsing CSV or NDJSON (and its text timestamps) for each plan would cost
    several times the whole analysis. The kept frame has only the columns the plans
    use, with the raw columns reduced to "was there a value" flags for the rules.
    """
    if not any(f.suffix.lower() in TEXT_FORMATS for f in source.files):
        return scanned
    present = pl.when(pl.col(RAW_TS).is_not_null()).then(pl.lit(True))
    value_present = pl.when(pl.col(RAW_VALUE).is_not_null()).then(pl.lit(True))
    frame = scanned.select(
        "timestamp",
        "user_id",
        "event",
        "experiment_id",
        "variant",
        "value",
        *dict.fromkeys(extra),
        present.alias(RAW_TS),
        value_present.alias(RAW_VALUE),
    )
    try:
        return frame.collect().lazy()
    except pl.exceptions.PolarsError as exc:
        raise EventLogError(source.label, f"cannot read the log: {exc}") from exc


def _log_stats(events: pl.LazyFrame, experiment_ids: Sequence[str]) -> pl.LazyFrame:
    """Rows, users, time span, rule counts and exposures of unconfigured experiments."""
    other_experiment = (pl.col("event") == EXPOSURE) & ~pl.col("experiment_id").is_in(
        experiment_ids
    )
    return events.select(
        pl.len().alias("rows"),
        pl.col("timestamp").min().alias("first_event"),
        pl.col("timestamp").max().alias("last_event"),
        *rule_counts_exprs(),
        other_experiment.sum().alias("exposure_rows_of_other_experiments"),
    )


@dataclass(frozen=True)
class _Tables:
    deltas: pl.DataFrame  # per (experiment, metric, variant, day): summed changes
    flow: pl.DataFrame  # per (experiment, variant, day): users in/out, pre sums
    dimensions: list[tuple[str, pl.DataFrame, pl.DataFrame]]
    pre_event_rows: int  # distinct log rows before a first exposure
    pre_event_examples: pl.DataFrame
    people_daily: pl.DataFrame  # per (experiment, day): users in, excluded, pre rows
    pre_exposure_users: pl.DataFrame  # per assignment with rows before exposure


DELTA_COLUMNS = ["d_pop", "sum_x", "sum_xx", "sum_y", "sum_yy", "sum_xy", "pre_xy"]


def _contribution_parts(
    metric_users: dict[str, list[str]],
    catalog: Catalog,
    pre_cols: dict[str, str],
    prefix: str = "",
) -> dict[str, pl.Expr]:
    """Each metric's per-user parts as "<metric>|<sum>": x, x², y, y², xy, x·x₀.

    Only the parts a metric type uses (the others are zero); the responders
    count ``d_pop`` only for NPS, where it is the population.
    """
    parts = {}
    for metric_id in metric_users:
        x, y, pop = _user_value(catalog[metric_id], prefix)
        metric_type = catalog[metric_id].type
        metric_parts = {"sum_x": x, "sum_xx": x * x}
        if metric_type == "nps":
            metric_parts["d_pop"] = pop
        if metric_type == "ratio":
            metric_parts |= {"sum_y": y, "sum_yy": y * y, "sum_xy": x * y}
        if metric_id in pre_cols:
            metric_parts["pre_xy"] = x * pl.col(pre_cols[metric_id]).fill_null(0.0)
        parts |= {f"{metric_id}|{k}": e for k, e in metric_parts.items()}
    return parts


def _to_long(
    wide: pl.DataFrame, keys: Sequence[str], metric_users: dict[str, list[str]]
) -> pl.DataFrame:
    """Wide "<metric>|<sum>" columns to one row per metric (its experiments only)."""
    frames = [
        wide.filter(pl.col("experiment_id").is_in(exp_ids)).select(
            *keys,
            pl.lit(metric_id).alias("metric"),
            *[
                pl.col(f"{metric_id}|{c}").alias(c)
                if f"{metric_id}|{c}" in wide.columns
                else pl.lit(0.0).alias(c)
                for c in DELTA_COLUMNS
            ],
        )
        for metric_id, exp_ids in metric_users.items()
    ]
    if not frames:
        schema = {**{k: wide.schema[k] for k in keys}, "metric": pl.String}
        return pl.DataFrame(
            schema={**schema, **dict.fromkeys(DELTA_COLUMNS, pl.Float64)}
        )
    return pl.concat(frames, how="vertical_relaxed")


def _reduce(
    assignments: pl.DataFrame,
    box: list[pl.DataFrame],
    experiments: Sequence[Experiment],
    catalog: Catalog,
    metric_users: dict[str, list[str]],
    components: list[_Component],
    dims: list[str],
) -> _Tables:
    """Stage 2: per-user values by day → summed changes per variant and day.

    Args:
        assignments: one row per (experiment, user), ``uk`` = its row index.
        box: a list holding only the outcome rows sorted by (user code, time);
            taken out, so they are freed as soon as they are counted.
        experiments: the experiments.
        catalog: the metric catalog.
        metric_users: metric id → ids of the experiments that analyse it.
        components: every per-user aggregate the metrics need.
        dims: dimension names.
    """
    # Integer keys for the group-bys: an arm per (experiment, variant), and each
    # dimension's segment as a categorical.
    arms = pl.DataFrame(
        [(e.id, v) for e in experiments for v in e.variant_ids],
        schema={"experiment_id": pl.String, "variant": pl.String},
        orient="row",
    ).with_row_index("arm")
    seg_cols = [SEGMENT_PREFIX + d for d in dims]
    arm_of = assignments.select("experiment_id", "variant").join(
        arms, on=["experiment_id", "variant"], how="left", maintain_order="left"
    )
    outcomes = box.pop()
    located = locate(
        assignments.with_columns(
            arm_of["arm"],
            *(
                pl.col(DIM_PREFIX + d)
                .cast(pl.String)
                .fill_null(MISSING)
                .cast(pl.Categorical)
                .alias(SEGMENT_PREFIX + d)
                for d in dims
            ),
        ),
        outcomes,
    )
    users = located.drop("seg_lo", "seg_hi", "pre_lo", "lo", "hi")
    outcome_cols = [c for c in outcomes.columns if c not in (USER_CODE, USER_CHECK)]
    windowed = any(c.window_days is not None for c in components)

    def counted_rows(
        outcomes: pl.DataFrame,
        of: pl.DataFrame,
        start: str,
        end: str,
        exprs: Sequence[pl.Expr],
    ) -> pl.DataFrame:
        """``uk`` and ``exprs`` per outcome row in [start, end) of each assignment.

        Rows are ordered by (uk, time); the gathered columns are dropped here.
        """
        pairs = rows_between(of, start, end)
        gathered = outcomes.select(pl.col(outcome_cols).gather(pairs["pos"]))
        if windowed:
            gathered = gathered.with_columns(
                users["first_exposure"].gather(pairs["uk"])
            )
        return gathered.with_columns(pairs["uk"]).lazy().select("uk", *exprs).collect()

    def of_user(frame: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
        """Attach the user's own columns to rows keyed by ``uk``."""
        return frame.hstack(list(users.select(pl.col(columns).gather(frame["uk"]))))

    # CUPED pre-period values and the rows before exposure come first, so the
    # sorted outcome rows can be freed once the counted rows are gathered.
    cuped_ids = {e.id for e in experiments if e.cuped_days > 0}
    pre_cols = {
        m: f"pre_{m}"
        for m, exp_ids in metric_users.items()
        if catalog[m].type in ("proportion", "mean") and cuped_ids & set(exp_ids)
    }
    pre_per_user = None
    if pre_cols:
        pre_components = list(
            dict.fromkeys(metric_components(catalog[m])[0] for m in pre_cols)
        )
        pre_per_user = (
            counted_rows(
                outcomes,
                located.filter(pl.col("cuped_days") > 0),
                "pre_lo",
                "lo",
                [c.row_value() for c in pre_components],
            )
            .group_by("uk")
            .agg(*[c.group_agg() for c in pre_components])
            .select(
                "uk", *[_pre_value(catalog[m]).alias(c) for m, c in pre_cols.items()]
            )
        )
    set_aside_before = _before_exposure(located, outcomes)

    # Each user's cumulative values after each counted row; the last row of each
    # (user, day) is their value at the end of that day.
    day = pl.col("timestamp").dt.date().alias("day")
    rows = counted_rows(
        outcomes, located, "lo", "hi", [day, *[c.row_value() for c in components]]
    )
    del outcomes, located  # the sorted outcome rows are no longer needed
    next_differs = (pl.col("uk") != pl.col("uk").shift(-1)) | (
        pl.col("day") != pl.col("day").shift(-1)
    )
    user_days = of_user(
        rows.lazy()
        .select("uk", "day", *[c.cumulative() for c in components])
        .filter(next_differs.fill_null(True))
        .collect(),
        ["arm", "conflict_day", *seg_cols],
    )
    del rows
    if pre_per_user is not None:
        user_days = user_days.join(
            pre_per_user, on="uk", how="left", maintain_order="left"
        )
        users = users.join(pre_per_user, on="uk", how="left", maintain_order="left")

    # Per metric, the change of each user's contribution on each of their days,
    # as wide columns "<metric>|<sum>": its parts (x, x², …) now less the same on
    # the user's previous day. A user who meets a second variant retires on that
    # day: their last contribution is taken back.
    def parts(prefix: str = "") -> dict[str, pl.Expr]:
        return _contribution_parts(metric_users, catalog, pre_cols, prefix)

    conflict = pl.col("conflict_day")
    same_user = pl.col("uk") == pl.col("uk").shift(1)
    active = user_days.filter(
        conflict.is_null() | (pl.col("day") < conflict)
    ).with_columns(
        pl.when(same_user).then(pl.col(c.name).shift(1)).alias(PREVIOUS + c.name)
        for c in components
    )
    now, before = parts(), parts(PREVIOUS)
    retiring = active.filter(conflict.is_not_null() & pl.col("uk").is_last_distinct())
    changes = pl.concat(
        [
            active.lazy().select(
                "arm",
                "day",
                *seg_cols,
                *[(e - before[k]).alias(k) for k, e in now.items()],
            ),
            retiring.lazy().select(
                "arm",
                conflict.alias("day"),
                *seg_cols,
                *[(-e).alias(k) for k, e in now.items()],
            ),
        ]
    )
    wide_sums = pl.selectors.contains("|").sum()
    ids = {e.id for e in experiments}
    dim_plans = []
    for d in dims:
        exp_ids = [e.id for e in experiments if d in e.dimensions]
        in_exps = pl.col("arm").is_in(
            arms.filter(pl.col("experiment_id").is_in(exp_ids))["arm"].implode()
        )
        of_exps = changes if set(exp_ids) == ids else changes.filter(in_exps)
        dim_plans.append(
            of_exps.group_by("arm", pl.col(SEGMENT_PREFIX + d), "day").agg(wide_sums)
        )
    daily_sums, *dim_sums = pl.collect_all(
        [changes.group_by("arm", "day").agg(wide_sums), *dim_plans],
        engine="streaming",
    )
    daily_deltas = _named_arms(daily_sums, arms)
    del changes, active, retiring, user_days  # the biggest frames: free them now

    pre_values = [pl.col(c).fill_null(0.0) for c in pre_cols.values()]
    entering = users.select(
        "arm",
        pl.col("exposure_day").alias("day"),
        pl.lit(1).alias("d_users"),
        pl.lit(0).alias("d_conflicts"),
        *[v.alias(f"{m}:pre_x") for m, v in zip(pre_cols, pre_values, strict=True)],
        *[
            (v**2).alias(f"{m}:pre_xx")
            for m, v in zip(pre_cols, pre_values, strict=True)
        ],
    )
    leaving = users.filter(conflict.is_not_null()).select(
        "arm",
        conflict.alias("day"),
        pl.lit(-1).alias("d_users"),
        pl.lit(1).alias("d_conflicts"),
        *[(-v).alias(f"{m}:pre_x") for m, v in zip(pre_cols, pre_values, strict=True)],
        *[
            (-(v**2)).alias(f"{m}:pre_xx")
            for m, v in zip(pre_cols, pre_values, strict=True)
        ],
    )
    flow = _named_arms(
        pl.concat([entering, leaving], how="vertical_relaxed")
        .group_by("arm", "day")
        .agg(pl.exclude("arm", "day").sum()),
        arms,
    )

    # Per dimension, by day: the segments' summed changes and users in (+1 on
    # their first day) and out (-1 when they meet a second variant).
    dimensions = []
    for d, sums in zip(dims, dim_sums, strict=True):
        exp_ids = [e.id for e in experiments if d in e.dimensions]
        segment = pl.col(SEGMENT_PREFIX + d)
        of_exps = users.filter(pl.col("experiment_id").is_in(exp_ids))
        counts = _named_arms(
            pl.concat(
                [
                    of_exps.select(
                        "arm",
                        segment,
                        pl.col("exposure_day").alias("day"),
                        pl.lit(1).alias("users"),
                    ),
                    of_exps.filter(conflict.is_not_null()).select(
                        "arm", segment, conflict.alias("day"), pl.lit(-1).alias("users")
                    ),
                ],
                how="vertical_relaxed",
            )
            .group_by("arm", SEGMENT_PREFIX + d, "day")
            .agg(pl.col("users").sum()),
            arms,
        )
        metric_exps = {
            m: [e for e in users_of if e in exp_ids]
            for m, users_of in metric_users.items()
        }
        keys_d = ["experiment_id", "variant", "segment", "day"]
        dimensions.append(
            (d, _to_long(_named_arms(sums, arms), keys_d, metric_exps), counts)
        )

    return _Tables(
        _to_long(daily_deltas, ["experiment_id", "variant", "day"], metric_users),
        flow,
        dimensions,
        set_aside_before.rows,
        set_aside_before.examples,
        set_aside_before.daily,
        set_aside_before.by_assignment,
    )


def _named_arms(frame: pl.DataFrame, arms: pl.DataFrame) -> pl.DataFrame:
    """Arm numbers back to (experiment_id, variant); segments back to text."""
    named = frame.join(arms, on="arm", how="left").drop("arm")
    segments = [c for c in named.columns if c.startswith(SEGMENT_PREFIX)]
    return named.select(
        "experiment_id",
        "variant",
        *[pl.col(c).cast(pl.String).alias("segment") for c in segments],
        pl.exclude("experiment_id", "variant", *segments),
    )


@dataclass(frozen=True)
class _BeforeExposure:
    rows: int  # distinct log rows before a (non-excluded) user's first exposure
    examples: pl.DataFrame
    daily: pl.DataFrame  # experiment_id, day, exposed_users, multiple, pre events
    by_assignment: pl.DataFrame  # uid, exposure_day, conflict_day, before (> 0)


def _before_exposure(located: pl.DataFrame, outcomes: pl.DataFrame) -> _BeforeExposure:
    """Outcome rows before a user's first exposure, counted from the slices alone.

    For an assignment the rows [seg_lo, lo) precede its first exposure; a row is
    set aside once however many experiments it precedes, so the distinct count per
    user is the longest such prefix. Users excluded for two variants are left out.
    """
    people = located.select(
        "experiment_id",
        "user_id",
        USER_CODE,
        "first_exposure",
        "exposure_day",
        "conflict_day",
        "seg_lo",
        "lo",
        (pl.col("lo") - pl.col("seg_lo")).alias("before"),
    )
    kept = people.filter(pl.col("conflict_day").is_null())
    # By day: users entering (with their rows before exposure) and excluded.
    conflict = pl.col("conflict_day")
    daily = (
        pl.concat(
            [
                people.group_by("experiment_id", pl.col("exposure_day").alias("day"))
                .agg(
                    pl.len().alias("exposed_users"),
                    pl.col("before").sum().alias("pre_exposure_events"),
                )
                .with_columns(pl.lit(0, pl.UInt32).alias("multiple_exposures")),
                people.filter(conflict.is_not_null())
                .group_by("experiment_id", conflict.alias("day"))
                .agg(
                    pl.lit(0, pl.UInt32).alias("exposed_users"),
                    (-pl.col("before").sum()).alias("pre_exposure_events"),
                    pl.len().alias("multiple_exposures"),
                ),
            ],
            how="vertical_relaxed",
        )
        .group_by("experiment_id", "day")
        .agg(pl.all().sum().cast(pl.Int64))
    )
    by_assignment = people.filter(pl.col("before") > 0).select(
        USER_CODE, "exposure_day", "conflict_day", "before"
    )
    rows = kept.group_by(USER_CODE).agg(pl.col("before").max())["before"].sum()
    # The earliest examples come from the assignments whose earliest row is earliest.
    times = outcomes["timestamp"]
    candidates = kept.filter(pl.col("before") > 0)
    candidates = candidates.with_columns(
        times.gather(candidates["seg_lo"]).alias("first_row_time")
    ).top_k(EXAMPLE_ROWS, by="first_row_time", reverse=True)
    pairs = candidates.select(
        "experiment_id",
        "user_id",
        "first_exposure",
        pl.int_ranges(
            "seg_lo", pl.min_horizontal("lo", pl.col("seg_lo") + EXAMPLE_ROWS)
        ).alias("pos"),
    ).explode("pos")
    examples = (
        pairs.hstack(
            list(outcomes.select(pl.col("event", "timestamp").gather(pairs["pos"])))
        )
        .sort("timestamp", "experiment_id", maintain_order=True)
        .select(
            "experiment_id",
            "user_id",
            pl.col("event").cast(pl.String),
            "timestamp",
            "first_exposure",
        )
        .head(EXAMPLE_ROWS)
    )
    return _BeforeExposure(int(rows or 0), examples, daily, by_assignment)


def _pre_value(metric: MetricDef) -> pl.Expr:
    """A user's pre-period value of a proportion or mean metric."""
    value = pl.col(metric_components(metric)[0].name).fill_null(0.0)
    if metric.type == "proportion":
        return (value > 0).cast(pl.Float64)
    return value


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
    return exp.end or last_day or exp.start


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
                f"variant(s) {', '.join(repr(v) for v in unknown)} of experiment "
                f"'{exp.id}' are not declared in {exp.source or 'its config'} "
                f"(declared: {', '.join(exp.variant_ids)})",
                column="variant",
                rows=format_rows(rows),
            )


def _grid_keys(experiments: Sequence[Experiment]) -> pl.DataFrame:
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


def _days_from_start(keys: pl.DataFrame, last: pl.Expr | dt.date) -> pl.DataFrame:
    """One row per key and day from its ``start`` to ``last`` (none if last < start)."""
    return (
        keys.with_columns(pl.date_ranges("start", last).alias("day"))
        .explode("day")
        .drop("start")
        .drop_nulls("day")
    )


def _grid(
    experiments: Sequence[Experiment], as_of_by_exp: dict[str, dt.date]
) -> pl.DataFrame:
    """Every (experiment, metric, variant, day) from the start to the as-of day."""
    as_of = pl.col("experiment_id").replace_strict(as_of_by_exp, return_dtype=pl.Date)
    return _days_from_start(_grid_keys(experiments), as_of)


def _metric_types(catalog: Catalog) -> pl.DataFrame:
    return pl.DataFrame(
        {"metric": list(catalog.ids), "type": [m.type for m in catalog.metrics]}
    )


def _population(users: str) -> pl.Expr:
    """n: responders for NPS (``d_pop``), exposed users for every other type."""
    n = pl.when(pl.col("type") == "nps").then(pl.col("d_pop")).otherwise(pl.col(users))
    return n.round(0).cast(pl.Int64).alias("n")


def _cumulate(
    deltas: pl.DataFrame,
    flow: pl.DataFrame,
    experiments: Sequence[Experiment],
    catalog: Catalog,
    as_of_by_exp: dict[str, dt.date],
) -> pl.DataFrame:
    """Cumulative statistics for every (experiment, metric, variant, day)."""
    keys = ["experiment_id", "metric", "variant", "day"]
    pre_metrics = sorted({c.split(":")[0] for c in flow.columns if ":pre_" in c})
    pre_long = pl.concat(
        [
            flow.select(
                "experiment_id",
                "variant",
                "day",
                pl.lit(m).alias("metric"),
                pl.col(f"{m}:pre_x").alias("pre_x"),
                pl.col(f"{m}:pre_xx").alias("pre_xx"),
            )
            for m in pre_metrics
        ]
        or [
            pl.DataFrame(
                schema={
                    **dict.fromkeys(keys, pl.String),
                    "day": pl.Date,
                    "pre_x": pl.Float64,
                    "pre_xx": pl.Float64,
                }
            ).select("experiment_id", "variant", "day", "metric", "pre_x", "pre_xx")
        ],
        how="vertical_relaxed",
    )
    changes = [*DELTA_COLUMNS, "d_users", "pre_x", "pre_xx"]
    table = (
        _grid(experiments, as_of_by_exp)
        .join(deltas, on=keys, how="left")
        .join(
            flow.select("experiment_id", "variant", "day", "d_users"),
            on=["experiment_id", "variant", "day"],
            how="left",
        )
        .join(pre_long, on=keys, how="left")
        .join(_metric_types(catalog), on="metric", how="left")
        .with_columns(pl.col(changes).fill_null(0).cast(pl.Float64))
        .sort(keys)
        .with_columns(
            pl.col(changes).cum_sum().over(["experiment_id", "metric", "variant"])
        )
    )
    return table.select(*keys, _population("d_users"), *SUM_COLUMNS)


DIMENSION_KEYS = ["experiment_id", "metric", "variant", "dimension", "segment"]
DIMENSION_SUMS = ["sum_x", "sum_xx", "sum_y", "sum_yy", "sum_xy"]


def _dimension_deltas(
    dimensions: list[tuple[str, pl.DataFrame, pl.DataFrame]],
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
                pl.col("d_pop", *DIMENSION_SUMS).fill_null(0.0),
            )
            .select(*DIMENSION_KEYS, "day", "users", "d_pop", *DIMENSION_SUMS)
        )
    schema = {
        **dict.fromkeys(DIMENSION_KEYS, pl.String),
        "day": pl.Date,
        "users": pl.Int64,
        **dict.fromkeys(["d_pop", *DIMENSION_SUMS], pl.Float64),
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
        .agg(pl.col("users", "d_pop", *DIMENSION_SUMS).sum())
        .filter(pl.col("users") > 0)
        .join(_metric_types(catalog), on="metric", how="left")
        .select(*DIMENSION_KEYS, _population("users"), *DIMENSION_SUMS)
        .sort("experiment_id", "metric", "dimension", "segment", "variant")
    )


HEALTH_COUNTS = (
    "exposure_rows",
    "exposures_outside_window",
    "exposed_users",
    "multiple_exposures",
    "pre_exposure_events",
)


def _health_at(
    experiment_ids: Sequence[str], health_daily: pl.DataFrame, day: dt.date | None
) -> dict[str, ExperimentHealth]:
    """Each experiment's health counts at the end of ``day`` (all days when None)."""
    upto = health_daily if day is None else health_daily.filter(pl.col("day") <= day)
    totals = {
        row["experiment_id"]: row
        for row in upto.group_by("experiment_id")
        .agg(pl.col(HEALTH_COUNTS).sum())
        .iter_rows(named=True)
    }
    return {
        exp_id: ExperimentHealth(
            **{c: int(totals.get(exp_id, {}).get(c) or 0) for c in HEALTH_COUNTS}
        )
        for exp_id in experiment_ids
    }


def _variants_at(
    variants_daily: pl.DataFrame, day: dt.date | None = None
) -> pl.DataFrame:
    """Exposure rows, in-window rows and users per variant at the end of ``day``."""
    upto = (
        variants_daily if day is None else variants_daily.filter(pl.col("day") <= day)
    )
    return (
        upto.group_by("experiment_id", "variant")
        .agg(pl.col("exposure_rows", "in_window_rows", "users").sum())
        .sort("experiment_id", "variant")
    )


def at_day(summaries: Summaries, day: dt.date, catalog: Catalog) -> Summaries:
    """The summaries as they stood at the end of ``day``, without rescanning the log.

    Equal to ``summarize(..., as_of=day)`` for a day up to the cached as-of days
    (tested): the daily tables are cut at ``day``, the as-of tables are sums of
    their daily changes (:class:`ByDay`). Past an experiment's cached as-of day
    (its end, or the last day of data) nothing changes any more, so its last
    day is carried forward to ``day``; one that had not started by then gets
    zero rows from its start.
    """
    by_day = summaries.by_day
    if by_day is None:
        raise ValueError("these summaries carry no daily changes (ByDay)")
    last = summaries.daily.group_by("experiment_id").agg(pl.col("day").max())
    carried = (
        summaries.daily.join(last, on=["experiment_id", "day"], how="semi")
        .filter(pl.col("day") < day)
        .with_columns(
            pl.date_ranges(pl.col("day") + dt.timedelta(days=1), day).alias("day")
        )
        .explode("day")
    )
    # An experiment that had not started by the cached as-of day has no rows.
    not_started = by_day.keys.join(summaries.daily, on="experiment_id", how="anti")
    zeros = _days_from_start(not_started, day).with_columns(
        pl.lit(0, pl.Int64).alias("n"), *[pl.lit(0.0).alias(c) for c in SUM_COLUMNS]
    )
    daily = pl.concat(
        [summaries.daily.filter(pl.col("day") <= day), carried, zeros],
        how="vertical_relaxed",
    ).sort("experiment_id", "metric", "variant", "day")
    log = summaries.log
    set_aside = dict(log.set_aside)
    health = _health_at(list(summaries.as_of), by_day.health, day)
    set_aside["exposure_rows_outside_window"] = sum(
        h.exposures_outside_window for h in health.values()
    )
    conflict = pl.col("conflict_day")
    active = by_day.pre_exposure.filter(
        (pl.col("exposure_day") <= day) & (conflict.is_null() | (conflict > day))
    )
    set_aside["events_before_first_exposure"] = int(
        active.group_by(USER_CODE).agg(pl.col("before").max())["before"].sum() or 0
    )
    if by_day.assigned_rows is not None:
        entered = by_day.assigned_rows.filter(pl.col("day") <= day)["rows"].sum()
        set_aside["events_of_users_in_no_analysed_experiment"] = log.rows - int(
            entered or 0
        )
    cutoff = analysis_cutoff_of_day(day)
    examples = {}
    for key, frame in log.set_aside_examples.items():
        # Examples still valid that day: rows and exposures before its end.
        moment = next((c for c in ("first_exposure", "timestamp") if c in frame), None)
        examples[key] = (
            frame if moment is None else frame.filter(pl.col(moment) < cutoff)
        )
    return replace(
        summaries,
        daily=daily,
        by_dimension=dimension_table(by_day.dimensions, catalog, day),
        exposures=summaries.exposures.filter(pl.col("day") <= day),
        health=health,
        as_of=dict.fromkeys(summaries.as_of, day),
        log=replace(
            log,
            exposures_by_variant=_variants_at(by_day.variants, day),
            set_aside=set_aside,
            set_aside_examples=examples,
        ),
    )
