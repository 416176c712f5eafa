"""The Spark engine equals the Polars engine: sufficient statistics and JSON.

One local Spark session serves the whole run (the ``spark`` fixture in
tests/conftest.py); the tests that start Spark are marked ``spark``
(``pytest -m spark`` selects them); one runs the CLI against a real Spark
Connect server started by the tests (the ``spark_connect`` fixture). The
metrics and experiments are whatever the SQL reduction supports today, found by
asking it: a metric type the SQL learns is exercised on Spark without editing
this file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sql_check import every_bucket, write_folder
from test_sql_engine import EXPERIMENTS, assert_equal_summaries, logs, sql_ready

from cxlab.config import load_catalog, load_experiment, load_experiments
from cxlab.errors import InputError
from cxlab.events import NPS_RULE, RULES, resolve_source
from cxlab.sql import spark_engine
from cxlab.sql.checks import sql_rules
from cxlab.sql.reduction import build_reduction
from cxlab.sql.spark_engine import spark_session, spark_source, summarize_spark
from cxlab.sql.target import SparkTarget
from cxlab.sql.values import UnsupportedMetricError
from cxlab.summaries import summarize
from tests.conftest import cli, run_cli

spark_test = pytest.mark.spark
ROOT = Path(__file__).resolve().parents[2]
CONNECT_STARTUP_S = 600  # a shared 2-core machine: starting Spark can take minutes


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
        code, _, err = run_cli(
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


def free_port() -> int:
    """A TCP port nothing listens at (the system's pick, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_spark_connect_server_is_named_without_its_token() -> None:
    port = free_port()
    with pytest.raises(InputError) as caught:
        spark_session(SparkTarget(remote=f"sc://127.0.0.1:{port}/;token=s3cret"))
    assert str(caught.value) == (
        f"the spark engine cannot reach the Spark Connect server at "
        f"sc://127.0.0.1:{port}: nothing answered within 5 s; check that the "
        "server is running, its host and port (default 15002) and the network "
        "in between"
    )


def test_the_cli_names_an_unreachable_server_with_exit_code_2(lab) -> None:
    pytest.importorskip("pyspark")
    lab.experiment()
    url = f"sc://127.0.0.1:{free_port()}"
    code, out, err = run_cli(
        "analyze",
        "exp",
        "--experiments",
        str(lab.experiments_dir),
        "--events",
        str(lab.log(lab_rows(lab), "events.parquet")),
        "--engine",
        "spark",
        "--spark-remote",
        url,
    )
    assert (code, out) == (2, "")
    assert err.startswith(
        f"error: the spark engine cannot reach the Spark Connect server at {url}: "
    )
    assert len(err.splitlines()) == 1


def test_an_unreachable_spark_master_is_named() -> None:
    port = free_port()
    with pytest.raises(InputError, match=r"cannot reach the Spark master at spark://"):
        spark_session(SparkTarget(master=f"spark://127.0.0.1:{port}"))


def test_spark_endpoints_have_the_default_ports() -> None:
    assert SparkTarget(remote="sc://spark/;token=x").endpoints == [("spark", 15002)]
    assert SparkTarget(master="spark://a:7000,b").endpoints == [
        ("a", 7000),
        ("b", 7077),
    ]
    assert SparkTarget(master="yarn").endpoints == []
    with pytest.raises(InputError, match="not HOST:PORT with a port number"):
        spark_session(SparkTarget(remote="sc://spark:port"))


def no_session_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a new process: no session made by an earlier test is reused."""
    monkeypatch.setattr(spark_engine, "_SESSIONS", {})


def test_missing_pyspark_is_named_with_the_install_command(monkeypatch) -> None:
    no_session_yet(monkeypatch)
    for name in [m for m in sys.modules if m.split(".")[0] == "pyspark"] or ["pyspark"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(InputError, match=r"needs PySpark .*requirements-spark\.txt"):
        spark_session(SparkTarget(master="local[1]"))


def test_missing_java_is_named_with_the_debian_package(monkeypatch) -> None:
    pytest.importorskip("pyspark")
    no_session_yet(monkeypatch)
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
def test_check_on_a_catalog_table_equals_polars_on_the_same_rows(spark, lab) -> None:
    """Every ledger bucket (test_sql_check.every_bucket) read as a catalog table.

    The JSON is byte-identical to the polars engine's on the same rows as a file,
    but for the two fields that name the source: ``source`` (the table, not the
    file's path) and ``files`` (0: a table is read through the catalog, not from
    files this process lists).
    """
    lab.experiment(secondary_metrics=["revenue", "conversion_2d"])
    log = lab.log(every_bucket(lab), "events.parquet")
    spark.read.parquet(str(log)).createOrReplaceTempView("cxlab_every_bucket")
    args = ["check", "--format", "json", "--experiments", str(lab.experiments_dir)]
    polars_json = cli(*args, "--events", str(log), "--engine", "polars")
    assert json.loads(polars_json)["ledger"]["rows"] == 15
    assert len(json.loads(polars_json)["ledger"]["examples"]) == 8
    the_file = f'"source": "{log}",\n  "files": 1,\n'
    the_table = '"source": "table:cxlab_every_bucket",\n  "files": 0,\n'
    assert polars_json.startswith("{\n  " + the_file)
    spark_json = cli(*args, "--events", "table:cxlab_every_bucket", "--engine", "spark")
    assert spark_json == polars_json.replace(the_file, the_table, 1)


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
    code, out, err = run_cli(*common, "--events", "table:cxlab_bad_events")
    assert (code, out) == (2, "")
    assert err.startswith(
        "error: table:cxlab_bad_events: value is not a number: 1 row(s) "
        "[value_not_numeric] (column 'value')\nFirst offending rows:\n"
        "  value='lots', event='order', user_id='u2'"
    )


@spark_test
def test_a_missing_table_is_named(spark, lab) -> None:
    lab.experiment()
    code, out, err = run_cli(
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
    polars = run_cli(*common, "polars")
    assert polars[0] == 2
    assert "value is not a number" in polars[2]
    assert run_cli(*common, "spark") == polars


@pytest.fixture(scope="module")
def spark_connect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Spark Connect server on a free port, its ``sc://`` URL; stopped after.

    Started as PySpark's sbin/start-connect-server.sh does (spark-submit with
    the server's class, which PySpark's jars/ carry), in the foreground, local
    with one core and a small driver; its log goes to a temporary folder. The
    clients are CLI processes: a Spark Connect session in this process would
    switch PySpark into Connect mode for the local session's tests too.
    """
    if importlib.util.find_spec("pyspark") is None and not os.environ.get("CI"):
        pytest.skip("PySpark is not installed: pip install -r requirements-spark.txt")
    import pyspark

    home = Path(pyspark.__file__).parent
    port, folder = free_port(), tmp_path_factory.mktemp("spark-connect")
    conf = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.local.dir": str(folder),
    }
    command = [str(home / "bin" / "spark-submit"), "--master", "local[1]"]
    command += ["--driver-memory", "1g", "--name", "Spark Connect server"]
    command += ["--class", "org.apache.spark.sql.connect.service.SparkConnectServer"]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    log = folder / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            command,
            env={**os.environ, "SPARK_HOME": str(home)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as one
        )
    try:
        deadline = time.monotonic() + CONNECT_STARTUP_S
        while not _listening(port):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no Spark Connect server: {log.read_text()[-3000:]}")
            time.sleep(1)
        yield f"sc://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return True
    except OSError:
        return False


