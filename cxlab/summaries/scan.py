"""Stage 1, the scan: one pass over the log for everything the reduction needs.

The plans share one scan and are collected together (``pl.collect_all``): the
log's row count, time span and validation-rule counts; rows per event type and
per user (for the health report); the exposure rows of the configured
experiments; and the outcome rows the metrics need, projected to a few columns
with the event names as a small enum and the users as integer codes. Bad input
raises here, before any reduction, naming the file, the column and the rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import polars as pl

from cxlab.attribution import experiment_windows, flag_windows, user_codes
from cxlab.config import CANONICAL_COLUMNS, Catalog, Experiment, MetricDef
from cxlab.errors import EventLogError
from cxlab.events import (
    EXAMPLE_ROWS,
    EXPOSURE,
    FILE_COL,
    FORMATS,
    RAW_TS,
    RAW_VALUE,
    UTC,
    EventSource,
    format_rows,
    log_rules,
    offending_rows,
    ragged_lines,
    raise_for_ragged,
    raise_for_violations,
    read_error,
    rule_counts_exprs,
    scan_events,
)
from cxlab.metrics import Component, Nps, metric_type
from cxlab.summaries.as_of import analysis_cutoff_of_day
from cxlab.summaries.tables import EXAMPLE_COLUMNS

TEXT_FORMATS = {".csv", ".ndjson", ".jsonl", ".json"}
COMMENT = "comment"  # the optional free-text column of NPS answers
OTHER_EXAMPLES = 50  # rows of events no metric reads, to find a few of assigned users


class UnparsedTimestampsError(Exception):
    """The fast parse left text timestamps unparsed: scan again, thoroughly."""


@dataclass(frozen=True, slots=True)
class Options:
    """Slower, surer ways to read the log, turned on when the fast ones fail."""

    thorough_timestamps: bool = False  # try every ISO-8601 spelling per row
    exact_user_codes: bool = False  # number users by a dictionary, not a hash


class Handover:
    """A big frame for the one step that frees it: taking it leaves no reference."""

    def __init__(self, frame: pl.DataFrame) -> None:
        """Hold the frame until it is taken."""
        self._frame: pl.DataFrame | None = frame

    def take(self) -> pl.DataFrame:
        """The frame, once; this holder keeps no reference to it."""
        frame, self._frame = self._frame, None
        if frame is None:
            raise RuntimeError("this frame was handed over already")
        return frame


@dataclass(frozen=True)
class Scan:
    """What the scan collected, and what the configs ask of the log."""

    log_row: dict[str, Any]  # rows, first/last event, rule counts
    events_by_type: pl.DataFrame
    rows_per_user: pl.DataFrame
    exposures: Handover  # exposure rows in log order, flagged ``in_window``
    outcomes: Handover  # the outcome rows the metrics need, in log order
    exposure_days: pl.DataFrame  # experiment, variant, day: exposure rows, in window
    other_experiments: pl.DataFrame  # examples of unconfigured experiments' rows
    other_events: pl.DataFrame  # first rows of events no metric reads (ledger only)
    comments: pl.DataFrame  # NPS answers with a comment (none without the column)
    outside_window: pl.DataFrame  # examples of exposures outside the window
    windows: pl.DataFrame  # per experiment: its number, window and pre-period
    dims: list[str]
    metric_users: dict[str, list[str]]  # metric id → ids of its experiments
    components: list[Component]
    codes: list[pl.Expr]  # the user code and check columns
    ledger: bool  # judge every row (the whole log, for the health report)

    @property
    def last_day(self) -> dt.date | None:
        """The day of the log's last event."""
        last = self.log_row["last_event"]
        return last.date() if last else None


