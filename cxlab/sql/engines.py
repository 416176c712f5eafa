"""Which reduction engine runs: ``--engine polars|duckdb|spark|auto``.

Every engine gives the same summaries (CONTRACT §4); ``auto`` takes the one
measured fastest on local files (bench/RESULTS.md, "Polars vs DuckDB").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cxlab.config import Catalog, Experiment
from cxlab.errors import InputError
from cxlab.events import EventSource
from cxlab.summaries import Summaries, summarize

ENGINES = ("polars", "duckdb", "spark", "auto")
AUTO_LOCAL = "polars"  # measured fastest on local files (bench/RESULTS.md)


def resolve_engine(engine: str, *, ledger: bool = False) -> str:
    """The engine to run for ``engine`` (``auto`` resolved).

    Args:
        engine: one of :data:`ENGINES`.
        ledger: the command needs the row ledger and the log's health counts,
            which only the Polars engine computes.

    Raises:
        InputError: an unknown engine, one not available, or one that cannot
            give what the command needs.
    """
    if engine not in ENGINES:
        raise InputError(f"--engine: unknown engine '{engine}' ({', '.join(ENGINES)})")
    if engine == "auto":
        return AUTO_LOCAL
    if engine == "spark":
        raise InputError("the spark engine is not available yet (use polars or duckdb)")
    if ledger and engine != "polars":
        raise InputError(
            f"the row ledger and log health of `check` are computed by the polars "
            f"engine only, not by {engine} (use --engine polars or auto)"
        )
    return engine


def summarize_with(
    engine: str,
    source: EventSource,
    experiments: Sequence[Experiment],
    catalog: Catalog,
    *,
    as_of: dt.date | None = None,
    log_health: bool = True,
) -> Summaries:
    """The summaries from the named engine (resolved by :func:`resolve_engine`)."""
    if engine == "duckdb" and experiments:
        from cxlab.sql.duckdb_engine import summarize_duckdb

        return summarize_duckdb(source, experiments, catalog, as_of=as_of)
    return summarize(source, experiments, catalog, as_of=as_of, log_health=log_health)
