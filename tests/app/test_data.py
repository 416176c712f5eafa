"""The Data page: the health report of the sample, named errors for broken logs."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from cxlab.ui import cache
from tests.app.conftest import drawn

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "data.py")
TIMEOUT = 120
NO_USER_ID = "timestamp,event,experiment_id,variant\n2026-09-01T10:00:00,order,,\n"


@pytest.fixture
def logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data root in tmp_path (``logs/``), with uploads beside it."""
    root = tmp_path / "logs"
    root.mkdir()
    monkeypatch.setenv("CXLAB_DATA_ROOTS", str(root))
    monkeypatch.setenv("CXLAB_UPLOADS_DIR", str(tmp_path / "uploads"))
    return root


def page(**state: object) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def test_health_report_shows_the_sample_row_count() -> None:
    at = page()
    assert not at.exception
    assert not at.error
    sample = cache.ensure_sample()
    rows = pl.scan_parquet(sample).select(pl.len()).collect().item()
    users = pl.scan_parquet(sample).select(pl.col("user_id").n_unique()).collect()
    shown = {m.label: m.value for m in at.metric}
    assert shown["Rows"] == f"{rows:,}"
    assert shown["Users"] == f"{users.item():,}"
    by_type = next(d.value for d in at.dataframe if "event" in d.value.columns)
    assert int(by_type["rows"].sum()) == rows
    (chart,) = drawn(at)  # rows per day and event type: every row of the log
    bars = chart["data"]["values"]
    assert sum(bar["rows"] for bar in bars) == rows
    per_day = (
        pl.scan_parquet(sample)
        .group_by(pl.col("timestamp").dt.date().alias("day"))
        .agg(pl.len())
        .sort("day")
        .collect()
    )
    shown = {}
    for bar in bars:
        shown[bar["day"]] = shown.get(bar["day"], 0) + bar["rows"]
    assert shown == {d.isoformat(): n for d, n in per_day.iter_rows()}
    assert at.code[0].value == "# the log already uses the contract's names"
    # one account of where the rows went, adding up to the log's rows
    ledger = next(d.value for d in at.dataframe if "bucket" in d.value.columns)
    counts = dict(zip(ledger["bucket"], ledger["rows"], strict=True))
    assert counts.pop("total") == rows == sum(counts.values())
    assert [h.value for h in at.subheader if "set aside" in h.value.lower()] == []


def test_broken_log_set_as_the_path_shows_the_engine_message_naming_the_column(
    logs: Path,
) -> None:
    log = logs / "events.csv"
    log.write_text(NO_USER_ID)
    at = page(**{cache.EVENTS_KEY: str(log)})
    assert not at.exception
    assert at.error[0].value == (  # the root's own path is not shown, only its name
        "logs/events.csv: missing required column(s): user_id; "
        "found: timestamp, event, experiment_id, variant (column 'user_id')"
    )
    assert not at.metric


def use_path(at: AppTest, typed: str) -> AppTest:
    at.radio(key="data_source").set_value("Path or glob on the server").run()
    at.text_input(key="data_path").input(typed)
    return at.button(key="data_use_path").click().run()


def test_path_typed_on_the_page_becomes_the_log_and_its_error_is_shown(
    logs: Path,
) -> None:
    log = logs / "typed.csv"
    log.write_text(NO_USER_ID)
    at = use_path(page(), str(log))
    assert not at.exception
    assert at.session_state[cache.EVENTS_KEY] == str(log)
    assert "missing required column(s): user_id" in at.error[0].value
    assert str(logs) not in at.error[0].value


def test_a_path_that_does_not_exist_is_named_and_not_used(logs: Path) -> None:
    at = use_path(page(), str(logs / "nope.csv"))
    assert not at.exception
    assert at.error[0].value == "logs/nope.csv: event log not found"
    assert cache.EVENTS_KEY not in at.session_state


@pytest.mark.parametrize(
    "typed", ["/proc", "/proc/self/environ", "../../etc/passwd", "data/../README.md"]
)
def test_a_path_outside_the_data_root_is_refused_without_a_traceback(
    typed: str,
) -> None:
    at = use_path(page(), typed)
    assert not at.exception
    assert at.error[0].value.startswith(f"{typed}: not inside the data folders (data/)")
    assert cache.EVENTS_KEY not in at.session_state


def test_a_csv_planted_outside_the_root_is_refused_and_not_shown(
    logs: Path, tmp_path: Path
) -> None:
    planted = tmp_path / "planted.csv"
    planted.write_text("secret,column\n1,2\n")
    (logs / "link.csv").symlink_to(planted)
    for typed in (str(planted), str(logs / "link.csv"), str(logs / "*.csv")):
        at = use_path(page(), typed)
        assert not at.exception
        assert "not inside the data folders (logs/)" in at.error[0].value
        assert cache.EVENTS_KEY not in at.session_state
        assert "secret" not in str([c.value for c in at.code])


def test_broken_upload_is_saved_in_the_session_folder_and_shows_the_engine_message(
    logs: Path, tmp_path: Path
) -> None:
    at = page()
    at.radio(key="data_source").set_value("Upload a file").run()
    upload = ("../my events.csv", NO_USER_ID.encode(), "text/csv")
    at.file_uploader(key="data_upload").set_value(upload).run()
    assert not at.exception
    (session,) = (tmp_path / "uploads").iterdir()
    assert session.name == at.session_state["data_upload_session"]
    (saved,) = session.iterdir()
    assert saved.name.startswith("my-events-")
    assert at.session_state[cache.EVENTS_KEY] == str(saved)
    shown = f"uploads/{session.name}/{saved.name}"  # not the server's folder
    assert at.error[0].value.startswith(f"{shown}: missing required column(s)")
    assert "(column 'user_id')" in at.error[0].value


def test_an_unreadable_upload_is_refused_and_deleted_at_once(
    logs: Path, tmp_path: Path
) -> None:
    at = page()
    at.radio(key="data_source").set_value("Upload a file").run()
    upload = ("events.parquet", b"not a parquet file", "application/octet-stream")
    at.file_uploader(key="data_upload").set_value(upload).run()
    assert not at.exception
    assert "cannot read the log" in at.error[0].value
    assert str(tmp_path) not in at.error[0].value
    assert not [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()]
    assert cache.EVENTS_KEY not in at.session_state


def test_log_with_other_column_names_gets_a_columns_snippet(logs: Path) -> None:
    log = logs / "renamed.csv"
    log.write_text(
        "ts,customer,event,experiment_id,variant\n2026-09-01T10:00:00,u1,order,,\n"
    )
    at = page(**{cache.EVENTS_KEY: str(log)})
    assert "missing required column(s): timestamp, user_id" in at.error[0].value
    at.selectbox(key="data_map_timestamp").set_value("ts")
    at.selectbox(key="data_map_user_id").set_value("customer").run()
    assert not at.exception
    assert at.code[0].value.strip() == "columns:\n  timestamp: ts\n  user_id: customer"
