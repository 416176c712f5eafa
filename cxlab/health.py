"""The data-health report of a log against the experiment configs.

Rows, users, date range, events by type, exposures per experiment and variant,
multiple-exposure users, and every set-aside row counted by reason. Built from the
summaries (no extra scan) and shared by ``python -m cxlab check`` and the Data page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from cxlab.config import Experiment
from cxlab.events import EventSource
from cxlab.summaries import RowLedger, Summaries

LEDGER_LABELS = {
    "unknown_experiment": "exposure to an experiment with no config",
    "exposure_outside_window": "exposure outside the experiment's window",
    "multiple_exposures": "user excluded: saw two variants",
    "repeat_exposure": "later exposure of an assigned user",
    "user_never_exposed": "user never exposed to an analysed experiment",
    "event_in_no_metric": "event no metric of the user's experiments reads",
    "before_first_exposure": "before the user's first exposure",
    "after_window": "after the experiment's end or the metric's window_days",
}


def ledger_table(ledger: RowLedger) -> pl.DataFrame:
    """The ledger as rows that add up: each reason, used, and the total.

    Columns: ``bucket`` (a reason's id, ``used`` or ``total``), ``meaning``,
    ``rows`` and ``share`` of the log's rows.
    """
    buckets = [
        *[(r, LEDGER_LABELS[r], n) for r, n in ledger.set_aside.items()],
        ("used", "counted by at least one experiment's analysis", ledger.used),
        ("total", "rows of the log", ledger.rows),
    ]
    table = pl.DataFrame(
        buckets, schema=["bucket", "meaning", "rows"], orient="row"
    ).with_columns(pl.col("rows").cast(pl.Int64))
    return table.with_columns((pl.col("rows") / max(ledger.rows, 1)).alias("share"))


@dataclass(frozen=True)
class ExperimentExposure:
    """Exposure bookkeeping of one experiment."""

    experiment_id: str
    as_of: dt.date
    by_variant: pl.DataFrame  # variant, exposure_rows, in_window_rows, users, analysed
    multiple_exposures: int
    exposures_outside_window: int
    pre_exposure_events: int


@dataclass(frozen=True)
class HealthReport:
    """Everything ``check`` prints."""

    source: str
    files: int
    rows: int
    users: int
    first_event: dt.datetime | None
    last_event: dt.datetime | None
    events_by_type: pl.DataFrame
    experiments: tuple[ExperimentExposure, ...]
    set_aside: Mapping[str, int]
    set_aside_examples: Mapping[str, pl.DataFrame] = field(default_factory=dict)
    ledger: RowLedger | None = None


def _analysed_users(summaries: Summaries, exp: Experiment) -> pl.DataFrame:
    """Users analysed per variant as of the as-of day (entered minus excluded)."""
    day = summaries.as_of[exp.id]
    flow = summaries.exposures.filter(
        (pl.col("experiment_id") == exp.id) & (pl.col("day") <= day)
    )
    return flow.group_by("variant").agg(pl.col("d_users").sum().alias("analysed"))


def health_report(
    source: EventSource,
    experiments: Sequence[Experiment],
    summaries: Mapping[str, Summaries],
) -> HealthReport:
    """Assemble the data-health report from already computed summaries."""
    any_summaries = next(iter(summaries.values()))
    log = any_summaries.log
    per_exp = []
    for exp in experiments:
        s = summaries[exp.id]
        exposures = s.log.exposures_by_variant.filter(pl.col("experiment_id") == exp.id)
        declared = pl.DataFrame({"variant": list(exp.variant_ids)})
        table = (
            declared.join(exposures.drop("experiment_id"), on="variant", how="left")
            .join(_analysed_users(s, exp), on="variant", how="left")
            .with_columns(pl.exclude("variant").fill_null(0))
        )
        h = s.health[exp.id]
        per_exp.append(
            ExperimentExposure(
                experiment_id=exp.id,
                as_of=s.as_of[exp.id],
                by_variant=table,
                multiple_exposures=h.multiple_exposures,
                exposures_outside_window=h.exposures_outside_window,
                pre_exposure_events=h.pre_exposure_events,
            )
        )
    return HealthReport(
        source=source.spec,
        files=len(source.files),
        rows=log.rows,
        users=log.users,
        first_event=log.first_event,
        last_event=log.last_event,
        events_by_type=log.events_by_type,
        experiments=tuple(per_exp),
        set_aside=dict(log.set_aside),
        set_aside_examples=dict(log.set_aside_examples),
        ledger=log.ledger,
    )
