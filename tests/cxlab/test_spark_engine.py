"""The Spark engine equals the Polars engine: sufficient statistics and JSON.

One local Spark session serves the whole run (the ``spark`` fixture in
tests/conftest.py); the tests that start Spark are marked ``spark``
(``pytest -m spark`` selects them). The metrics and experiments are whatever the
SQL reduction supports today, found by asking it: a metric type the SQL learns
is exercised on Spark without editing this file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import shutil
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sql_check import every_bucket, write_folder
from test_sql_engine import EXPERIMENTS, assert_equal_summaries, cli, logs, sql_ready

from cxlab.cli import main
from cxlab.config import load_catalog, load_experiment, load_experiments
from cxlab.errors import InputError
from cxlab.events import NPS_RULE, RULES, resolve_source
from cxlab.sql.checks import sql_rules
from cxlab.sql.reduction import build_reduction
from cxlab.sql.spark_engine import (
    SparkTarget,
    spark_session,
    spark_source,
    summarize_spark,
)
from cxlab.sql.values import UnsupportedMetricError
from cxlab.summaries import summarize

spark_test = pytest.mark.spark


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def sql_metrics(lab_class, *, cuped: bool) -> list[str]:
    """The test catalog's metrics the SQL reduction runs (with CUPED, if asked)."""
    with tempfile.TemporaryDirectory() as folder:
        lab = lab_class(Path(folder))
        exp, catalog = lab.load(lab.experiment())
        ready = []
        for metric in catalog.metrics:
            one = dataclasses.replace(
                exp, secondary_metrics=(metric.id,), cuped_days=2 if cuped else 0
            )
            try:
                build_reduction([one], catalog)
            except UnsupportedMetricError:
                continue
            ready.append(metric.id)
    return ready


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cxlab.sample import write_sample

    path = tmp_path_factory.mktemp("sample") / "events.parquet"
    return write_sample(path, seed=7, n_users=3_000)


