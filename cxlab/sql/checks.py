"""What every SQL engine checks and reports about the log, in portable SQL.

The contract's rules (:data:`cxlab.events.RULES`) as SQLGlot conditions, counted
in one pass with the log's rows and time span (:func:`rule_counts_query`);
the undeclared variants of the reduction's output; the Polars scanner's named
error for a local log an engine found at fault (:func:`diagnose`); and the
log's health as an SQL engine knows it (:func:`log_health`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import polars as pl
from sqlglot import exp

from cxlab.config import Catalog, Experiment
from cxlab.errors import EventLogError
from cxlab.events import EXPOSURE, FORMATS, NPS_RULE, EventSource
from cxlab.metrics import Nps, metric_type
from cxlab.sql.ledger import log_health_of
from cxlab.sql.reduction import col, is_in, num, text
from cxlab.sql.tables import summaries_from_changes
from cxlab.summaries import LogHealth, Summaries
from cxlab.summaries.as_of import variants_at
from cxlab.summaries.daily import variants_by_day

SPAN = ("rows", "first_event", "last_event")


def single_format(files: Sequence[Path], engine: str) -> str:
    """The one format of the files (SQL engines read one at a time).

    Raises:
        EventLogError: files of more than one format.
    """
    formats = {FORMATS[f.suffix.lower()] for f in files}
    if len(formats) > 1:
        raise EventLogError(
            str(files[0].parent),
            f"the {engine} engine reads one format at a time, found "
            f"{', '.join(sorted(formats))} (use --engine polars)",
        )
    return formats.pop()


def nps_events(catalog: Catalog) -> list[str]:
    """The events of the catalog's ``nps`` metrics, whose values must be scores."""
    return sorted(
        {
            c.event
            for m in catalog.metrics
            if isinstance(metric_type(m), Nps)
            for c in metric_type(m).components(m)
        }
    )


def _blank(column: str) -> exp.Expression:
    """NULL or empty text."""
    return exp.or_(
        exp.Is(this=col(column), expression=exp.Null()),
        exp.EQ(this=exp.cast(col(column), "VARCHAR"), expression=text("")),
    )


def sql_rules(scored_events: Sequence[str]) -> dict[str, exp.Expression]:
    """The rules of :data:`cxlab.events.RULES` (and the NPS one) as SQL conditions.

    The same names as the Polars rules (a test holds the two lists equal).

    Over the contract's column names; a text that does not convert is NULL
    after ``TRY_CAST`` (the Spark session runs with ANSI mode off, where the
    dialect's ``CAST`` is that).

    Args:
        scored_events: the events whose values are NPS answers.
    """
    ts = exp.TryCast(this=col("timestamp"), to=exp.DataType.build("TIMESTAMPTZ"))
    value = exp.TryCast(this=col("value"), to=exp.DataType.build("DOUBLE"))
    has_value = exp.Not(this=exp.Is(this=col("value"), expression=exp.Null()))
    infinite = [exp.cast(text(s), "DOUBLE") for s in ("Infinity", "-Infinity")]
    exposure = exp.EQ(this=col("event"), expression=text(EXPOSURE))
    score = exp.and_(
        is_in(col("event"), scored_events),
        exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null())),
        exp.or_(
            exp.LT(this=value.copy(), expression=num(0)),
            exp.GT(this=value.copy(), expression=num(10)),
            exp.NEQ(this=value.copy(), expression=exp.func("FLOOR", value.copy())),
        ),
    )
    return {
        "timestamp_missing": exp.Is(this=col("timestamp"), expression=exp.Null()),
        "timestamp_unparseable": exp.and_(
            exp.Not(this=exp.Is(this=col("timestamp"), expression=exp.Null())),
            exp.Is(this=ts, expression=exp.Null()),
        ),
        "user_id_missing": _blank("user_id"),
        "event_missing": _blank("event"),
        "value_not_numeric": exp.and_(
            has_value, exp.Is(this=value.copy(), expression=exp.Null())
        ),
        "value_not_finite": exp.or_(
            exp.func("ISNAN", value.copy()),
            exp.In(this=value.copy(), expressions=infinite),
        ),
        "exposure_missing_experiment": exp.and_(exposure, _blank("experiment_id")),
        "exposure_missing_variant": exp.and_(exposure.copy(), _blank("variant")),
        NPS_RULE: score,
    }


