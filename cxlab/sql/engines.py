"""Which reduction engine runs: ``--engine polars|duckdb|spark|auto``.

Every engine gives the same summaries (CONTRACT §4); ``auto`` takes the one
measured fastest on local files (bench/RESULTS.md, "Polars vs DuckDB vs local
Spark"), and Spark for a catalog table or an object-store URI, which only Spark
reads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cxlab.config import Catalog, Experiment
from cxlab.errors import InputError
from cxlab.events import EventSource, resolve_source
from cxlab.summaries import Summaries, summarize

if TYPE_CHECKING:
    from cxlab.sql.target import SparkTarget

ENGINES = ("polars", "duckdb", "spark", "auto")
AUTO_LOCAL = "polars"  # measured fastest on local files (bench/RESULTS.md)
TABLE_PREFIX = "table:"  # --events table:db.events, a catalog table (Spark)


def is_spark_only(events: str) -> bool:
    """A catalog table (``table:db.events``) or an object-store URI."""
    return events.startswith(TABLE_PREFIX) or "://" in events


def resolve_engine(engine: str, *, events: str | None = None) -> str:
    """The engine to run for ``engine`` (``auto`` resolved).

    Args:
        engine: one of :data:`ENGINES`.
        events: the ``--events`` given: ``auto`` takes Spark for a table or a URI.

    Raises:
        InputError: an unknown engine.
    """
    if engine not in ENGINES:
        raise InputError(f"--engine: unknown engine '{engine}' ({', '.join(ENGINES)})")
    if engine == "auto":
        engine = "spark" if events and is_spark_only(events) else AUTO_LOCAL
    return engine


def resolve_events(events: str, engine: str) -> EventSource:
    """The log for a resolved engine: local files, or for Spark a table or a URI.

    Raises:
        EventLogError: no log there, or files of an unsupported type.
        InputError: a table or a URI for an engine that reads local files only.
    """
    if engine == "spark":
        from cxlab.sql.spark_engine import spark_source

        return spark_source(events)
    if is_spark_only(events):
        raise InputError(
            f"{events}: catalog tables and object-store URIs are read by the spark "
            f"engine only, not by {engine} (use --engine spark)"
        )
    return resolve_source(events)


def summarize_with(
    engine: str,
    source: EventSource,
    experiments: Sequence[Experiment],
    catalog: Catalog,
    *,
    as_of: dt.date | None = None,
    log_health: bool = True,
    spark: SparkTarget | None = None,
) -> Summaries:
    """The summaries from the named engine (resolved by :func:`resolve_engine`).

    ``spark`` says where the spark engine runs (default: the flags' environment
    variables, else a local session).
    """
    if engine == "duckdb" and experiments:
        from cxlab.sql.duckdb_engine import summarize_duckdb

        return summarize_duckdb(
            source, experiments, catalog, as_of=as_of, with_health=log_health
        )
    if engine == "spark" and experiments:
        from cxlab.sql.spark_engine import summarize_spark

        return summarize_spark(
            source,
            experiments,
            catalog,
            as_of=as_of,
            target=spark,
            with_health=log_health,
        )
    return summarize(source, experiments, catalog, as_of=as_of, log_health=log_health)