def scan_log(
    source: EventSource,
    experiments: Sequence[Experiment],
    catalog: Catalog,
    *,
    as_of: dt.date | None,
    log_health: bool,
    options: Options,
) -> Scan:
    """Scan the log once; validate it; keep the rows the reduction needs.

    Raises:
        EventLogError: bad input, naming the file, the column and the first rows.
        UnparsedTimestampsError: text timestamps the fast parse could not read
            (only without ``options.thorough_timestamps``).
    """
    columns = dict(experiments[0].columns) if experiments else {}
    scanned = scan_events(
        source, columns, thorough_timestamps=options.thorough_timestamps
    )
    schema = scanned.collect_schema()
    dims = _needed_dimensions(experiments, schema, source.label)
    metric_users = _metrics_by_experiment(experiments)
    _check_filter_columns(catalog, list(metric_users), schema, source.label)
    metrics = [catalog[m] for m in metric_users]
    components = list(
        dict.fromkeys(c for m in metrics for c in metric_type(m).components(m))
    )
    nps_answers = _nps_components(catalog, schema)
    filter_columns = sorted(
        {col for c in [*components, *nps_answers] for col, _ in c.filter}
    )
    row_columns = _row_columns(metrics, schema, source.label)
    row_events = sorted({e for m in metrics for e in metric_type(m).log_events(m)})
    answers = [
        c
        for m in metrics
        if isinstance(metric_type(m), Nps)
        for c in metric_type(m).components(m)
    ]
    commented = answers if COMMENT in schema else []
    events = _parsed_once(
        scanned,
        source,
        [*dims, *filter_columns, *row_columns, *([COMMENT] if commented else [])],
    )
    rules = log_rules(_any_of(nps_answers))
    codes = user_codes(exact=options.exact_user_codes)
    ids = [e.id for e in experiments]
    ledger = log_health and as_of is None
    plans = _plans(
        events,
        ids,
        components,
        dims,
        codes,
        as_of,
        log_health,
        rules,
        row_columns,
        row_events,
    )
    plans.append(_other_events(events, components, row_events, ledger))
    plans.append(_comment_rows(events, commented, codes, as_of))
    try:
        (
            log_row,
            events_by_type,
            exposure_log,
            outcomes,
            rows_per_user,
            other,
            other_events,
            comments,
        ) = pl.collect_all(plans)
    except pl.exceptions.PolarsError as exc:
        raise read_error(source.files, source.label, exc) from exc
    log_row = log_row.row(0, named=True)
    if log_row["timestamp_unparseable"] and not options.thorough_timestamps:
        raise UnparsedTimestampsError  # mixed ISO-8601 spellings
    raise_for_violations(scanned, log_row, source.label, rules)
    if not log_row["rows"]:
        raise EventLogError(source.label, "the event log is empty")
    windows = experiment_windows(experiments, as_of)
    exposures = flag_windows(exposure_log, windows)
    del exposure_log
    exposure_days = _exposure_days(exposures, windows)
    _check_declared_variants(scanned, exposure_days, experiments, source.label)
    return Scan(
        log_row=log_row,
        events_by_type=events_by_type,
        rows_per_user=rows_per_user,
        exposures=Handover(exposures),
        outcomes=Handover(outcomes),
        exposure_days=exposure_days,
        other_experiments=other,
        other_events=other_events,
        comments=comments,
        outside_window=exposures.filter(~pl.col("in_window"))
        .select(EXAMPLE_COLUMNS)
        .head(EXAMPLE_ROWS),
        windows=windows,
        dims=dims,
        metric_users=metric_users,
        components=components,
        codes=codes,
        ledger=ledger,
    )


def named_by_id(by_index: pl.LazyFrame, windows: pl.DataFrame) -> pl.DataFrame:
    """Group-by results keyed by the experiment's number, named by its id."""
    ids = windows.lazy().select("experiment_index", "experiment_id")
    named = by_index.join(ids, on="experiment_index")
    return named.select(
        "experiment_id", pl.exclude("experiment_id", "experiment_index")
    ).collect()


def _nps_components(catalog: Catalog, schema: pl.Schema) -> list[Component]:
    """The answers of every ``nps`` metric of the catalog whose filter can match."""
    return [
        c
        for m in catalog.metrics
        if isinstance(metric_type(m), Nps)
        for c in metric_type(m).components(m)
        if all(column in schema for column, _ in c.filter)
    ]


