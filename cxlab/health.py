"""The data-health report of a log against the experiment configs.

Rows, users, date range, events by type, exposures per experiment and variant,
multiple-exposure users, and every set-aside row counted by reason. Built from the
summaries (no extra scan) and shared by ``python -m cxlab check`` and the Data page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from cxlab.config import Experiment
from cxlab.events import EventSource
from cxlab.summaries import Summaries

SET_ASIDE_LABELS = {
    "exposure_rows_of_other_experiments": "exposure rows of unconfigured experiments",
    "exposure_rows_outside_window": "exposure rows outside their experiment's window",
    "events_of_users_in_no_analysed_experiment": "rows of users in no experiment",
    "events_before_first_exposure": "outcome events before first exposure",
}


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

    def as_text(self) -> str:
        """A readable report for a terminal."""
        span = (
            f"{self.first_event:%Y-%m-%d %H:%M} .. {self.last_event:%Y-%m-%d %H:%M} UTC"
            if self.first_event and self.last_event
            else "—"
        )
        lines = [
            f"Event log: {self.source} ({self.files} file(s))",
            f"  rows: {self.rows:,}   users: {self.users:,}   span: {span}",
            "",
            "Events by type:",
        ]
        lines += [
            f"  {row['event']:<20} {row['rows']:>12,} rows"
            for row in self.events_by_type.iter_rows(named=True)
        ]
        lines += ["", "Exposures per experiment and variant:"]
        for exp in self.experiments:
            lines.append(
                f"  {exp.experiment_id} (as of {exp.as_of}): "
                f"{exp.multiple_exposures:,} multiple-exposure users excluded, "
                f"{exp.exposures_outside_window:,} exposure rows outside the window"
            )
            for row in exp.by_variant.iter_rows(named=True):
                lines.append(
                    f"    {row['variant']:<22} {row['exposure_rows']:>10,} rows "
                    f"{row['users']:>10,} exposed users {row['analysed']:>10,} analysed"
                )
        lines += ["", "Rows set aside (not analysed), by reason:"]
        for key, count in self.set_aside.items():
            lines.append(f"  {SET_ASIDE_LABELS.get(key, key):<58} {count:>12,}")
            examples = self.set_aside_examples.get(key)
            if count and examples is not None and examples.height:
                lines += [f"      e.g. {_example(row)}" for row in examples.to_dicts()]
        return "\n".join(lines) + "\n"


def _example(row: dict[str, Any]) -> str:
    return ", ".join(f"{k.lstrip('_')}={v}" for k, v in row.items())


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
    )


def health_to_dict(report: HealthReport) -> dict[str, Any]:
    """The report as JSON-ready data."""
    return {
        "source": report.source,
        "files": report.files,
        "rows": report.rows,
        "users": report.users,
        "first_event": report.first_event.isoformat() if report.first_event else None,
        "last_event": report.last_event.isoformat() if report.last_event else None,
        "events_by_type": report.events_by_type.to_dicts(),
        "experiments": [
            {
                "experiment": e.experiment_id,
                "as_of": e.as_of.isoformat(),
                "variants": e.by_variant.to_dicts(),
                "multiple_exposures": e.multiple_exposures,
                "exposures_outside_window": e.exposures_outside_window,
                "pre_exposure_events": e.pre_exposure_events,
            }
            for e in report.experiments
        ],
        "set_aside": dict(report.set_aside),
        "set_aside_examples": {
            key: [
                {k.lstrip("_"): _json_value(v) for k, v in row.items()}
                for row in frame.to_dicts()
            ]
            for key, frame in report.set_aside_examples.items()
        },
    }


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value
