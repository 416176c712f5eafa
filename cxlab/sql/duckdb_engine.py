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

import sqlglot
from sqlglot import exp

from cxlab.config import Catalog, Experiment
from cxlab.errors import EventLogError
from cxlab.events import REQUIRED, EventSource
from cxlab.sql.checks import (
    broken_rules,
    diagnose,
    engine_summaries,
    nps_events,
    rule_counts_query,
    single_format,
    undeclared_variants,
)
from cxlab.sql.ledger import build_health
from cxlab.sql.reduction import CONTRACT_COLUMNS, build_reduction, col, num, text
from cxlab.sql.tables import check_changes
from cxlab.summaries import Summaries

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

ENGINE = "duckdb"
ROW_BITS = 40  # log order = file number · 2⁴⁰ + row number in the file


def _reader(files: Sequence[Path]) -> tuple[str, exp.Expression]:
    """DuckDB's table function over the files, and the log-order expression.

    Raises:
        EventLogError: files of more than one format.
    """
    paths = exp.Array(expressions=[text(str(f)) for f in files])
    order_of_file = exp.func(
        "LIST_POSITION", paths.copy(), col("filename")
    )  # 1-based, in the resolved (sorted) order
    fmt = single_format(files, ENGINE)
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


def _rule_counts(con: DuckDBPyConnection, table: str, catalog: Catalog) -> dict:
    """Rows, time span and the rows breaking each contract rule, in one pass."""
    query = rule_counts_query(
        sqlglot.parse_one(table[1:-1], dialect=ENGINE).subquery("t"),
        nps_events(catalog),
    )
    return con.sql(query.sql(ENGINE)).pl().row(0, named=True)


def _diagnose(
    source: EventSource,
    experiments: Sequence[Experiment],
    catalog: Catalog,
    as_of: dt.date | None,
    problem: str,
) -> EventLogError:
    return diagnose(source, experiments, catalog, as_of, problem, ENGINE)


def summarize_duckdb(
    source: EventSource,
    experiments: Sequence[Experiment],
    catalog: Catalog,
    *,
    as_of: dt.date | None = None,
    with_health: bool = False,
) -> Summaries:
    """Reduce the log with DuckDB to the same summaries as the Polars engine.

    With ``with_health`` (and no ``as_of``), also the log's health and its row
    ledger (:mod:`cxlab.sql.ledger`), as the Polars engine's ``log_health``.

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
            catalog,
        )
        bad = broken_rules(counts)
        if bad or not counts["rows"]:
            raise _diagnose(source, experiments, catalog, as_of, ", ".join(bad))
        events = sqlglot.parse_one(table[1:-1], dialect=ENGINE).subquery("events")
        query = build_reduction(
            experiments,
            catalog,
            table=events,
            as_of=as_of,
            log_order=order,
            engine=ENGINE,
        )
        changes = check_changes(con.sql(query.sql(dialect=ENGINE)).pl(), ENGINE)
        health = None
        if with_health and as_of is None:
            health_query = build_health(
                experiments,
                catalog,
                table=events.copy(),
                log_order=order.copy(),
                engine=ENGINE,
            )
            health = con.sql(health_query.sql(dialect=ENGINE)).pl()
    except duckdb.Error as exc:
        raise _diagnose(source, experiments, catalog, as_of, str(exc)) from exc
    finally:
        con.close()
    if undeclared_variants(changes, experiments).height:
        raise _diagnose(source, experiments, catalog, as_of, "undeclared variants")
    return engine_summaries(
        changes,
        counts,
        health,
        experiments,
        catalog,
        as_of=as_of,
        fingerprint=source.fingerprint,
    )
