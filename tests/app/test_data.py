"""The Data page: the health report of the sample, named errors for broken logs."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from streamlit.testing.v1 import AppTest

from ui import cache

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "data.py")
TIMEOUT = 120
NO_USER_ID = "timestamp,event,experiment_id,variant\n2026-09-01T10:00:00,order,,\n"


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
    assert at.code[0].value == "# the log already uses the contract's names"


def test_broken_log_set_as_the_path_shows_the_engine_message_naming_the_column(
    tmp_path: Path,
) -> None:
    log = tmp_path / "events.csv"
    log.write_text(NO_USER_ID)
    at = page(**{cache.EVENTS_KEY: str(log)})
    assert not at.exception
    assert at.error[0].value == (
        f"{log}: missing required column(s): user_id; "
        "found: timestamp, event, experiment_id, variant (column 'user_id')"
    )
    assert not at.metric


def test_path_typed_on_the_page_becomes_the_log_and_its_error_is_shown(
    tmp_path: Path,
) -> None:
    log = tmp_path / "typed.csv"
    log.write_text(NO_USER_ID)
    at = page()
    at.radio(key="data_source").set_value("Path or glob on the server").run()
    at.text_input(key="data_path").input(str(log))
    at.button(key="data_use_path").click().run()
    assert not at.exception
    assert at.session_state[cache.EVENTS_KEY] == str(log)
    assert "missing required column(s): user_id" in at.error[0].value


def test_a_path_that_does_not_exist_is_named_and_not_used(tmp_path: Path) -> None:
    at = page()
    at.radio(key="data_source").set_value("Path or glob on the server").run()
    at.text_input(key="data_path").input(str(tmp_path / "nope.csv"))
    at.button(key="data_use_path").click().run()
    assert not at.exception
    assert at.error[0].value == f"{tmp_path / 'nope.csv'}: event log not found"


def test_broken_upload_is_saved_safely_and_shows_the_engine_message(
    tmp_path: Path,
) -> None:
    uploads = tmp_path / "uploads"
    at = page(data_uploads_dir=str(uploads))
    at.radio(key="data_source").set_value("Upload a file").run()
    upload = ("../my events.csv", NO_USER_ID.encode(), "text/csv")
    at.file_uploader(key="data_upload").set_value(upload).run()
    assert not at.exception
    saved = list(uploads.iterdir())
    assert len(saved) == 1
    assert saved[0].name.startswith("my-events-")
    assert at.session_state[cache.EVENTS_KEY] == str(saved[0])
    assert at.error[0].value.startswith(f"{saved[0]}: missing required column(s)")
    assert "(column 'user_id')" in at.error[0].value


def test_log_with_other_column_names_gets_a_columns_snippet(tmp_path: Path) -> None:
    log = tmp_path / "renamed.csv"
    log.write_text(
        "ts,customer,event,experiment_id,variant\n2026-09-01T10:00:00,u1,order,,\n"
    )
    at = page(**{cache.EVENTS_KEY: str(log)})
    assert "missing required column(s): timestamp, user_id" in at.error[0].value
    at.selectbox(key="data_map_timestamp").set_value("ts")
    at.selectbox(key="data_map_user_id").set_value("customer").run()
    assert not at.exception
    assert at.code[0].value.strip() == "columns:\n  timestamp: ts\n  user_id: customer"