def _any_of(components: Sequence[Component]) -> pl.Expr | None:
    """Rows of any of these components' event and filter (time and value aside)."""
    if not components:
        return None
    # A count ignores the value, and no window: the event and the filter remain.
    return pl.any_horizontal(
        replace(c, aggregate="count", window_days=None).condition() for c in components
    )


def _plans(
    events: pl.LazyFrame,
    ids: Sequence[str],
    components: Sequence[Component],
    dims: Sequence[str],
    codes: Sequence[pl.Expr],
    as_of: dt.date | None,
    log_health: bool,
    rules: dict,
    row_columns: Sequence[str] = (),
    row_events: Sequence[str] = (),
) -> list[pl.LazyFrame]:
    """The plans collected together: they share the scan of ``events``.

    Log stats; rows per event type; the configured experiments' exposure rows;
    the outcome rows the metrics need (user codes standing in for the text ids,
    event names as an enum); rows per user; examples of exposures to experiments
    without a config. The per-type and per-user counts only with ``log_health``.
    """
    analysed = events
    if as_of is not None:
        analysed = events.filter(pl.col("timestamp") < analysis_cutoff_of_day(as_of))
    component_events = sorted({c.event for c in components} | set(row_events))
    needed_events = sorted(set(component_events) - {EXPOSURE})
    filter_columns = sorted(
        {col for c in components for col, _ in c.filter} | set(row_columns)
    )
    event_code = pl.col("event")
    if component_events:
        event_code = event_code.cast(pl.Enum(component_events))
    is_exposure = pl.col("event") == EXPOSURE
    return [
        _log_stats(events, ids, rules),
        events.group_by("event")
        .agg(pl.len().alias("rows"))
        .sort(["rows", "event"], descending=[True, False])
        if log_health
        else pl.LazyFrame(schema={"event": pl.String, "rows": pl.UInt32}),
        analysed.filter(is_exposure & pl.col("experiment_id").is_in(ids)).select(
            "timestamp", "user_id", "experiment_id", "variant", *dims
        ),
        analysed.filter(pl.col("event").is_in(needed_events)).select(
            "timestamp", *codes, event_code, "value", *filter_columns
        ),
        events.group_by("user_id").agg(
            pl.len().alias("rows"),
            (~is_exposure & ~pl.col("event").is_in(needed_events))
            .sum()
            .alias("other_rows"),
        )
        if log_health
        else pl.LazyFrame(
            schema={"user_id": pl.String, "rows": pl.UInt32, "other_rows": pl.UInt32}
        ),
        events.filter(is_exposure & ~pl.col("experiment_id").is_in(ids))
        .select(EXAMPLE_COLUMNS)
        .head(EXAMPLE_ROWS),
    ]


def _other_events(
    events: pl.LazyFrame,
    components: Sequence[Component],
    row_events: Sequence[str],
    ledger: bool,
) -> pl.LazyFrame:
    """The first rows of events no metric reads: the ledger's examples."""
    read = sorted({c.event for c in components} | {EXPOSURE, *row_events})
    columns = {"timestamp": UTC, "user_id": pl.String, "event": pl.String}
    if not ledger:
        return pl.LazyFrame(schema=columns)
    return (
        events.filter(~pl.col("event").is_in(read))
        .select(*columns)
        .head(OTHER_EXAMPLES)
    )


def _comment_rows(
    events: pl.LazyFrame,
    answers: Sequence[Component],
    codes: Sequence[pl.Expr],
    as_of: dt.date | None,
) -> pl.LazyFrame:
    """The NPS answers with a comment: time, user, score, comment, filter columns.

    Empty (no rows) when no analysed NPS metric exists or the log has no
    ``comment`` column; :mod:`.voice` keeps the ones of analysed users.
    """
    if not answers:
        return pl.LazyFrame(schema={"timestamp": UTC})
    filter_columns = sorted({col for c in answers for col, _ in c.filter})
    analysed = events
    if as_of is not None:
        analysed = events.filter(pl.col("timestamp") < analysis_cutoff_of_day(as_of))
    has_text = pl.col(COMMENT).cast(pl.String).str.strip_chars().str.len_chars() > 0
    return analysed.filter(_any_of(answers) & has_text).select(
        "timestamp",
        "user_id",
        *codes,
        "event",
        "value",
        pl.col(COMMENT).cast(pl.String),
        *filter_columns,
    )


