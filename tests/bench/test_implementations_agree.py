"""The benchmark's DuckDB and pandas reductions equal the engine's ``daily`` table.

A ~20k-event log from bench/generate_log.py (10 experiments, 5 metrics, multiple
exposures, out-of-window exposures), as Parquet and as CSV. No timing here: speed
is measured by ``python bench/compare.py``, never asserted in tests.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import compare  # noqa: E402
import impl_duckdb  # noqa: E402
import impl_pandas  # noqa: E402
from generate_log import METRICS, generate  # noqa: E402

from cxlab.config import load_catalog, load_experiments  # noqa: E402
from cxlab.events import resolve_source  # noqa: E402
from cxlab.summaries import summarize  # noqa: E402

EVENTS = 20_000


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(EVENTS, tmp_path_factory.mktemp("bench"), csv=True)


@pytest.fixture(scope="module")
def reference(log: Path) -> Path:
    catalog = load_catalog(log / "experiments" / "metrics.yaml")
    experiments = load_experiments(log / "experiments", catalog)
    daily = summarize(
        resolve_source(log / "events.parquet"), experiments, catalog
    ).daily
    assert daily.height > 0
    assert daily["n"].max() > 0
    nps = daily.filter(pl.col("metric") == "nps")
    assert nps["sum_x"].sum() > 0  # promoters
    assert nps["sum_y"].sum() > 0  # detractors
    out = log / "reference.parquet"
    daily.write_parquet(out)
    return out


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_duckdb_equals_engine(log: Path, reference: Path, fmt: str) -> None:
    out = log / f"duckdb-{fmt}.parquet"
    table = impl_duckdb.reduce(log / f"events.{fmt}", log / "experiments")
    pl.from_arrow(table).write_parquet(out)
    assert compare.check(reference, out) == "ok"


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_pandas_equals_engine(log: Path, reference: Path, fmt: str) -> None:
    out = log / f"pandas-{fmt}.parquet"
    impl_pandas.reduce(log / f"events.{fmt}", log / "experiments").to_parquet(out)
    assert compare.check(reference, out) == "ok"


def test_engine_on_csv_equals_engine_on_parquet(log: Path, reference: Path) -> None:
    catalog = load_catalog(log / "experiments" / "metrics.yaml")
    experiments = load_experiments(log / "experiments", catalog)
    out = log / "engine-csv.parquet"
    summarize(
        resolve_source(log / "events.csv"), experiments, catalog
    ).daily.write_parquet(out)
    assert compare.check(reference, out) == "ok"


def test_check_catches_a_difference(log: Path, reference: Path) -> None:
    out = log / "perturbed.parquet"
    daily = pl.read_parquet(reference)
    daily.with_columns(
        pl.when(pl.int_range(pl.len()) == 7)
        .then(pl.col("sum_xx") * (1 + 1e-6) + 1e-3)
        .otherwise(pl.col("sum_xx"))
        .alias("sum_xx")
    ).write_parquet(out)
    assert compare.check(reference, out).startswith("MISMATCH")
    daily.head(daily.height - 1).write_parquet(out)
    assert compare.check(reference, out).startswith("MISMATCH")


@pytest.mark.parametrize(
    ("answers", "promoters"), [((7.0, 9.0), 1.0), ((9.0, 7.0), 0.0)]
)
def test_nps_ties_in_time_go_to_the_later_row(
    tmp_path: Path, answers: tuple[float, float], promoters: float
) -> None:
    """Two answers at the same instant: the later row of the log is the last one."""
    folder = tmp_path / "experiments"
    folder.mkdir()
    (folder / "metrics.yaml").write_text(yaml.safe_dump(METRICS))
    config = {
        "id": "tie",
        "start": dt.date(2026, 9, 1),
        "end": dt.date(2026, 9, 3),
        "variants": [{"id": "control", "weight": 0.5}, {"id": "b", "weight": 0.5}],
        "primary_metric": "nps",
    }
    (folder / "tie.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    at = dt.datetime(2026, 9, 2, 10, tzinfo=dt.UTC)
    log = pl.DataFrame(
        {
            "timestamp": [at - dt.timedelta(hours=1), at, at],
            "user_id": ["u1", "u1", "u1"],
            "event": ["exposure", "nps_response", "nps_response"],
            "experiment_id": ["tie", None, None],
            "variant": ["control", None, None],
            "value": [None, *answers],
        }
    )
    log.write_parquet(tmp_path / "events.parquet")
    log.write_csv(tmp_path / "events.csv")
    for fmt in ("parquet", "csv"):
        events = tmp_path / f"events.{fmt}"
        frames = {
            "duckdb": pl.from_arrow(impl_duckdb.reduce(events, folder)),
            "pandas": pl.from_pandas(impl_pandas.reduce(events, folder)),
        }
        for name, daily in frames.items():
            last = daily.filter(
                (pl.col("variant") == "control")
                & (pl.col("day") == dt.date(2026, 9, 3))
            )
            assert last.select("n", "sum_x").row(0) == (1, promoters), (name, fmt)
