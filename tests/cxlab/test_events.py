"""Reading event logs (CONTRACT §1): formats, sources, timestamps, columns, errors."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from cxlab.errors import EventLogError, InputError
from cxlab.events import resolve_source, scan_events
from cxlab.summaries import summarize
from tests.conftest import last_row

UTC = dt.UTC
FORMATS = ["events.csv", "events.parquet", "events.ndjson"]


def read(path, columns=None, *, thorough: bool = False) -> pl.DataFrame:
    return (
        scan_events(resolve_source(path), columns, thorough_timestamps=thorough)
        .select("timestamp", "user_id", "event", "experiment_id", "variant", "value")
        .collect()
    )


def two_user_log(lab) -> list[dict]:
    e = lab.event
    return [
        e("2026-10-01T10:00:00Z", "a", "exposure", "control"),
        e("2026-10-01T11:00:00Z", "a", "order", value=12.5),
        e("2026-10-02T09:00:00Z", "b", "exposure", "treatment"),
    ]


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_reads_to_the_contract_columns(lab, name: str) -> None:
    frame = read(lab.log(two_user_log(lab), name))

    assert frame.schema == pl.Schema(
        {
            "timestamp": pl.Datetime("us", "UTC"),
            "user_id": pl.String,
            "event": pl.String,
            "experiment_id": pl.String,
            "variant": pl.String,
            "value": pl.Float64,
        }
    )
    assert frame.rows() == [
        (
            dt.datetime(2026, 10, 1, 10, tzinfo=UTC),
            "a",
            "exposure",
            "exp",
            "control",
            None,
        ),
        (dt.datetime(2026, 10, 1, 11, tzinfo=UTC), "a", "order", None, None, 12.5),
        (
            dt.datetime(2026, 10, 2, 9, tzinfo=UTC),
            "b",
            "exposure",
            "exp",
            "treatment",
            None,
        ),
    ]


def test_a_folder_of_mixed_formats_reads_as_one_log(lab) -> None:
    e = lab.event
    lab.log([e("2026-10-01T10:00:00Z", "a", "exposure", "control")], "log/day1.csv")
    lab.log([e("2026-10-02T10:00:00Z", "b", "exposure", "control")], "log/day2.parquet")
    lab.log([e("2026-10-03T10:00:00Z", "c", "order", value=3)], "log/sub/day3.ndjson")
    (lab.root / "log" / "README.txt").write_text("not a log")

    frame = read(lab.root / "log").sort("timestamp")

    assert frame["user_id"].to_list() == ["a", "b", "c"]
    assert len(resolve_source(lab.root / "log").files) == 3  # README.txt skipped


def test_a_glob_reads_only_the_matching_files(lab) -> None:
    e = lab.event
    lab.log([e("2026-10-01T10:00:00Z", "a", "exposure", "control")], "log/2026-10.csv")
    lab.log([e("2026-10-02T10:00:00Z", "b", "exposure", "control")], "log/2026-11.csv")
    lab.log([e("2026-10-03T10:00:00Z", "c", "exposure", "control")], "log/2025-12.csv")

    frame = read(str(lab.root / "log" / "2026-*.csv"))

    assert sorted(frame["user_id"].to_list()) == ["a", "b"]


def test_a_missing_log_is_an_input_error_naming_it(lab) -> None:
    with pytest.raises(EventLogError, match=r"nowhere\.csv: event log not found"):
        resolve_source(lab.root / "nowhere.csv")


def test_a_glob_matching_nothing_is_an_input_error(lab) -> None:
    with pytest.raises(EventLogError, match="no Parquet, CSV or NDJSON files"):
        resolve_source(str(lab.root / "*.parquet"))


@pytest.mark.parametrize("name", ["events.csv", "events.ndjson"])
@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-10-01T10:15:00Z", dt.datetime(2026, 10, 1, 10, 15, tzinfo=UTC)),
        (
            "2026-10-01T10:15:00.250Z",
            dt.datetime(2026, 10, 1, 10, 15, 0, 250_000, tzinfo=UTC),
        ),
        # +02:00 is two hours ahead of UTC: 01:30+02:00 is 23:30 UTC the day before
        ("2026-10-02T01:30:00+02:00", dt.datetime(2026, 10, 1, 23, 30, tzinfo=UTC)),
        ("2026-10-01T10:00:00-05:00", dt.datetime(2026, 10, 1, 15, 0, tzinfo=UTC)),
        ("2026-10-01 10:15:00", dt.datetime(2026, 10, 1, 10, 15, tzinfo=UTC)),
        ("2026-10-01T10:15:00", dt.datetime(2026, 10, 1, 10, 15, tzinfo=UTC)),
        ("2026-10-01", dt.datetime(2026, 10, 1, tzinfo=UTC)),
    ],
)
def test_iso_timestamps_are_read_as_utc(lab, name: str, text: str, utc) -> None:
    rows = [lab.event(text, "a", "order", value=1)]
    assert read(lab.log(rows, name))["timestamp"].to_list() == [utc]


def test_mixed_iso_forms_in_one_file_all_parse(lab) -> None:
    e = lab.event
    rows = [
        e("2026-10-01", "a", "order", value=1),
        e("2026-10-01T10:00:00Z", "a", "order", value=1),
        e("2026-10-01 11:00:00", "a", "order", value=1),
        e("2026-10-01T14:00:00+02:00", "a", "order", value=1),
    ]
    path = lab.log(rows)
    # The fast parse infers one format from the first value and leaves the others…
    assert read(path)["timestamp"].null_count() > 0
    # …the thorough parse tries every ISO-8601 spelling on each row.
    stamps = read(path, thorough=True)["timestamp"].to_list()
    assert stamps == [
        dt.datetime(2026, 10, 1, 0, tzinfo=UTC),
        dt.datetime(2026, 10, 1, 10, tzinfo=UTC),
        dt.datetime(2026, 10, 1, 11, tzinfo=UTC),
        dt.datetime(2026, 10, 1, 12, tzinfo=UTC),
    ]


def test_a_log_mixing_timestamp_formats_is_summarised_with_every_row(lab) -> None:
    # summarize notices unparsed rows after the fast parse and parses again.
    e = lab.event
    rows = [
        e("2026-10-01T09:00:00Z", "a", "exposure", "control"),
        e("2026-10-01", "b", "exposure", "treatment"),
        e("2026-10-02 10:00:00", "a", "order", value=5),
        e("2026-10-02T14:00:00+02:00", "b", "order", value=7),
    ]
    summaries = lab.summarize(rows, secondary_metrics=["revenue"])
    control = last_row(summaries, "revenue", "control")
    treatment = last_row(summaries, "revenue", "treatment")
    assert (control["n"], control["sum_x"]) == (1, 5.0)
    assert (treatment["n"], treatment["sum_x"]) == (1, 7.0)


def test_parquet_naive_and_zoned_datetimes_become_utc(lab) -> None:
    naive = lab.root / "naive.parquet"
    pl.DataFrame(
        {
            "timestamp": [dt.datetime(2026, 10, 1, 10)],
            "user_id": ["a"],
            "event": ["order"],
        }
    ).write_parquet(naive)
    zoned = lab.root / "zoned.parquet"
    pl.DataFrame(
        {
            "timestamp": [dt.datetime(2026, 10, 1, 12)],
            "user_id": ["b"],
            "event": ["order"],
        }
    ).with_columns(
        pl.col("timestamp").dt.replace_time_zone("Europe/Berlin")  # CEST = UTC+2
    ).write_parquet(zoned)

    assert read(naive)["timestamp"].to_list() == [
        dt.datetime(2026, 10, 1, 10, tzinfo=UTC)
    ]
    assert read(zoned)["timestamp"].to_list() == [
        dt.datetime(2026, 10, 1, 10, tzinfo=UTC)
    ]


@pytest.mark.parametrize("name", ["events.parquet", "events.ndjson", "events.csv"])
def test_integer_user_ids_are_read_as_text(lab, name: str) -> None:
    e = lab.event
    rows = [
        e("2026-10-01T10:00:00Z", 101, "exposure", "control"),
        e("2026-10-01T11:00:00Z", 7, "order", value=1),
    ]
    assert read(lab.log(rows, name))["user_id"].to_list() == ["101", "7"]


def test_columns_mapping_renames_log_columns(lab) -> None:
    path = lab.root / "renamed.csv"
    path.write_text(
        "ts,customer,event,experiment_id,variant,value,user_id\n"
        "2026-10-01T10:00:00Z,c1,exposure,exp,control,,ignored\n"
        "2026-10-01T11:00:00Z,c1,order,,,5,ignored\n"
    )
    frame = read(path, {"user_id": "customer", "timestamp": "ts"})

    assert frame["user_id"].to_list() == ["c1", "c1"]
    assert frame["timestamp"].to_list() == [
        dt.datetime(2026, 10, 1, 10, tzinfo=UTC),
        dt.datetime(2026, 10, 1, 11, tzinfo=UTC),
    ]
    assert frame["value"].to_list() == [None, 5.0]


def test_columns_mapping_to_a_missing_column_names_it(lab) -> None:
    path = lab.log(two_user_log(lab))
    with pytest.raises(EventLogError, match="mapped column 'customer'") as excinfo:
        read(path, {"user_id": "customer"})
    assert excinfo.value.column == "customer"
    assert str(path) in str(excinfo.value)


def test_config_columns_mapping_is_used_by_summarize(lab) -> None:
    path = lab.root / "renamed.csv"
    path.write_text(
        "ts,customer,event,experiment_id,variant,value\n"
        "2026-10-01T10:00:00Z,c1,exposure,exp,control,\n"
        "2026-10-01T11:00:00Z,c1,order,,,5\n"
        "2026-10-01T10:00:00Z,c2,exposure,exp,treatment,\n"
    )
    exp, catalog = lab.load(
        lab.experiment(columns={"user_id": "customer", "timestamp": "ts"})
    )

    daily = summarize(resolve_source(path), [exp], catalog).daily
    last = daily.filter(pl.col("day") == dt.date(2026, 10, 5)).sort("variant")
    # control: c1 ordered (1 of 1); treatment: c2 did not (0 of 1)
    assert last.select("variant", "n", "sum_x").rows() == [
        ("control", 1, 1.0),
        ("treatment", 1, 0.0),
    ]


# --- bad input: EventLogError naming the file, the column and the first rows ------


def check_error(lab, rows, name: str, column: str, shown: str) -> EventLogError:
    path = lab.log(rows, name)
    exp, catalog = lab.load(lab.experiment())
    with pytest.raises(EventLogError) as excinfo:
        summarize(resolve_source(path), [exp], catalog)
    error = excinfo.value
    assert isinstance(error, InputError)
    message = str(error)
    assert str(path) in message
    assert error.column == column
    assert f"(column '{column}')" in message
    assert "First offending rows:" in message
    assert shown in message
    return error


@pytest.mark.parametrize("name", ["events.csv", "events.ndjson"])
def test_unparseable_timestamp_is_named(lab, name: str) -> None:
    rows = [*two_user_log(lab), lab.event("yesterday", "c", "order", value=1)]
    error = check_error(lab, rows, name, "timestamp", "timestamp='yesterday'")
    # the fourth row: line 5 of the CSV file (after its header), line 4 of NDJSON
    line = 5 if name.endswith(".csv") else 4
    assert f"{name} line {line}:" in str(error)


@pytest.mark.parametrize("name", FORMATS)
def test_non_numeric_value_is_named(lab, name: str) -> None:
    rows = [
        *two_user_log(lab),
        lab.event("2026-10-02T10:00:00Z", "c", "order", value="12,50"),
    ]
    check_error(lab, rows, name, "value", "value='12,50'")


@pytest.mark.parametrize("name", FORMATS)
def test_exposure_without_experiment_id_is_named(lab, name: str) -> None:
    rows = [
        *two_user_log(lab),
        lab.event(
            "2026-10-02T10:00:00Z", "zed", "exposure", "control", experiment_id=""
        ),
    ]
    check_error(lab, rows, name, "experiment_id", "user_id='zed'")


@pytest.mark.parametrize("name", FORMATS)
def test_exposure_without_variant_is_named(lab, name: str) -> None:
    rows = [*two_user_log(lab), lab.event("2026-10-02T10:00:00Z", "zed", "exposure")]
    check_error(lab, rows, name, "variant", "user_id='zed'")


@pytest.mark.parametrize("name", FORMATS)
def test_undeclared_variant_is_named(lab, name: str) -> None:
    rows = [
        *two_user_log(lab),
        lab.event("2026-10-02T10:00:00Z", "zed", "exposure", "blue"),
    ]
    error = check_error(lab, rows, name, "variant", "variant='blue'")
    assert "declared: control, treatment" in str(error)


def test_offending_rows_show_at_most_five_examples_and_the_count(lab) -> None:
    rows = [lab.event(f"day {i}", f"u{i}", "order", value=1) for i in range(8)]
    error = check_error(lab, rows, "events.csv", "timestamp", "timestamp='day 0'")
    assert "8 row(s)" in str(error)
    assert "day 4" in str(error)
    assert "day 5" not in str(error)


def test_error_in_a_folder_names_the_offending_file(lab) -> None:
    e = lab.event
    lab.log(two_user_log(lab), "log/good.csv")
    bad = lab.log([e("2026-10-02T10:00:00Z", "c", "order", value="n/a")], "log/bad.csv")
    exp, catalog = lab.load(lab.experiment())
    with pytest.raises(EventLogError) as excinfo:
        summarize(resolve_source(lab.root / "log"), [exp], catalog)
    assert str(excinfo.value).startswith(f"{bad}:")
    assert "bad.csv line 2: value='n/a'" in str(excinfo.value)


@pytest.mark.parametrize("name", FORMATS)
def test_missing_required_column_is_named(lab, name: str) -> None:
    rows = [{k: v for k, v in r.items() if k != "event"} for r in two_user_log(lab)]
    path = lab.log(rows, name)
    exp, catalog = lab.load(lab.experiment())
    with pytest.raises(EventLogError) as excinfo:
        summarize(resolve_source(path), [exp], catalog)
    assert excinfo.value.column == "event"
    assert str(path) in str(excinfo.value)
    assert "missing required column(s): event" in str(excinfo.value)


def test_empty_log_is_an_input_error_naming_the_file(lab) -> None:
    path = lab.root / "empty.csv"
    path.write_text("timestamp,user_id,event,experiment_id,variant,value\n")
    exp, catalog = lab.load(lab.experiment())
    with pytest.raises(EventLogError, match="empty") as excinfo:
        summarize(resolve_source(path), [exp], catalog)
    assert str(path) in str(excinfo.value)


def test_unknown_dimension_column_is_named(lab) -> None:
    path = lab.log(two_user_log(lab))
    exp, catalog = lab.load(lab.experiment(dimensions=["platform"]))
    with pytest.raises(EventLogError, match="dimension 'platform'") as excinfo:
        summarize(resolve_source(path), [exp], catalog)
    assert excinfo.value.column == "platform"


@pytest.mark.parametrize("text", ["NaN", "inf"])
def test_nan_or_infinite_value_is_named_as_not_a_number(lab, text: str) -> None:
    rows = [
        *two_user_log(lab),
        lab.event("2026-10-02T10:00:00Z", "c", "order", value=text),
    ]
    check_error(lab, rows, "events.csv", "value", f"value='{text}'")