def cli_process(*args: str) -> str:
    """The CLI's standard output, run as its own process (exit code 0 required)."""
    done = subprocess.run(
        [sys.executable, "-m", "cxlab", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@spark_test
def test_a_spark_connect_server_gives_the_polars_json(spark_connect, lab) -> None:
    """``analyze`` and ``check`` through a real Spark Connect server."""
    lab.experiment(secondary_metrics=["revenue", "nps"], dimensions=["platform"])
    log = lab.log(lab_rows(lab), "events.parquet")
    analyze = ["analyze", "exp", "--experiments", str(lab.experiments_dir)]
    analyze += ["--events", str(log)]
    polars_json = cli(*analyze, "--engine", "polars")
    assert '"experiment": "exp"' in polars_json
    remote = ["--engine", "spark", "--spark-remote", spark_connect]
    assert cli_process(*analyze, *remote) == polars_json

    lab.experiment(secondary_metrics=["revenue", "conversion_2d"])  # replaces it
    folder = write_folder(lab, every_bucket(lab), "parquet", parts=2)
    check = ["check", "--events", str(folder), "--format", "json"]
    check += ["--experiments", str(lab.experiments_dir)]
    polars_json = cli(*check, "--engine", "polars")
    assert len(json.loads(polars_json)["ledger"]["examples"]) == 8
    assert cli_process(*check, *remote) == polars_json


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
