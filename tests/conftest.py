"""Shared fixtures: a tiny lab (catalog + experiment YAML + event log) in tmp_path.

Every engine test builds its own small log by hand; ``Lab`` only writes the files.
Logs are lists of dicts made with ``Lab.event``; columns missing from a row are null.
``run_cli`` and ``cli`` run the command line in this process.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import os
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:  # plain `pytest` (not `python -m pytest`) from any folder
    sys.path.insert(0, ROOT)

from hypothesis import settings  # noqa: E402

from cxlab.cli import main  # noqa: E402
from cxlab.config import load_catalog, load_experiment  # noqa: E402

# Property tests draw the same examples on every run: a test that fails at random
# is a defect. A found failure is kept as an explicit test.
settings.register_profile("cxlab", derandomize=True)
settings.load_profile("cxlab")
from cxlab.events import resolve_source  # noqa: E402
from cxlab.summaries import summarize  # noqa: E402

# One metric of every type and aggregate, plus window_days and filter.
CATALOG = """\
conversion:
  type: proportion
  event: order
  direction: increase
revenue:
  type: mean
  event: order
  aggregate: sum
  direction: increase
orders:
  type: mean
  event: order
  aggregate: count
  direction: increase
max_order:
  type: mean
  event: order
  aggregate: max
  direction: increase
last_order:
  type: mean
  event: order
  aggregate: last
  direction: increase
nps:
  type: nps
  event: nps_response
  direction: increase
contacts_per_order:
  type: ratio
  numerator: {event: contact, aggregate: count}
  denominator: {event: order, aggregate: count}
  direction: decrease
phone_contact_rate:
  type: proportion
  event: contact
  filter: {channel: phone}
  direction: decrease
conversion_2d:
  type: proportion
  event: order
  window_days: 2
  direction: increase
contact_reasons:
  type: categorical
  event: contact
  category: reason
  direction: decrease
time_to_resolution:
  type: time_to_event
  start_event: contact
  end_event: contact_resolved
  horizon_hours: 72
  direction: decrease
"""

# Experiment "exp": 2026-10-01 .. 2026-10-05 (five whole UTC days), 50/50.
EXPERIMENT: dict[str, Any] = {
    "id": "exp",
    "start": "2026-10-01",
    "end": "2026-10-05",
    "variants": [
        {"id": "control", "weight": 0.5},
        {"id": "treatment", "weight": 0.5},
    ],
    "primary_metric": "conversion",
}


def _utc(text: str) -> dt.datetime:
    """An ISO-8601 text as an aware UTC datetime (naive means UTC)."""
    stamp = dt.datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=dt.UTC)
    return stamp.astimezone(dt.UTC)


class Lab:
    """A folder with ``experiments/metrics.yaml``, experiment configs and logs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.experiments_dir = root / "experiments"
        self.experiments_dir.mkdir(parents=True, exist_ok=True)
        self.catalog_path = self.experiments_dir / "metrics.yaml"
        self.catalog_path.write_text(CATALOG)

    @staticmethod
    def event(
        timestamp: str,
        user_id: str | int,
        event: str,
        variant: str | None = None,
        value: float | str | None = None,
        experiment_id: str | None = None,
        **dimensions: Any,
    ) -> dict[str, Any]:
        """One log row; exposures default to experiment ``exp``."""
        if event == "exposure" and experiment_id is None:
            experiment_id = "exp"
        return {
            "timestamp": timestamp,
            "user_id": user_id,
            "event": event,
            "experiment_id": experiment_id,
            "variant": variant,
            "value": value,
            **dimensions,
        }

    def experiment(self, **fields: Any) -> Path:
        """Write ``experiments/<id>.yaml``: the default experiment with overrides."""
        data = {**EXPERIMENT, **fields}
        data = {k: v for k, v in data.items() if v is not None}
        path = self.experiments_dir / f"{data['id']}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def log(self, rows: list[dict[str, Any]], name: str = "events.csv") -> Path:
        """Write rows as CSV, Parquet (UTC datetimes) or NDJSON, by the suffix."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = pl.DataFrame(rows, infer_schema_length=None)
        if name.endswith(".parquet"):
            stamps = [_utc(row["timestamp"]) for row in rows]
            frame.with_columns(
                pl.Series("timestamp", stamps, pl.Datetime("us", "UTC"))
            ).write_parquet(path)
        elif name.endswith(".csv"):
            frame.write_csv(path)
        else:
            frame.write_ndjson(path)
        return path

    def load(self, path: Path | None = None):
        """The catalog and an experiment (default: the one of ``experiment()``)."""
        catalog = load_catalog(self.catalog_path)
        return load_experiment(path or self.experiments_dir / "exp.yaml", catalog), (
            catalog
        )

    def summarize(
        self,
        rows: list[dict[str, Any]],
        *,
        as_of: dt.date | None = None,
        name: str = "events.csv",
        **fields: Any,
    ):
        """Write the log and the experiment, and summarise it."""
        exp, catalog = self.load(self.experiment(**fields))
        return summarize(
            resolve_source(self.log(rows, name)), [exp], catalog, as_of=as_of
        )


def last_row(summaries, metric: str, variant: str, day: str | None = None) -> dict:
    """The cumulative row of (metric, variant) on ``day`` (default: the as-of day)."""
    rows = summaries.daily.filter(
        (pl.col("metric") == metric) & (pl.col("variant") == variant)
    ).sort("day")
    if day is not None:
        rows = rows.filter(pl.col("day") == dt.date.fromisoformat(day))
    assert rows.height, f"no daily row for {metric}/{variant}/{day}"
    return rows.row(-1, named=True)


def run_cli(*args: str) -> tuple[int, str, str]:
    """``python -m cxlab ARGS`` in this process: exit code, standard output, error."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def cli(*args: str) -> str:
    """The command line's standard output; it must exit 0 (else its error shows)."""
    code, out, err = run_cli(*args)
    assert code == 0, err
    return out


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    """A fresh lab in tmp_path."""
    return Lab(tmp_path)


@pytest.fixture(scope="session")
def make_lab():
    """The Lab class, for hypothesis tests that need a fresh folder per example."""
    return Lab


@pytest.fixture(scope="session")
def row_of():
    """``row_of(summaries, metric, variant, day=None)``: one cumulative daily row."""
    return last_row


@pytest.fixture(scope="session")
def spark():
    """One Spark session for the whole run, the one the spark engine reuses.

    Local (``local[*]``) unless ``CXLAB_SPARK_MASTER`` or ``CXLAB_SPARK_REMOTE``
    says otherwise. Without PySpark the Spark tests are skipped, except in CI,
    where .ci/run installs it and a missing install must fail.
    """
    if importlib.util.find_spec("pyspark") is None and not os.environ.get("CI"):
        pytest.skip("PySpark is not installed: pip install -r requirements-spark.txt")
    from pyspark.sql import functions as sf

    from cxlab.sql.spark_engine import spark_session
    from cxlab.sql.target import SparkTarget

    session = spark_session(SparkTarget.of())
    # PySpark raises the recursion limit on its first withColumn: here, not
    # inside a hypothesis test (which warns that it cannot reset it).
    session.range(1).withColumn("one", sf.lit(1))
    yield session
    session.stop()