def _exposure_days(exposures: pl.DataFrame, windows: pl.DataFrame) -> pl.DataFrame:
    """Exposure rows and in-window rows per (experiment, variant, day)."""
    return named_by_id(
        exposures.lazy()
        .group_by(
            "experiment_index", "variant", pl.col("timestamp").dt.date().alias("day")
        )
        .agg(
            pl.len().alias("exposure_rows"),
            pl.col("in_window").sum().alias("in_window_rows"),
        ),
        windows,
    )


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


def _metrics_by_experiment(experiments: Sequence[Experiment]) -> dict[str, list[str]]:
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
        metric = catalog[metric_id]
        for comp in metric_type(metric).components(metric):
            for column, _ in comp.filter:
                if column not in schema:
                    raise EventLogError(
                        label,
                        f"metric '{metric_id}' filters on '{column}', "
                        "which is not a column of the log",
                        column=column,
                    )


def _row_columns(
    metrics: Sequence[MetricDef], schema: pl.Schema, label: str
) -> list[str]:
    """The log columns the metrics' rows need (a categorical's category)."""
    needed = {}
    for metric in metrics:
        for column in metric_type(metric).log_columns(metric):
            if column not in schema:
                raise EventLogError(
                    label,
                    f"metric '{metric.id}' reads its categories from '{column}', "
                    "which is not a column of the log",
                    column=column,
                )
            needed[column] = None
    return list(needed)


def _check_declared_variants(
    events: pl.LazyFrame,
    exposure_days: pl.DataFrame,
    experiments: Sequence[Experiment],
    label: str,
) -> None:
    by_variant = exposure_days.group_by("experiment_id", "variant").agg(
        pl.col("in_window_rows").sum()
    )
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


def _parsed_once(
    scanned: pl.LazyFrame, source: EventSource, extra: Sequence[str]
) -> pl.LazyFrame:
    """Parquet is rescanned by each plan; text is parsed once and kept in memory.

    Every plan of the scan reads the log; re-reading Parquet costs little, but
    re-parsing CSV or NDJSON (and its text timestamps) for each plan would cost
    several times the whole analysis. The kept frame has only the columns the plans
    use, with the raw columns reduced to "was there a value" flags for the rules.
    """
    if not any(f.suffix.lower() in TEXT_FORMATS for f in source.files):
        return scanned
    csv_files = [f for f in source.files if FORMATS[f.suffix.lower()] == "csv"]
    present = pl.when(pl.col(RAW_TS).is_not_null()).then(pl.lit(True))
    value_present = pl.when(pl.col(RAW_VALUE).is_not_null()).then(pl.lit(True))
    frame = scanned.select(
        *CANONICAL_COLUMNS,
        *dict.fromkeys(extra),
        present.alias(RAW_TS),
        value_present.alias(RAW_VALUE),
    )
    plans = [frame, ragged_lines(csv_files)] if csv_files else [frame]
    try:
        parsed, *ragged = pl.collect_all(plans)
    except pl.exceptions.PolarsError as exc:
        raise read_error(source.files, source.label, exc) from exc
    if ragged:
        raise_for_ragged(ragged[0])
    return parsed.lazy()


def _log_stats(
    events: pl.LazyFrame, experiment_ids: Sequence[str], rules: dict
) -> pl.LazyFrame:
    """Rows, users, time span, rule counts and exposures of unconfigured experiments."""
    other_experiment = (pl.col("event") == EXPOSURE) & ~pl.col("experiment_id").is_in(
        experiment_ids
    )
    return events.select(
        pl.len().alias("rows"),
        pl.col("timestamp").min().alias("first_event"),
        pl.col("timestamp").max().alias("last_event"),
        *rule_counts_exprs(rules),
        other_experiment.sum().alias("exposure_rows_of_other_experiments"),
    )
