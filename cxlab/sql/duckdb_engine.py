"""The SQL reduction run by an embedded DuckDB on the log's own files.

The files are the ones :func:`cxlab.events.resolve_source` found (a file, a
folder or a glob). One query counts the rows breaking the contract's rules
(:data:`cxlab.events.RULES`); any such row, and any file DuckDB cannot read, is
handed to the Polars scanner, whose error names the file, the column and the
rows. Otherwise the reduction (:func:`cxlab.sql.reduction.build_reduction`)
runs and its table becomes :class:`Summaries` (:mod:`cxlab.sql.tables`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import sqlglot
from sqlglot import exp

from cxlab.config import Catalog, Experiment
from cxlab.errors import EventLogError
from cxlab.events import EXPOSURE, FORMATS, REQUIRED, EventSource
from cxlab.metrics import Nps, metric_type
from cxlab.sql.reduction import CONTRACT_COLUMNS, build_reduction, col, num, text
from cxlab.sql.tables import check_changes, summaries_from_changes
from cxlab.summaries import LogHealth, Summaries
from cxlab.summaries.as_of import variants_at
from cxlab.summaries.daily import variants_by_day

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

ENGINE = "duckdb"
ROW_BITS = 40  # log order = file number · 2⁴⁰ + row number in the file


def _reader(files: Sequence[Path]) -> tuple[str, exp.Expression]:
    """DuckDB's table function over the files, and the log-order expression.

    Raises:
        EventLogError: files of more than one format.
    """
    formats = {FORMATS[f.suffix.lower()] for f in files}
    if len(formats) > 1:
        raise EventLogError(
            str(files[0].parent),
            f"the {ENGINE} engine reads one format at a time, found "
            f"{', '.join(sorted(formats))} (use --engine polars)",
        )
    paths = exp.Array(expressions=[text(str(f)) for f in files])
    order_of_file = exp.func(
        "LIST_POSITION", paths.copy(), col("filename")
    )  # 1-based, in the resolved (sorted) order
    fmt = formats.pop()
    if fmt == "parquet":
        reader = f"read_parquet({paths.sql('duckdb')}, filename = true, "
        reader += "file_row_number = true, union_by_name = true)"
        row = col("file_row_number")
    else:
        if fmt == "csv":
            reader = f"read_csv({paths.sql('duckdb')}, all_varchar = true, "
        else:
            reader = f"read_json({paths.sql('duckdb')}, format = 'newline_delimited', "
        reader += "filename = true, union_by_name = true)"
        # Text readers number no rows; DuckDB keeps the insertion order.
        row = exp.Window(this=exp.func("ROW_NUMBER"))
    order = exp.Add(
        this=exp.Mul(this=order_of_file, expression=num(2**ROW_BITS)), expression=row
    )
    return reader, order


def _columns(con: DuckDBPyConnection, reader: str) -> list[str]:
    return [row[0] for row in con.sql(f"DESCRIBE SELECT * FROM {reader}").fetchall()]


def _source_table(present: Sequence[str], columns: dict[str, str], reader: str) -> str:
    """The files as a relation, with NULL for optional contract columns they lack."""
    missing = [
        exp.cast(exp.Null(), "VARCHAR")
        .as_(columns.get(c, c), quoted=True)
        .sql("duckdb")
        for c in CONTRACT_COLUMNS
        if columns.get(c, c) not in present
    ]
    return f"(SELECT *{''.join(', ' + m for m in missing)} FROM {reader})"


def _rule_counts(
    con: DuckDBPyConnection, table: str, nps_events: Sequence[str]
) -> dict:
    """Rows, time span and the rows breaking each contract rule, in one pass."""
    t, v, e = '"timestamp"', '"value"', '"event"'
    ts = f"TRY_CAST({t} AS TIMESTAMPTZ)"
    num_value = f"TRY_CAST({v} AS DOUBLE)"
    exposure = f"{e} = '{EXPOSURE}'"
    nps = ", ".join(text(n).sql("duckdb") for n in nps_events) or "NULL"
    checks = {
        "rows": "COUNT(*)",
        "first_event": f"MIN({ts})",
        "last_event": f"MAX({ts})",
        "bad_timestamp": f"COUNT(*) FILTER ({t} IS NULL OR {ts} IS NULL)",
        "bad_user": "COUNT(*) FILTER (user_id IS NULL "
        "OR CAST(user_id AS VARCHAR) = '')",
        "bad_event": f"COUNT(*) FILTER ({e} IS NULL OR {e} = '')",
        "bad_value": f"COUNT(*) FILTER ({v} IS NOT NULL AND ({num_value} IS NULL "
        f"OR isnan({num_value}) OR isinf({num_value})))",
        "bad_exposure": f"COUNT(*) FILTER ({exposure} AND (experiment_id IS NULL "
        "OR variant IS NULL OR experiment_id = '' OR variant = ''))",
        "bad_nps": f"COUNT(*) FILTER ({e} IN ({nps}) AND {num_value} IS NOT NULL AND "
        f"({num_value} < 0 OR {num_value} > 10 OR {num_value} <> floor({num_value})))",
    }
    select = ", ".join(f"{sql} AS {name}" for name, sql in checks.items())
    return con.sql(f"SELECT {select} FROM {table}").pl().row(0, named=True)


def _diagnose(
    source: EventSource,
    experiments: Sequence[Experiment],
    catalog: Catalog,
    as_of: dt.date | None,
    problem: str,
) -> EventLogError:
    """The Polars scanner's named error for a log DuckDB found at fault."""
    from cxlab.summaries import summarize

    summarize(source, experiments, catalog, as_of=as_of, log_health=False)
    return EventLogError(source.label, f"the {ENGINE} engine cannot read it: {problem}")


