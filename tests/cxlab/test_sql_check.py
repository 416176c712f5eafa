"""``check`` on the SQL engines: the log health and the row ledger equal Polars'.

The JSON of ``check --format json`` must be byte-identical across the engines:
every count and every example (picked in the Polars engine's order). On the
sample, on a hand-built log whose every bucket is counted by hand, and on random
small logs (hypothesis) with two experiments, exposures to an experiment without
a config, events no metric reads and users never exposed, as a folder of
several Parquet or CSV files. The Spark test is in test_spark_engine.py.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sql_engine import EXPERIMENTS, METRICS, logs

from cxlab.events import resolve_source
from cxlab.sample import write_sample
from cxlab.sql.duckdb_engine import summarize_duckdb
from cxlab.sql.engines import resolve_engine
from cxlab.summaries import at_day
from tests.conftest import cli

SECOND = "exp2"  # a second experiment, 2026-09-29 .. 2026-10-06


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sample") / "events.parquet"
    return write_sample(path, seed=7, n_users=3_000)


def check_json(events: Path, experiments: Path, engine: str) -> str:
    return cli(
        "check",
        "--events",
        str(events),
        "--experiments",
        str(experiments),
        "--format",
        "json",
        "--engine",
        engine,
    )


def write_folder(lab, rows: list[dict], fmt: str, parts: int) -> Path:
    """The rows in ``parts`` files of one folder, in order (part-0, part-1, …).

    One schema for every file (a column empty in one part is still text).
    """
    frame = pl.DataFrame(rows, infer_schema_length=None)
    frame = frame.with_columns(
        pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t == pl.Null
    )
    if fmt == "parquet":
        frame = frame.with_columns(
            pl.col("timestamp").str.to_datetime(time_zone="UTC", time_unit="us")
        )
    folder = lab.root / "log"
    folder.mkdir(parents=True, exist_ok=True)
    parts = min(parts, frame.height)
    size = -(-frame.height // parts)
    for i in range(parts):
        part = frame.slice(i * size, size)
        if fmt == "parquet":
            part.write_parquet(folder / f"part-{i}.parquet")
        else:
            part.write_csv(folder / f"part-{i}.csv")
    return folder


def test_check_is_no_longer_refused_on_the_sql_engines() -> None:
    assert resolve_engine("duckdb") == "duckdb"
    assert resolve_engine("spark") == "spark"
    assert resolve_engine("auto", events="table:db.events") == "spark"


def test_check_json_is_byte_identical_across_engines_on_the_sample(
    sample: Path,
) -> None:
    polars_json = check_json(sample, EXPERIMENTS, "polars")
    report = json.loads(polars_json)
    ledger = report["ledger"]
    assert ledger["used"] + sum(ledger["set_aside"].values()) == ledger["rows"] > 0
    assert len(ledger["examples"]) >= 6
    assert report["set_aside"]["events_before_first_exposure"] > 0
    assert check_json(sample, EXPERIMENTS, "duckdb") == polars_json


def every_bucket(lab) -> list[dict]:
    """Fifteen rows, each bucket of the ledger at least once (see the test)."""
    e = lab.event
    return [
        e("2026-09-30T10:00:00Z", "u1", "order", value=5.0),  # before first exposure
        e("2026-10-01T08:00:00Z", "u1", "exposure", "control"),  # used
        e("2026-10-01T09:00:00Z", "u1", "exposure", "control"),  # repeat
        e("2026-10-01T10:00:00Z", "u1", "order", value=10.0),  # used
        e("2026-10-04T10:00:00Z", "u1", "order", value=3.0),  # used (revenue)
        e("2026-10-07T10:00:00Z", "u1", "order", value=4.0),  # after the end
        e("2026-10-01T11:00:00Z", "u1", "page_view"),  # in no metric
        e("2026-10-02T08:00:00Z", "u2", "exposure", "treatment"),  # two variants
        e("2026-10-03T08:00:00Z", "u2", "exposure", "control"),  # two variants
        e("2026-10-03T09:00:00Z", "u2", "order", value=7.0),  # two variants
        e("2026-09-20T08:00:00Z", "u3", "exposure", "control"),  # outside window
        e("2026-09-21T08:00:00Z", "u3", "order", value=2.0),  # never exposed
        e("2026-10-02T12:00:00Z", "u4", "exposure", "b", experiment_id="x"),  # unknown
        e("2026-10-02T13:00:00Z", "u4", "page_view"),  # never exposed
        e("2026-10-02T14:00:00Z", "u5", "contact"),  # never exposed
    ]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_every_bucket_by_hand_and_equal_json_on_duckdb(lab, fmt: str) -> None:
    lab.experiment(secondary_metrics=["revenue", "conversion_2d"])
    folder = write_folder(lab, every_bucket(lab), fmt, parts=3)
    polars_json = check_json(folder, lab.experiments_dir, "polars")
    report = json.loads(polars_json)
    assert report["files"] == 3
    assert report["ledger"]["rows"] == 15
    assert report["ledger"]["used"] == 3
    assert report["ledger"]["set_aside"] == {
        "unknown_experiment": 1,
        "exposure_outside_window": 1,
        "multiple_exposures": 3,
        "repeat_exposure": 1,
        "user_never_exposed": 3,
        "event_in_no_metric": 1,
        "before_first_exposure": 1,
        "after_window": 1,
    }
    # u3 (2 rows), u4 (2) and u5 (1) are in no experiment; u1's order of 09-30.
    assert report["set_aside"] == {
        "exposure_rows_of_other_experiments": 1,
        "exposure_rows_outside_window": 1,
        "events_of_users_in_no_analysed_experiment": 5,
        "events_before_first_exposure": 1,
    }
    assert report["users"] == 5
    never = report["ledger"]["examples"]["user_never_exposed"]
    assert [(r["user_id"], r["event"]) for r in never] == [
        ("u4", "page_view"),
        ("u5", "contact"),
    ]
    assert check_json(folder, lab.experiments_dir, "duckdb") == polars_json


@st.composite
def two_experiment_logs(draw) -> list[dict]:
    """The random logs of test_sql_engine, plus what ``check`` sorts apart.

    Each exposure is to ``exp``, to :data:`SECOND` or to an experiment without a
    config, and may be seen again an hour later (a repeat, or a second variant);
    a row may bring an order of its user four days later (after ``exp``'s end),
    a page view (read by no metric) or a row of a user never exposed. An added
    row is at a number of seconds past its drawn row's minute that is its own
    kind's, so no two rows tie.
    """
    out = []
    for row in draw(logs()):
        if row["event"] == "exposure":
            row = {**row, "experiment_id": draw(st.sampled_from(["exp", SECOND, "x"]))}
        out.append(row)
        moment = dt.datetime.fromisoformat(row["timestamp"])
        outcome = {"experiment_id": None, "variant": None, "value": None}
        added = {
            "again": (dt.timedelta(hours=1, seconds=10), {}),
            "later": (
                dt.timedelta(days=4, seconds=20),
                {**outcome, "event": "order", "value": 2.0},
            ),
            "page_view": (dt.timedelta(seconds=30), {**outcome, "event": "page_view"}),
            "never": (
                dt.timedelta(seconds=40),
                {**outcome, "user_id": "n" + row["user_id"][1:], "event": "order"},
            ),
        }
        if row["event"] == "exposure":
            variant = draw(st.sampled_from(["control", "treatment"]))
            added["again"][1].update(variant=variant)
        else:
            del added["again"]
        for kind in draw(st.sets(st.sampled_from(sorted(added)), max_size=2)):
            delay, changes = added[kind]
            stamp = (moment + delay).strftime("%Y-%m-%dT%H:%M:%SZ")
            out.append({**row, **changes, "timestamp": stamp})
    return out


@settings(
    max_examples=12,
    derandomize=True,  # the same examples every run
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    rows=two_experiment_logs(),
    fmt=st.sampled_from(["csv", "parquet"]),
    parts=st.integers(1, 3),
)
def test_check_json_equal_on_random_logs(make_lab, rows, fmt, parts) -> None:
    with tempfile.TemporaryDirectory() as folder:
        lab = make_lab(Path(folder))
        lab.experiment(
            start="2026-09-28",
            end="2026-10-02",
            secondary_metrics=METRICS,
            dimensions=["platform"],
        )
        lab.experiment(
            id=SECOND,
            start="2026-09-29",
            end="2026-10-06",
            primary_metric="revenue",
            secondary_metrics=["conversion_2d", "time_to_resolution"],
        )
        events = write_folder(lab, rows, fmt, parts)
        polars_json = check_json(events, lab.experiments_dir, "polars")
        ledger = json.loads(polars_json)["ledger"]
        assert ledger["used"] + sum(ledger["set_aside"].values()) == ledger["rows"]
        assert check_json(events, lab.experiments_dir, "duckdb") == polars_json


def test_events_by_type_with_equal_counts_are_in_name_order(lab) -> None:
    e = lab.event
    rows = [
        e("2026-10-01T08:00:00Z", "u1", "exposure", "control"),
        e("2026-10-01T09:00:00Z", "u1", "zebra"),
        e("2026-10-01T10:00:00Z", "u1", "apple"),
        e("2026-10-01T11:00:00Z", "u1", "mango"),
    ]
    lab.experiment()
    events = lab.log(rows, "events.parquet")
    for engine in ("polars", "duckdb"):
        report = json.loads(check_json(events, lab.experiments_dir, engine))
        assert pl.DataFrame(report["events_by_type"]).rows() == [
            ("apple", 1),
            ("exposure", 1),
            ("mango", 1),
            ("zebra", 1),
        ], engine


def test_whole_log_set_aside_counts_are_not_cut_to_an_earlier_day(lab) -> None:
    """The SQL engines count set-aside rows of the whole log: a cut shows none."""
    exp, catalog = lab.load(lab.experiment(secondary_metrics=["revenue"]))
    source = resolve_source(lab.log(every_bucket(lab), "events.parquet"))
    summaries = summarize_duckdb(source, [exp], catalog, with_health=True)
    assert summaries.log.set_aside["events_of_users_in_no_analysed_experiment"] == 5
    assert summaries.log.ledger.rows == 15
    cut = at_day(summaries, dt.date(2026, 10, 3), catalog).log
    assert (cut.set_aside, cut.set_aside_examples, cut.ledger) == ({}, {}, None)