def rule_counts_query(
    table: exp.Expression, scored_events: Sequence[str]
) -> exp.Select:
    """Rows, time span and the rows breaking each rule, in one pass over ``table``.

    Args:
        table: the log with the contract's column names.
        scored_events: the events whose values are NPS answers.
    """
    ts = exp.TryCast(this=col("timestamp"), to=exp.DataType.build("TIMESTAMPTZ"))
    return exp.select(
        exp.func("COUNT", exp.Star()).as_("rows"),
        exp.func("MIN", ts).as_("first_event"),
        exp.func("MAX", ts.copy()).as_("last_event"),
        *[
            exp.CountIf(this=condition).as_(name)
            for name, condition in sql_rules(scored_events).items()
        ],
    ).from_(table)


def broken_rules(counts: dict) -> dict[str, int]:
    """The rules some rows break, with their counts."""
    return {k: int(n) for k, n in counts.items() if k not in SPAN and n}


def diagnose(
    source: EventSource,
    experiments: Sequence[Experiment],
    catalog: Catalog,
    as_of: dt.date | None,
    problem: str,
    engine: str,
) -> EventLogError:
    """The Polars scanner's named error for a local log an SQL engine found at fault.

    Returns the scanner's own error by raising it; when the scanner finds
    nothing wrong, the engine's problem is named instead.
    """
    from cxlab.summaries import summarize

    summarize(source, experiments, catalog, as_of=as_of, log_health=False)
    return EventLogError(source.label, f"the {engine} engine cannot read it: {problem}")


def undeclared_variants(
    changes: pl.DataFrame, experiments: Sequence[Experiment]
) -> pl.DataFrame:
    """(experiment_id, variant) of in-window exposures the configs do not declare."""
    declared = pl.DataFrame(
        [(e.id, v) for e in experiments for v in e.variant_ids],
        schema=["experiment_id", "variant"],
        orient="row",
    )
    return (
        changes.filter((pl.col("kind") == "arm") & (pl.col("in_window_rows") > 0))
        .join(declared, on=["experiment_id", "variant"], how="anti")
        .select("experiment_id", "variant")
        .unique(maintain_order=True)
    )


def log_health(counts: dict, changes: pl.DataFrame) -> LogHealth:
    """What an SQL engine knows of the whole log (analyze reads the last event)."""
    arm = changes.filter(pl.col("kind") == "arm")
    exposure_days = (
        arm.filter(pl.col("exposure_rows") > 0)
        .group_by("experiment_id", "variant", "day")
        .agg(pl.col("exposure_rows", "in_window_rows").sum())
    )
    users = (
        arm.filter(pl.col("first_seen") > 0)
        .group_by("experiment_id", "variant", "day")
        .agg(pl.col("first_seen").sum().alias("users"))
    )
    return LogHealth(
        rows=int(counts["rows"]),
        users=None,
        first_event=counts["first_event"],
        last_event=counts["last_event"],
        events_by_type=pl.DataFrame(schema={"event": pl.String, "rows": pl.UInt32}),
        exposures_by_variant=variants_at(variants_by_day(exposure_days, users)),
        set_aside={},
    )


def engine_summaries(
    changes: pl.DataFrame,
    counts: dict,
    health: pl.DataFrame | None,
    experiments: Sequence[Experiment],
    catalog: Catalog,
    *,
    as_of: dt.date | None,
    fingerprint: tuple,
) -> Summaries:
    """An SQL engine's results as summaries, the same way for every engine.

    From the reduction's table of changes, the rule counts' pass and, when it
    ran, the ledger's table (:func:`cxlab.sql.ledger.log_health_of`).
    """
    log = log_health(counts, changes)
    return summaries_from_changes(
        changes,
        experiments,
        catalog,
        as_of=as_of,
        log=log if health is None else log_health_of(health, log),
        fingerprint=fingerprint,
    )