def summarize_duckdb(
    source: EventSource,
    experiments: Sequence[Experiment],
    catalog: Catalog,
    *,
    as_of: dt.date | None = None,
) -> Summaries:
    """Reduce the log with DuckDB to the same summaries as the Polars engine.

    Raises:
        EventLogError: bad input (named by the Polars scanner).
        UnsupportedMetricError: a metric type the SQL cannot express yet.
    """
    import duckdb

    columns = dict(experiments[0].columns) if experiments else {}
    reader, order = _reader(source.files)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        present = _columns(con, reader)
        if any(columns.get(c, c) not in present for c in REQUIRED):
            raise _diagnose(source, experiments, catalog, as_of, "a required column")
        table = _source_table(present, columns, reader)
        mapped = {c: columns.get(c, c) for c in ("timestamp", "event", "value")}
        renamed = ", ".join(
            f"{col(actual).sql('duckdb')} AS {col(c).sql('duckdb')}"
            for c, actual in mapped.items()
        )
        user = col(columns.get("user_id", "user_id")).sql("duckdb")
        exposures = ", ".join(
            f"{col(columns.get(c, c)).sql('duckdb')} AS {c}"
            for c in ("experiment_id", "variant")
        )
        counts = _rule_counts(
            con,
            f"(SELECT {renamed}, {user} AS user_id, {exposures} FROM {table})",
            _nps_events(catalog),
        )
        bad = {k: n for k, n in counts.items() if k.startswith("bad_") and n}
        if bad or not counts["rows"]:
            raise _diagnose(source, experiments, catalog, as_of, ", ".join(bad))
        query = build_reduction(
            experiments,
            catalog,
            table=sqlglot.parse_one(table[1:-1], dialect="duckdb").subquery("events"),
            as_of=as_of,
            log_order=order,
            engine=ENGINE,
        )
        changes = check_changes(con.sql(query.sql(dialect="duckdb")).pl(), ENGINE)
    except duckdb.Error as exc:
        raise _diagnose(source, experiments, catalog, as_of, str(exc)) from exc
    finally:
        con.close()
    _check_variants(changes, experiments, source, catalog, as_of)
    return summaries_from_changes(
        changes,
        experiments,
        catalog,
        as_of=as_of,
        log=_log_health(counts, changes),
        fingerprint=source.fingerprint,
    )


def _nps_events(catalog: Catalog) -> list[str]:
    """The events of the catalog's ``nps`` metrics, whose values must be scores."""
    return sorted(
        {
            c.event
            for m in catalog.metrics
            if isinstance(metric_type(m), Nps)
            for c in metric_type(m).components(m)
        }
    )


def _check_variants(
    changes: pl.DataFrame,
    experiments: Sequence[Experiment],
    source: EventSource,
    catalog: Catalog,
    as_of: dt.date | None,
) -> None:
    """Exposures in the window to a variant the config does not declare: refused."""
    declared = pl.DataFrame(
        [(e.id, v) for e in experiments for v in e.variant_ids],
        schema=["experiment_id", "variant"],
        orient="row",
    )
    unknown = changes.filter(
        (pl.col("kind") == "arm") & (pl.col("in_window_rows") > 0)
    ).join(declared, on=["experiment_id", "variant"], how="anti")
    if unknown.height:
        raise _diagnose(source, experiments, catalog, as_of, "undeclared variants")


def _log_health(counts: dict, changes: pl.DataFrame) -> LogHealth:
    """What the engine knows of the whole log (analyze reads the last event)."""
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
