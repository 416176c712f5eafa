"""Set-aside counts: the log rows no analysis counts, with the first examples.

The ledger of the data-health report: exposures to experiments without a config,
exposures outside an experiment's window, rows before a user's first exposure
(counted from the sorted outcome rows' slices alone, once however many
experiments they precede) and rows of users in no analysed experiment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from cxlab.attribution import USER_CODE
from cxlab.events import EXAMPLE_ROWS
from cxlab.summaries.tables import ExperimentHealth, LogHealth


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
    rows = kept.group_by(USER_CODE).agg(pl.col("before").max())["before"].sum()
    return BeforeExposure(
        int(rows or 0),
        _examples_before(kept, outcomes),
        _people_by_day(people),
        by_assignment,
    )


def _people_by_day(people: pl.DataFrame) -> pl.DataFrame:
    """By day: users entering (with their rows before exposure) and excluded."""
    conflict = pl.col("conflict_day")
    return (
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
        not_in_any = user_rows.filter(pl.col("day").is_null()).drop("day")
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
    )
    return Ledger(log, assigned_rows)
