"""Set-aside counts and the ledger: where every row of the log went.

The set-aside counts of the data-health report: exposures to experiments without
a config, exposures outside an experiment's window, rows before a user's first
exposure (counted from the sorted outcome rows' slices alone, once however many
experiments they precede) and rows of users in no analysed experiment. These
overlap (a row may be counted under two of them).

The ledger (CONTRACT §1) puts every row in exactly one bucket: ``used``, or the
first reason of :data:`REASONS` that applies. Exposure rows are judged by their
(experiment, user) run, outcome rows by their position in each of their user's
assignments' slices, and the rows of events no metric reads by whether their user
was assigned at all; nothing is read from the log again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from cxlab.attribution import USER_CODE, rows_between
from cxlab.config import Catalog, Experiment
from cxlab.events import EXAMPLE_ROWS
from cxlab.metrics import Component, metric_type
from cxlab.summaries.tables import ExperimentHealth, LogHealth, RowLedger

# The reasons in their order of precedence (CONTRACT §1).
REASONS = (
    "unknown_experiment",
    "exposure_outside_window",
    "multiple_exposures",
    "repeat_exposure",
    "user_never_exposed",
    "event_in_no_metric",
    "before_first_exposure",
    "after_window",
)
USED = "used"
# An outcome row's fate in one assignment, as a rank: the lowest over the row's
# assignments wins; NO_METRIC where the assignment's metrics never read the row.
RANK = {USED: 0, **{reason: i + 1 for i, reason in enumerate(REASONS)}}
NO_METRIC = len(RANK)


@dataclass(frozen=True)
class Fates:
    """Rows counted by fate, with a few examples of each set-aside reason."""

    counts: dict[str, int]
    examples: dict[str, pl.DataFrame] = field(default_factory=dict)


def exposure_fates(exposures: pl.DataFrame) -> Fates:
    """The configured experiments' exposure rows: used, or why not.

    Out of the window: ``exposure_outside_window``. In it, per (experiment,
    user): every row of a user who saw two variants is ``multiple_exposures``;
    otherwise the first (earliest, then in log order) assigns the user (``used``)
    and the later ones are ``repeat_exposure``.

    Args:
        exposures: exposure rows in log order, flagged ``in_window``, with the
            user code and the experiment's number.
    """
    run = ["experiment_index", USER_CODE, "in_window"]
    rows = exposures.with_row_index("log_order").sort("timestamp", maintain_order=True)
    fate = (
        pl.when(~pl.col("in_window"))
        .then(pl.lit("exposure_outside_window"))
        .when(pl.col("variant").n_unique().over(run) > 1)
        .then(pl.lit("multiple_exposures"))
        .when(pl.struct(run).is_first_distinct())
        .then(pl.lit(USED))
        .otherwise(pl.lit("repeat_exposure"))
    )
    judged = rows.with_columns(fate.alias("fate"))
    counts = dict(judged.group_by("fate").len().iter_rows())
    examples = {
        reason: judged.filter(pl.col("fate") == reason)
        .sort("log_order")
        .select("timestamp", "user_id", "experiment_id", "variant")
        .head(EXAMPLE_ROWS)
        for reason in ("multiple_exposures", "repeat_exposure")
    }
    return Fates(counts, examples)


def outcome_fates(
    located: pl.DataFrame,
    outcomes: pl.DataFrame,
    experiments: Sequence[Experiment],
    catalog: Catalog,
) -> Fates:
    """The outcome rows (the events some metric reads): used, or why not.

    Every row of a user is paired with each of the user's assignments; in each it
    is ``used`` (it enters one of the experiment's metrics, the user not
    excluded), ``multiple_exposures`` (it would, but the user saw two variants),
    ``before_first_exposure``, ``after_window`` (after the end, or past a metric's
    ``window_days``) or read by none of the experiment's metrics. The best fate
    over the assignments is the row's; a row no metric of any of its user's
    experiments reads is ``event_in_no_metric``, a row of a user with no
    assignment ``user_never_exposed``.

    Args:
        located: the assignments with their slices of the sorted outcome rows.
        outcomes: the outcome rows sorted by (user code, time, log order).
        experiments: the analysed experiments.
        catalog: the metric catalog.
    """
    pairs = rows_between(located, "seg_lo", "seg_hi")
    of_user = located.select(
        pl.col(
            "experiment_id", "user_id", "first_exposure", "lo", "hi", "conflict_at"
        ).gather(pairs["uk"])
    )
    columns = [c for c in outcomes.columns if c not in (USER_CODE, "uid_check")]
    rows = outcomes.select(pl.col(columns).gather(pairs["pos"]))
    pos = pl.col("pos")
    inside = (pos >= pl.col("lo")) & (pos < pl.col("hi"))
    enters, reads = _metric_conditions(experiments, catalog)
    rank = (
        pl.when(~reads)
        .then(NO_METRIC)
        .when(inside & enters & pl.col("conflict_at").is_null())
        .then(RANK[USED])
        .when(inside & enters)
        .then(RANK["multiple_exposures"])
        .when(pos < pl.col("lo"))
        .then(RANK["before_first_exposure"])
        .otherwise(RANK["after_window"])
    )
    judged = (
        pl.concat([rows, of_user, pairs.select("pos")], how="horizontal")
        .with_columns(rank.alias("rank"))
        .sort("pos", "rank", maintain_order=True)
        .unique("pos", keep="first", maintain_order=True)
    )
    reason = pl.col("rank").replace_strict(
        {**{r: k for k, r in RANK.items()}, NO_METRIC: "event_in_no_metric"},
        return_dtype=pl.String,
    )
    judged = judged.with_columns(reason.alias("fate"))
    counts = dict(judged.group_by("fate").len().iter_rows())
    counts["user_never_exposed"] = outcomes.height - judged.height
    examples = {
        key: judged.filter(pl.col("fate") == key)
        .sort("timestamp", maintain_order=True)
        .select(
            "timestamp",
            "user_id",
            pl.col("event").cast(pl.String),
            "experiment_id",
            "first_exposure",
        )
        .head(EXAMPLE_ROWS)
        for key in ("event_in_no_metric", "before_first_exposure", "after_window")
    }
    return Fates(counts, examples)


def _metric_conditions(
    experiments: Sequence[Experiment], catalog: Catalog
) -> tuple[pl.Expr, pl.Expr]:
    """Per (row, assignment): does the row enter the experiment's metrics?

    ``enters``: some metric of the assignment's experiment counts the row, its
    ``window_days`` included; ``reads``: the same with no window (the event,
    filter and value fit).
    """
    enters, reads = pl.when(False).then(False), pl.when(False).then(False)
    for exp in experiments:
        comps = _components(exp, catalog)
        # Events a metric reads beside its components (time to event: the end).
        metrics = [catalog[m] for m, _ in exp.metric_roles]
        also = {e for m in metrics for e in metric_type(m).log_events(m)}
        extra = [pl.col("event").is_in(sorted(also))] if also else []
        counted = [c.condition() for c in comps] + extra
        fitting = [replace(c, window_days=None).condition() for c in comps] + extra
        is_exp = pl.col("experiment_id") == exp.id
        enters = enters.when(is_exp).then(pl.any_horizontal(False, *counted))
        reads = reads.when(is_exp).then(pl.any_horizontal(False, *fitting))
    return enters.otherwise(False), reads.otherwise(False)


def _components(exp: Experiment, catalog: Catalog) -> list[Component]:
    metrics = [catalog[m] for m, _ in exp.metric_roles]
    return list(dict.fromkeys(c for m in metrics for c in metric_type(m).components(m)))


def other_fates(
    other_rows: pl.DataFrame, assigned: pl.Series, other_events: pl.DataFrame
) -> Fates:
    """The rows of events no metric reads, in the ledger's two buckets.

    ``event_in_no_metric`` of an assigned user, else ``user_never_exposed``;
    the examples are the first such rows.

    Args:
        other_rows: per user id, ``other_rows``: rows of events no metric reads.
        assigned: the ids of the users assigned to an analysed experiment.
        other_events: the first rows of events no metric reads, in log order.
    """
    is_assigned = pl.col("user_id").is_in(assigned.implode())
    other = other_rows.group_by(is_assigned.alias("assigned")).agg(
        pl.col("other_rows").sum()
    )
    by_assignment = dict(other.iter_rows())
    return Fates(
        {
            "user_never_exposed": int(by_assignment.get(False) or 0),
            "event_in_no_metric": int(by_assignment.get(True) or 0),
        },
        {
            "user_never_exposed": other_events.filter(~is_assigned),
            "event_in_no_metric": other_events.filter(is_assigned),
        },
    )


def row_ledger(
    rows: int,
    unknown_experiment: int,
    exposures: Fates,
    outcomes: Fates,
    others: Fates,
    examples: Mapping[str, pl.DataFrame],
) -> RowLedger:
    """Every row of the log in one bucket: exposures, outcome rows and the rest.

    Args:
        rows: the log's rows.
        unknown_experiment: exposure rows of experiments without a config.
        exposures: the configured experiments' exposure rows by fate.
        outcomes: the outcome rows by fate.
        others: the rows of events no metric reads (:func:`other_fates`), with
            their first rows in log order as examples.
        examples: examples of exposure rows of experiments without a config
            (``unknown_experiment``) and outside the window.
    """
    counts = dict.fromkeys((USED, *REASONS), 0)
    counts["unknown_experiment"] = unknown_experiment
    for fates in (exposures, outcomes, others):
        for key, count in fates.counts.items():
            counts[key] += int(count)
    all_examples = {
        **exposures.examples,
        **outcomes.examples,
        **examples,
        "user_never_exposed": others.examples["user_never_exposed"].head(EXAMPLE_ROWS),
        "event_in_no_metric": pl.concat(
            [
                others.examples["event_in_no_metric"],
                outcomes.examples["event_in_no_metric"],
            ],
            how="diagonal_relaxed",
        ).head(EXAMPLE_ROWS),
    }
    return RowLedger(
        rows=rows,
        used=counts.pop(USED),
        set_aside=counts,
        examples={r: all_examples[r] for r in REASONS if r in all_examples},
    )


@dataclass(frozen=True)
class BeforeExposure:
    """Outcome rows before a first exposure, and the exposed users by day."""

    rows: int  # distinct log rows before a (non-excluded) user's first exposure
    examples: pl.DataFrame
    daily: pl.DataFrame  # experiment_id, day, exposed_users, multiple, pre events
    by_assignment: pl.DataFrame  # uid, exposure_day, conflict_day, before (> 0)


def before_exposure(located: pl.DataFrame, outcomes: pl.DataFrame) -> BeforeExposure:
    """Outcome rows before a user's first exposure, counted from the slices alone.

    For an assignment the rows [seg_lo, lo) precede its first exposure; a row is
    set aside once however many experiments it precedes, so the distinct count per
    user is the longest such prefix. Users excluded for two variants are left out.
    """
    people = located.select(
        "experiment_id",
        "arm",
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
    by_assignment = people.filter(pl.col("before") > 0).select(
        USER_CODE, "exposure_day", "conflict_day", "before"
    )
    rows = (
        kept.filter(pl.col("before") > 0)
        .group_by(USER_CODE)
        .agg(pl.col("before").max())["before"]
        .sum()
    )
    return BeforeExposure(
        int(rows or 0),
        _examples_before(kept, outcomes),
        _people_by_day(people),
        by_assignment,
    )


def _people_by_day(people: pl.DataFrame) -> pl.DataFrame:
    """By day: users entering (with their rows before exposure) and excluded.

    Grouped on the integer ``arm`` first (its experiment's id carried along): a
    text key over every assignment costs several times more.
    """
    conflict = pl.col("conflict_day")
    experiment = pl.col("experiment_id").first()
    return (
        pl.concat(
            [
                people.group_by("arm", pl.col("exposure_day").alias("day"))
                .agg(
                    experiment,
                    pl.len().alias("exposed_users"),
                    pl.col("before").sum().alias("pre_exposure_events"),
                )
                .with_columns(pl.lit(0, pl.UInt32).alias("multiple_exposures")),
                people.filter(conflict.is_not_null())
                .group_by("arm", conflict.alias("day"))
                .agg(
                    experiment,
                    pl.lit(0, pl.UInt32).alias("exposed_users"),
                    (-pl.col("before").sum()).alias("pre_exposure_events"),
                    pl.len().alias("multiple_exposures"),
                ),
            ],
            how="vertical_relaxed",
        )
        .drop("arm")
        .group_by("experiment_id", "day")
        .agg(pl.all().sum().cast(pl.Int64))
    )


def _examples_before(kept: pl.DataFrame, outcomes: pl.DataFrame) -> pl.DataFrame:
    """The earliest rows before a first exposure, from the earliest assignments."""
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
    return (
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


@dataclass(frozen=True)
class Ledger:
    """The log's health with its set-aside counts, and rows by day of entry."""

    log: LogHealth
    assigned_rows: pl.DataFrame | None  # day, rows of users entering an experiment


def set_aside_counts(
    log_row: Mapping[str, Any],
    events_by_type: pl.DataFrame,
    rows_per_user: pl.DataFrame | None,
    assignments: pl.DataFrame,
    before: BeforeExposure,
    health: Mapping[str, ExperimentHealth],
    exposures_by_variant: pl.DataFrame,
    examples: Mapping[str, pl.DataFrame],
    rows_ledger: RowLedger | None = None,
) -> Ledger:
    """The log health: rows, span, and every set-aside count with examples.

    Args:
        log_row: the scan's log stats (rows, first/last event, rule counts).
        events_by_type: rows per event type.
        rows_per_user: rows per user id, or None when the log-wide user counts
            were not computed (then the rows of users in no analysed experiment
            are not reported rather than reported as a false zero).
        assignments: one row per analysed (experiment, user).
        before: the rows before a first exposure.
        health: per experiment, its health counts.
        exposures_by_variant: exposure rows and users per variant.
        examples: the scan's examples of exposure rows of other experiments and
            outside the window.
        rows_ledger: every row's bucket, when the whole log was judged.
    """
    set_aside = {
        "exposure_rows_of_other_experiments": int(
            log_row["exposure_rows_of_other_experiments"]
        ),
        "exposure_rows_outside_window": sum(
            h.exposures_outside_window for h in health.values()
        ),
    }
    all_examples = dict(examples)
    assigned_rows = None
    if rows_per_user is not None:
        # Each user's rows with the day they first entered an analysed experiment.
        user_rows = rows_per_user.join(
            assignments.group_by("user_id").agg(
                pl.col("exposure_day").min().alias("day")
            ),
            on="user_id",
            how="left",
        )
        not_in_any = user_rows.filter(pl.col("day").is_null()).select("user_id", "rows")
        assigned_rows = (
            user_rows.filter(pl.col("day").is_not_null())
            .group_by("day")
            .agg(pl.col("rows").sum().cast(pl.Int64))
            .sort("day")
        )
        set_aside["events_of_users_in_no_analysed_experiment"] = int(
            not_in_any["rows"].sum() or 0
        )
        all_examples["events_of_users_in_no_analysed_experiment"] = not_in_any.sort(
            "user_id"
        ).head(EXAMPLE_ROWS)
    set_aside["events_before_first_exposure"] = before.rows
    all_examples["events_before_first_exposure"] = before.examples
    log = LogHealth(
        rows=log_row["rows"],
        users=rows_per_user.height if rows_per_user is not None else None,
        first_event=log_row["first_event"],
        last_event=log_row["last_event"],
        events_by_type=events_by_type,
        exposures_by_variant=exposures_by_variant,
        set_aside=set_aside,
        set_aside_examples=all_examples,
        ledger=rows_ledger,
    )
    return Ledger(log, assigned_rows)
