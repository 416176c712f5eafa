"""The SQL reduction run by Apache Spark (PySpark) where the data lives.

Where it runs (:class:`SparkTarget`): a Spark Connect server
(``--spark-remote sc://host:15002`` or ``CXLAB_SPARK_REMOTE``), a cluster's master
(``--spark-master URL`` or ``CXLAB_SPARK_MASTER``), or by default a local session
(``local[*]``) with small-machine settings (:data:`LOCAL_CONF`). The session is
created on first use and reused; PySpark is imported only then.

What it reads: the same files, folders and globs as the other engines
(:func:`cxlab.events.resolve_source`), object-store URIs (``s3a://``, ``gs://``,
``abfss://`` …) handed to Spark as they are, and catalog tables
(``table:db.events``).

How: the contract's rules are counted in one pass (:mod:`cxlab.sql.checks`);
a local log at fault is handed to the Polars scanner for its named error, a
remote one is named here with its first offending rows. Then the reduction
(:func:`cxlab.sql.reduction.build_reduction`) is rendered in the Spark dialect:
each stage of its ``WITH`` becomes a temporary view, those read more than once
materialized (Spark inlines a common table expression at every reference), and
the final table of daily changes (a few rows per arm and day) is collected
through Arrow into the DuckDB engine's tables (:mod:`cxlab.sql.tables`).
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
import shutil
import socket
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import polars as pl
from sqlglot import exp

from cxlab.config import Catalog, Experiment
from cxlab.errors import EventLogError, InputError
from cxlab.events import (
    FORMATS,
    REQUIRED,
    EventSource,
    log_rules,
    resolve_source,
)
from cxlab.sql.checks import (
    broken_rules,
    diagnose,
    engine_summaries,
    nps_events,
    rule_counts_query,
    single_format,
    sql_rules,
    undeclared_variants,
)
from cxlab.sql.engines import TABLE_PREFIX, is_spark_only
from cxlab.sql.ledger import build_health
from cxlab.sql.reduction import CONTRACT_COLUMNS, build_reduction, col
from cxlab.sql.tables import check_changes
from cxlab.sql.target import (
    CONNECT_PORT,
    LOCAL_MASTER,
    MASTER_PORT,
    REMOTE_ENV,
    SparkTarget,
)
from cxlab.summaries import Summaries

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

ENGINE = "spark"
DIALECT = "spark"
ORDER_COLUMN = "_cxlab_log_order"
EXAMPLE_ROWS = 5
# A laptop or a 2-core CI machine: few shuffle partitions (Spark's 200 are for
# clusters), no web UI or progress bar, a modest driver, no network.
LOCAL_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.driver.memory": "2g",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}
# Every session, local or remote: days are UTC days, and a text that does not
# convert becomes NULL (SQLGlot renders TRY_CAST as the Spark dialect's CAST,
# which does that with ANSI mode off; Spark 4 turns ANSI mode on by default).
SESSION_CONF = {"spark.sql.session.timeZone": "UTC", "spark.sql.ansi.enabled": "false"}
# Seconds a server has to accept a TCP connection before the engine gives up
# (the Spark Connect client itself retries for minutes).
REACH_TIMEOUT = 5.0


def _check_reachable(target: SparkTarget) -> None:
    """Refuse a remote target when none of its endpoints accepts a TCP connection.

    Raises:
        InputError: nothing answers within :data:`REACH_TIMEOUT` seconds.
    """
    endpoints = target.endpoints
    if not endpoints or any(_answers(host, port) for host, port in endpoints):
        return
    what = "Spark Connect server" if target.remote else "Spark master"
    default = CONNECT_PORT if target.remote else MASTER_PORT
    raise InputError(
        f"the spark engine cannot reach the {what} at {target.label}: nothing "
        f"answered within {REACH_TIMEOUT:g} s; check that the server is running, "
        f"its host and port (default {default}) and the network in between"
    )


def _answers(host: str, port: int) -> bool:
    """Whether ``host:port`` accepts a TCP connection within the timeout."""
    try:
        with socket.create_connection((host, port), timeout=REACH_TIMEOUT):
            return True
    except OSError:  # refused, timed out, or a host name that does not resolve
        return False


_SESSIONS: dict[SparkTarget, SparkSession] = {}


def spark_source(spec: str) -> EventSource:
    """The log for the spark engine: local files resolved, tables and URIs as given.

    Raises:
        EventLogError: a local log with no files, or files of an unsupported type.
    """
    if is_spark_only(spec):
        return EventSource(spec, ())
    return resolve_source(spec)


def spark_session(target: SparkTarget) -> SparkSession:
    """The session for the target: created on first use, then reused.

    Raises:
        InputError: PySpark (or, locally, Java) missing, or Spark unreachable.
    """
    if target in _SESSIONS:
        return _SESSIONS[target]
    _check_reachable(target)  # fast: Spark's clients retry for minutes
    try:
        with warnings.catch_warnings():  # PySpark warns of pandas versions it reads
            warnings.simplefilter("ignore", FutureWarning)
            from pyspark.sql import SparkSession

            if target.remote:
                session = SparkSession.builder.remote(target.remote).getOrCreate()
            else:
                _check_java()
                builder = SparkSession.builder.master(target.master or LOCAL_MASTER)
                builder = builder.appName("cxlab")
                if not target.master or target.master.startswith("local"):
                    for key, value in LOCAL_CONF.items():
                        builder = builder.config(key, value)
                with _quiet_stderr():
                    session = builder.getOrCreate()
                atexit.register(_stop_local, session)
    except ImportError as exc:
        raise InputError(
            f"the spark engine needs PySpark ({exc.name or exc}): "
            "pip install -r requirements-spark.txt"
        ) from None
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"the spark engine cannot start a session at {target.label}: "
            f"{_first_line(exc)}"
        ) from None
    for key, value in SESSION_CONF.items():
        session.conf.set(key, value)
    _SESSIONS[target] = session
    return session


def _stop_local(session: SparkSession) -> None:
    """Stop a local session and wait for its Java process to end.

    A clean exit, instead of PySpark's kill at exit; and the operating system
    then counts the Java process's CPU and memory as this process's children.
    """
    from pyspark import SparkContext

    session.stop()
    gateway = SparkContext._gateway
    proc = getattr(gateway, "proc", None)
    if gateway is None or proc is None or proc.stdin is None or proc.stdin.closed:
        return
    gateway.shutdown()
    proc.stdin.close()  # the Java side exits when its standard input closes
    proc.wait(timeout=60)


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Standard error closed while the Java side starts, which inherits it.

    Spark's Java logs would land on the user's terminal; its failures reach
    Python as exceptions, which this module names.
    """
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _check_java() -> None:
    """A local session runs in a Java virtual machine: refuse clearly without one."""
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (
        java_home and (Path(java_home) / "bin" / "java").exists()
    ):
        raise InputError(
            "the spark engine needs Java 17 or later for a local session "
            "(Debian: apt-get install openjdk-17-jre-headless), or a Spark "
            f"Connect server (--spark-remote, {REMOTE_ENV})"
        )


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message (Spark's carry Java traces)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _uri_format(uri: str) -> str:
    """The format of an object-store URI by its suffix; Parquet without one."""
    suffix = Path(urlparse(uri).path).suffix.lower()
    if not suffix:
        return "parquet"
    if suffix not in FORMATS:
        raise EventLogError(
            uri, f"unsupported file type '{suffix}' (use .parquet, .csv or .ndjson)"
        )
    return FORMATS[suffix]


def _read(spark: SparkSession, source: EventSource) -> DataFrame:
    """The log as a Spark DataFrame, with a log-order column.

    Files keep their order (path, then the row's place in it: Spark's
    ``_metadata`` and its row id, increasing within a file split); a table
    has only its partitions' order, so rows of one user at the same instant
    may tie differently than in the Polars engine.
    """
    from pyspark.sql import functions as sf

    spec = source.spec
    if spec.startswith(TABLE_PREFIX):
        frame = spark.table(spec.removeprefix(TABLE_PREFIX))
        return frame.withColumn(ORDER_COLUMN, sf.monotonically_increasing_id())
    if source.files:
        fmt = single_format(source.files, ENGINE)
        paths = [str(f) for f in source.files]
    else:
        fmt, paths = _uri_format(spec), [spec]
    if fmt == "parquet":
        frame = spark.read.parquet(*paths)
    elif fmt == "csv":  # every column as text, as the DuckDB engine reads it
        frame = spark.read.csv(paths, header=True, mode="FAILFAST")
    else:
        frame = spark.read.json(paths, mode="FAILFAST")
    order = sf.struct(
        sf.col("_metadata.file_path"),
        sf.col("_metadata.file_block_start"),
        sf.monotonically_increasing_id(),
    )
    return frame.withColumn(ORDER_COLUMN, order)


class _MissingColumnError(Exception):
    """A required column the log lacks (turned into the engine's named error)."""


def _with_contract_columns(frame: DataFrame, columns: dict[str, str]) -> DataFrame:
    """The log with NULL for optional contract columns it lacks.

    Raises:
        EventLogError: a required column is missing (a remote log; a local one
            is named by the Polars scanner).
    """
    from pyspark.sql import functions as sf

    present = set(frame.columns)
    for name in REQUIRED:
        if columns.get(name, name) not in present:
            raise _MissingColumnError(columns.get(name, name))
    for name in CONTRACT_COLUMNS:
        if columns.get(name, name) not in present:
            frame = frame.withColumn(
                columns.get(name, name), sf.lit(None).cast("string")
            )
    return frame


def _renamed(view: str, columns: dict[str, str]) -> exp.Select:
    """The log's contract columns under the contract's names."""
    names = ("timestamp", "user_id", "event", "experiment_id", "variant", "value")
    return exp.select(
        *[col(columns.get(c, c)).as_(c, quoted=True) for c in names]
    ).from_(view)


@contextmanager
def _views(spark: SparkSession) -> Iterator[list[str]]:
    """Temporary views made during a run, dropped after it."""
    made: list[str] = []
    try:
        yield made
    finally:
        for name in made:
            spark.catalog.dropTempView(name)


def _run_stages(
    spark: SparkSession, query: exp.Query, prefix: str, made: list[str]
) -> DataFrame:
    """The query with each ``WITH`` stage as a view; those read twice materialized.

    The log itself (``src``, ``ev``) is re-read from its files rather than held.
    """
    stages = [(cte.alias, cte.this) for cte in query.args["with_"].expressions]
    body = query.copy()
    body.set("with_", None)
    names = {name for name, _ in stages}

    def renamed(tree: exp.Expression) -> exp.Expression:
        def view(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Table) and not node.db and node.name in names:
                return exp.to_table(prefix + node.name).as_(
                    node.alias or node.name, quoted=False
                )
            return node

        return tree.copy().transform(view)

    for i, (name, stage) in enumerate(stages):
        later = [s for _, s in stages[i + 1 :]] + [body]
        reads = sum(
            1
            for tree in later
            for table in tree.find_all(exp.Table)
            if table.name == name
        )
        frame = spark.sql(renamed(stage).sql(DIALECT))
        if reads > 1 and name not in ("src", "ev"):
            frame = frame.localCheckpoint()
        frame.createOrReplaceTempView(prefix + name)
        made.append(prefix + name)
    return spark.sql(renamed(body).sql(DIALECT))


def _collect(frame: DataFrame) -> pl.DataFrame:
    """A small Spark result as a Polars frame (through Arrow)."""
    return pl.from_arrow(frame.toArrow())  # type: ignore[return-value]


def _remote_rule_error(
    spark: SparkSession,
    table: exp.Select,
    rule: tuple[str, int],
    catalog: Catalog,
    label: str,
) -> EventLogError:
    """A remote log's first broken rule, with its first offending rows."""
    name, count = rule
    column, message, _ = log_rules(pl.lit(True))[name]
    shown = list(dict.fromkeys([column, "event", "user_id"]))
    rows = _collect(
        spark.sql(
            exp.select(*[col(c) for c in shown])
            .from_(table.subquery("t"))
            .where(sql_rules(nps_events(catalog))[name])
            .limit(EXAMPLE_ROWS)
            .sql(DIALECT)
        )
    )
    lines = "\n".join(
        "  " + ", ".join(f"{k}={v!r}" for k, v in row.items())
        for row in rows.iter_rows(named=True)
    )
    return EventLogError(
        label, f"{message}: {count:,} row(s) [{name}]", column=column, rows=lines
    )


def summarize_spark(
    source: EventSource,
    experiments: Sequence[Experiment],
    catalog: Catalog,
    *,
    as_of: dt.date | None = None,
    target: SparkTarget | None = None,
    with_health: bool = False,
) -> Summaries:
    """Reduce the log with Spark to the same summaries as the Polars engine.

    With ``with_health`` (and no ``as_of``), also the log's health and its row
    ledger (:mod:`cxlab.sql.ledger`), as the Polars engine's ``log_health``.

    Raises:
        EventLogError: bad input (a local log named by the Polars scanner).
        UnsupportedMetricError: a metric type the SQL cannot express yet.
        InputError: PySpark or Java missing, or Spark unreachable.
    """
    from pyspark.errors import PySparkException

    prefix = f"cxlab_{uuid.uuid4().hex[:12]}_"
    query = build_reduction(
        experiments,
        catalog,
        table=prefix + "log",
        as_of=as_of,
        log_order=col(ORDER_COLUMN),
        engine=ENGINE,
    )  # first: a metric the SQL cannot express is refused before Spark starts
    health_query = None
    if with_health and as_of is None:
        health_query = build_health(
            experiments,
            catalog,
            table=prefix + "log",
            log_order=col(ORDER_COLUMN),
            engine=ENGINE,
        )
    spark = spark_session(target or SparkTarget.of())
    columns = dict(experiments[0].columns)
    local = bool(source.files)

    def fault(problem: str) -> EventLogError:
        if local:
            return diagnose(source, experiments, catalog, as_of, problem, ENGINE)
        return EventLogError(source.label, f"the {ENGINE} engine: {problem}")

    with _views(spark) as made:
        try:
            frame = _with_contract_columns(_read(spark, source), columns)
            frame.createOrReplaceTempView(prefix + "log")
            made.append(prefix + "log")
            renamed = _renamed(prefix + "log", columns)
            counts = _collect(
                spark.sql(
                    rule_counts_query(renamed.subquery("t"), nps_events(catalog)).sql(
                        DIALECT
                    )
                )
            ).row(0, named=True)
            bad = broken_rules(counts)
            if bad and not local:
                first = next(iter(bad.items()))
                raise _remote_rule_error(spark, renamed, first, catalog, source.label)
            if bad or not counts["rows"]:
                raise fault(", ".join(bad) or "the log has no rows")
            changes = check_changes(
                _collect(_run_stages(spark, query, prefix, made)), ENGINE
            )
            health = None
            if health_query is not None:
                health = _collect(
                    _run_stages(spark, health_query, prefix + "health_", made)
                )
        except _MissingColumnError as exc:
            raise fault(f"no required column '{exc}'") from None
        except PySparkException as exc:
            raise fault(_first_line(exc)) from None
    unknown = undeclared_variants(changes, experiments)
    if unknown.height:
        pairs = ", ".join(f"{e}/{v}" for e, v in unknown.iter_rows())
        raise fault(f"variant(s) the configs do not declare: {pairs}")
    return engine_summaries(
        changes,
        counts,
        health,
        experiments,
        catalog,
        as_of=as_of,
        fingerprint=source.fingerprint,
    )
