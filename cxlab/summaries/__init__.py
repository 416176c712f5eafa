"""From an event log to per-variant sufficient statistics: the only code touching rows.

:func:`summarize` runs the stages, one module each:

1. :mod:`.scan`: one pass over the log (``pl.collect_all`` over plans sharing
   the scan) for its rule counts and figures, the configured experiments'
   exposure rows and the outcome rows the metrics need; bad input raises here.
2. :mod:`.reduce`: attribution, each user's metric components at the end of each
   of their days (:mod:`.users`), and the change of each user's contribution
   (the registry's :mod:`cxlab.metrics`) summed per (variant, day) and segment.
3. :mod:`.daily`: the changes cumulated into the ``daily`` table, n and the
   sums as of the end of every day, with the segments and health counts by day.
4. :mod:`.set_aside`: the ledger of the rows no analysis counts.
5. :mod:`.as_of`: :func:`at_day` cuts all of it at an earlier day, no rescan.

Beside the daily sums, :mod:`.voice` keeps the detail tables of the metric types
that need more: per-category sums (``categorical``) and the times to an event
(``time_to_event``), both as daily changes; and the customers' own words (NPS
comments: a sample and the detractors' word counts). :mod:`.cap` gives the capped
means their changes and keeps their caps by day. :mod:`.novelty` keeps the same
sums per bucket of days since each user's first exposure (the novelty check).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import replace

from cxlab.attribution import UserCodeCollisionError
from cxlab.config import Catalog, Experiment
from cxlab.events import EventSource
from cxlab.summaries.as_of import (
    analysis_cutoff_of_day,
    at_day,
    health_at,
    variants_at,
)
from cxlab.summaries.daily import (
    as_of_day,
    cumulate,
    dimension_deltas,
    dimension_table,
    grid_keys,
    health_by_day,
    variants_by_day,
)
from cxlab.summaries.novelty import cut_at
from cxlab.summaries.reduce import reduce_log
from cxlab.summaries.scan import Options, UnparsedTimestampsError, scan_log
from cxlab.summaries.set_aside import (
    other_fates,
    row_ledger,
    set_aside_counts,
)
from cxlab.summaries.tables import (
    STAT_COLUMNS,
    SUM_COLUMNS,
    ByDay,
    ExperimentHealth,
    LogHealth,
    RowLedger,
    Summaries,
)

__all__ = [
    "READ_FIELDS",
    "STAT_COLUMNS",
    "SUM_COLUMNS",
    "ByDay",
    "ExperimentHealth",
    "LogHealth",
    "RowLedger",
    "Summaries",
    "analysis_cutoff_of_day",
    "as_reduced",
    "at_day",
    "dimension_table",
    "summarize",
]


# What the reduction reads of an experiment's config; the other fields decide only
# how the summaries are analysed. Tested on the Polars and DuckDB engines: with all
# the others changed, their summaries are the same.
READ_FIELDS = frozenset(
    {
        "id",
        "variants",
        "control",
        "start",
        "end",
        "primary_metrics",
        "secondary_metrics",
        "guardrail_metrics",
        "dimensions",
        "cuped_days",
        "columns",
        "source",  # named in error messages
    }
)


def as_reduced(exp: Experiment) -> Experiment:
    """The experiment as the reduction sees it: the fields it does not read unset.

    The engines are given this (:func:`cxlab.api.summarize_all`), so configs that
    differ only in a name, an owner, a decision note, alpha or the decision
    method have the same summaries by construction, and can share one scan.
    """
    return replace(
        exp,
        **{
            f.name: f.default
            for f in dataclasses.fields(exp)
            if f.name not in READ_FIELDS
        },
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

    The fast ways of reading the log are tried first; when one fails it is
    replaced by a slower, surer one and the log is read again. Each option turns
    on at most once, so there are at most two retries.

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
        The summaries (see the module docstring).

    Raises:
        EventLogError: bad input, naming the file, the column and the first rows.
    """
    options = Options(thorough_timestamps, exact_user_codes)
    while True:
        try:
            return _summarize(source, experiments, catalog, as_of, log_health, options)
        except UnparsedTimestampsError:  # mixed ISO-8601 spellings
            options = replace(options, thorough_timestamps=True)
        except UserCodeCollisionError:  # two ids share both hashes
            if options.exact_user_codes:
                raise
            options = replace(options, exact_user_codes=True)


def _summarize(
    source: EventSource,
    experiments: Sequence[Experiment],
    catalog: Catalog,
    as_of: dt.date | None,
    log_health: bool,
    options: Options,
) -> Summaries:
    """One pass of the stages: scan, reduce, daily tables, set-aside counts."""
    scan = scan_log(
        source,
        experiments,
        catalog,
        as_of=as_of,
        log_health=log_health,
        options=options,
    )
    reduced = reduce_log(scan, experiments, catalog)
    ids = [e.id for e in experiments]
    as_of_by_exp = {e.id: as_of_day(e, as_of, scan.last_day) for e in experiments}
    variants_daily = variants_by_day(scan.exposure_days, reduced.users_by_day)
    health_daily = health_by_day(scan.exposure_days, reduced.before.daily)
    dimensions = dimension_deltas(reduced.dimensions, experiments)
    health = health_at(ids, health_daily, None)
    examples = {
        "exposure_rows_of_other_experiments": scan.other_experiments,
        "exposure_rows_outside_window": scan.outside_window,
    }
    rows_ledger = None
    if reduced.exposure_fates and reduced.outcome_fates:
        rows_ledger = row_ledger(
            scan.log_row["rows"],
            int(scan.log_row["exposure_rows_of_other_experiments"]),
            reduced.exposure_fates,
            reduced.outcome_fates,
            other_fates(
                scan.rows_per_user, reduced.assignments["user_id"], scan.other_events
            ),
            {
                "unknown_experiment": scan.other_experiments,
                "exposure_outside_window": scan.outside_window,
            },
        )
    ledger = set_aside_counts(
        scan.log_row,
        scan.events_by_type,
        scan.rows_per_user if log_health else None,
        reduced.assignments,
        reduced.before,
        health,
        variants_at(variants_daily),
        examples,
        rows_ledger,
    )
    return Summaries(
        daily=cumulate(
            reduced.deltas, reduced.flow, experiments, catalog, as_of_by_exp
        ),
        by_dimension=dimension_table(dimensions, catalog),
        exposures=reduced.flow.select(
            "experiment_id", "variant", "day", "d_users", "d_conflicts"
        ).sort("experiment_id", "variant", "day"),
        health=health,
        as_of=as_of_by_exp,
        log=ledger.log,
        fingerprint=source.fingerprint,
        by_day=ByDay(
            dimensions=dimensions,
            health=health_daily,
            variants=variants_daily,
            pre_exposure=reduced.before.by_assignment,
            assigned_rows=ledger.assigned_rows,
            keys=grid_keys(experiments),
        ),
        categories=reduced.categories,
        survival=reduced.survival,
        comments=reduced.comments,
        words=reduced.words,
        caps=reduced.caps,
        novelty=cut_at(reduced.by_age, experiments, as_of),
    )