@pytest.fixture(scope="module")
def ready_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled configs the SQL reduction runs today."""
    folder = tmp_path_factory.mktemp("configs")
    catalog = load_catalog(EXPERIMENTS / "metrics.yaml")
    shutil.copy(EXPERIMENTS / "metrics.yaml", folder / "metrics.yaml")
    for e in sql_ready(load_experiments(EXPERIMENTS, catalog), catalog):
        shutil.copy(e.source, folder / Path(e.source).name)
    return folder


def test_sql_rules_are_the_polars_rules() -> None:
    assert set(sql_rules(["nps_response"])) == {*RULES, NPS_RULE}


def test_tables_and_uris_are_refused_by_the_local_engines(tmp_path: Path) -> None:
    for engine in ("polars", "duckdb"):
        code, _, err = run(
            "analyze",
            "--all",
            "--events",
            "table:db.events",
            "--experiments",
            str(EXPERIMENTS),
            "--engine",
            engine,
        )
        assert code == 2
        assert (
            f"table:db.events: catalog tables and object-store URIs are read by "
            f"the spark engine only, not by {engine} (use --engine spark)"
        ) in err


def test_a_master_and_a_remote_together_are_refused() -> None:
    with pytest.raises(InputError, match="not both"):
        SparkTarget.of("local[1]", "sc://localhost:15002")


def test_spark_flags_win_over_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("CXLAB_SPARK_REMOTE", "sc://spark:15002")
    monkeypatch.delenv("CXLAB_SPARK_MASTER", raising=False)
    assert SparkTarget.of() == SparkTarget(remote="sc://spark:15002")
    assert SparkTarget.of(master="yarn") == SparkTarget(master="yarn")
    assert SparkTarget.of().label == "sc://spark:15002"


def test_missing_pyspark_is_named_with_the_install_command(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(InputError, match=r"needs PySpark .*requirements-spark\.txt"):
        spark_session(SparkTarget(master="local[1]"))


def test_missing_java_is_named_with_the_debian_package(monkeypatch) -> None:
    pytest.importorskip("pyspark")
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(InputError, match="openjdk-17-jre-headless"):
        spark_session(SparkTarget(master="local[1]"))


@spark_test
def test_spark_json_is_byte_identical_to_polars_on_the_sample(
    spark, sample: Path, ready_folder: Path
) -> None:
    args = ["analyze", "--all", "--events", str(sample)]
    args += ["--experiments", str(ready_folder)]
    polars_json = cli(*args, "--engine", "polars")
    assert polars_json.count('"experiment"') == len(list(ready_folder.glob("*-*.yaml")))
    assert cli(*args, "--engine", "spark") == polars_json


@spark_test
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_check_json_is_byte_identical_to_polars_on_a_folder(spark, lab, fmt) -> None:
    """Every ledger bucket (test_sql_check.every_bucket), three files in a folder."""
    lab.experiment(secondary_metrics=["revenue", "conversion_2d"])
    folder = write_folder(lab, every_bucket(lab), fmt, parts=3)
    args = ["check", "--events", str(folder), "--format", "json"]
    args += ["--experiments", str(lab.experiments_dir)]
    polars_json = cli(*args, "--engine", "polars")
    assert len(json.loads(polars_json)["ledger"]["examples"]) == 8
    assert cli(*args, "--engine", "spark") == polars_json


def lab_rows(lab) -> list[dict]:
    e = lab.event
    return [
        e("2026-10-01T08:00:00Z", "u1", "exposure", "control", platform="ios"),
        e("2026-10-01T09:00:00Z", "u1", "order", value=12.5),
        e("2026-10-02T08:00:00Z", "u2", "exposure", "treatment", platform="web"),
        e("2026-10-02T10:00:00Z", "u2", "order", value=30.0),
        e("2026-10-03T10:00:00Z", "u2", "order", value=5.0),
        e("2026-10-03T11:00:00Z", "u3", "exposure", "treatment", platform="web"),
        e("2026-10-03T12:00:00Z", "u3", "nps_response", value=9),
    ]


@spark_test
def test_a_catalog_table_gives_the_polars_summaries(spark, lab) -> None:
    path = lab.experiment(secondary_metrics=["revenue", "nps"], dimensions=["platform"])
    exp, catalog = lab.load(path)
    log = lab.log(lab_rows(lab), "events.parquet")
    spark.read.parquet(str(log)).createOrReplaceTempView("cxlab_test_events")
    from_table = summarize_spark(
        spark_source("table:cxlab_test_events"), [exp], catalog
    )
    assert_equal_summaries(summarize(resolve_source(log), [exp], catalog), from_table)
    assert from_table.log.rows == 7


@spark_test
def test_a_bad_row_of_a_table_is_named_with_its_column_and_rows(spark, lab) -> None:
    rows = lab_rows(lab)
    rows[3]["value"] = "lots"
    lab.experiment(secondary_metrics=["revenue"])
    lab.log(rows, "events.csv")
    spark.read.csv(str(lab.root / "events.csv"), header=True).createOrReplaceTempView(
        "cxlab_bad_events"
    )
    common = ["analyze", "exp", "--experiments", str(lab.experiments_dir)]
    code, out, err = run(*common, "--events", "table:cxlab_bad_events")
    assert (code, out) == (2, "")
    assert err.startswith(
        "error: table:cxlab_bad_events: value is not a number: 1 row(s) "
        "[value_not_numeric] (column 'value')\nFirst offending rows:\n"
        "  value='lots', event='order', user_id='u2'"
    )


@spark_test
def test_a_missing_table_is_named(spark, lab) -> None:
    lab.experiment()
    code, out, err = run(
        "analyze",
        "exp",
        "--experiments",
        str(lab.experiments_dir),
        "--events",
        "table:cxlab_no_such_table",
    )
    assert (code, out) == (2, "")
    assert err.startswith("error: table:cxlab_no_such_table: the spark engine: ")
    assert "TABLE_OR_VIEW_NOT_FOUND" in err
    assert len(err.splitlines()) == 1  # no Java trace


@spark_test
def test_a_bad_local_log_gets_the_polars_engines_error(spark, lab) -> None:
    rows = lab_rows(lab)
    rows[3]["value"] = "lots"
    lab.experiment(secondary_metrics=["revenue"])
    log = lab.log(rows, "events.csv")
    common = ["analyze", "exp", "--experiments", str(lab.experiments_dir)]
    common += ["--events", str(log), "--engine"]
    polars = run(*common, "polars")
    assert polars[0] == 2
    assert "value is not a number" in polars[2]
    assert run(*common, "spark") == polars


@st.composite
def every_type_logs(draw) -> list[dict]:
    """The random logs of test_sql_engine, with what the other metric types read.

    Each row gets a contact ``reason`` (categorical metrics); some contacts get a
    ``contact_resolved`` event hours later, at half a minute past (the drawn rows
    are at whole minutes, so no two rows tie).
    """
    rows = draw(logs())
    out = []
    for row in rows:
        out.append({**row, "reason": draw(st.sampled_from(["late", "damaged", None]))})
        if row["event"] == "contact" and draw(st.booleans()):
            moment = dt.datetime.fromisoformat(row["timestamp"])
            hours = draw(st.integers(0, 80))
            resolved = moment + dt.timedelta(hours=hours, seconds=30)
            out.append(
                {
                    **row,
                    "timestamp": resolved.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "event": "contact_resolved",
                    "reason": None,
                }
            )
    return out


@spark_test
@settings(
    max_examples=6,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    rows=every_type_logs(),
    cuped=st.booleans(),
    as_of=st.sampled_from([None, dt.date(2026, 10, 3)]),
    fmt=st.sampled_from(["events.csv", "events.parquet", "events.ndjson"]),
)
def test_spark_equals_polars_on_random_logs(
    spark, make_lab, rows, cuped, as_of, fmt
) -> None:
    metrics = sql_metrics(make_lab, cuped=cuped)
    assert len(metrics) >= (5 if cuped else 8)  # today: 5 with CUPED, 8 without
    with tempfile.TemporaryDirectory() as folder:
        lab = make_lab(Path(folder))
        path = lab.experiment(
            secondary_metrics=metrics,
            dimensions=["platform"],
            cuped_days=2 if cuped else 0,
        )
        catalog = load_catalog(lab.catalog_path)
        exp = load_experiment(path, catalog)
        source = resolve_source(lab.log(rows, fmt))
        assert_equal_summaries(
            summarize(source, [exp], catalog, as_of=as_of),
            summarize_spark(source, [exp], catalog, as_of=as_of),
        )
