"""The as-of cut: the summaries as they stood at the end of an earlier day.

Everything that depends on the as-of day is kept as daily changes
(:class:`~cxlab.summaries.tables.ByDay`); any day is a sum over them, so moving
the as-of day needs no rescan of the log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace

import polars as pl

from cxlab.attribution import USER_CODE
from cxlab.config import Catalog
from cxlab.summaries.daily import days_from_start, dimension_table
from cxlab.summaries.tables import (
    HEALTH_COUNTS,
    SUM_COLUMNS,
    ByDay,
    ExperimentHealth,
    LogHealth,
    Summaries,
)


def analysis_cutoff_of_day(day: dt.date) -> dt.datetime:
    """The first instant after a UTC day."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(
        days=1
    )


def health_at(
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


def variants_at(
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
    health = health_at(list(summaries.as_of), by_day.health, day)
    return replace(
        summaries,
        daily=_daily_at(summaries.daily, by_day.keys, day),
        by_dimension=dimension_table(by_day.dimensions, catalog, day),
        exposures=summaries.exposures.filter(pl.col("day") <= day),
        health=health,
        as_of=dict.fromkeys(summaries.as_of, day),
        log=_log_at(summaries.log, by_day, health, day),
        categories=_upto(summaries.categories, day),
        survival=_upto(summaries.survival, day),
        comments=_upto(summaries.comments, day),
        words=_upto(summaries.words, day),
        caps=_upto(summaries.caps, day),
        novelty=_upto(summaries.novelty, day),
    )


def _upto(changes: pl.DataFrame | None, day: dt.date) -> pl.DataFrame | None:
    """A table of daily changes up to the end of ``day``."""
    return None if changes is None else changes.filter(pl.col("day") <= day)


def _daily_at(daily: pl.DataFrame, keys: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """The daily table cut at ``day``, each experiment's last day carried forward."""
    last = daily.group_by("experiment_id").agg(pl.col("day").max())
    carried = (
        daily.join(last, on=["experiment_id", "day"], how="semi")
        .filter(pl.col("day") < day)
        .with_columns(
            pl.date_ranges(pl.col("day") + dt.timedelta(days=1), day).alias("day")
        )
        .explode("day")
    )
    # An experiment that had not started by the cached as-of day has no rows.
    not_started = keys.join(daily, on="experiment_id", how="anti")
    zeros = days_from_start(not_started, day).with_columns(
        pl.lit(0, pl.Int64).alias("n"), *[pl.lit(0.0).alias(c) for c in SUM_COLUMNS]
    )
    return pl.concat(
        [daily.filter(pl.col("day") <= day), carried, zeros],
        how="vertical_relaxed",
    ).sort("experiment_id", "metric", "variant", "day")


def _log_at(
    log: LogHealth,
    by_day: ByDay,
    health: dict[str, ExperimentHealth],
    day: dt.date,
) -> LogHealth:
    """The set-aside counts and examples as they stood at the end of ``day``.

    An engine that kept no daily set-aside counts (the SQL engines: theirs are
    of the whole log) leaves none, rather than the whole log's under a day.
    """
    if by_day.pre_exposure is None:
        return replace(
            log,
            exposures_by_variant=variants_at(by_day.variants, day),
            set_aside={},
            set_aside_examples={},
            ledger=None,
        )
    set_aside = dict(log.set_aside)
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
        log,
        exposures_by_variant=variants_at(by_day.variants, day),
        set_aside=set_aside,
        set_aside_examples=examples,
        ledger=None,  # judged on the whole log only
    )
