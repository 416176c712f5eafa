"""Data: choose the event log, map its columns, read its health report."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import streamlit as st

from cxlab import charts, studio
from cxlab.errors import InputError
from cxlab.events import resolve_source
from cxlab.health import SET_ASIDE_LABELS
from ui import cache, notices
from ui.navigation import ensure_app_navigation

ensure_app_navigation()

SOURCES = ("Bundled sample", "Path or glob on the server", "Upload a file")
UPLOADS = Path(
    st.session_state.get("data_uploads_dir") or cache.ROOT / "data" / "uploads"
)


def show_error(exc: InputError) -> None:
    """The engine's named error, with the first offending rows when it has them."""
    headline, rows = studio.error_parts(exc)
    st.error(headline)
    if rows:
        st.code(rows, language=None)


def use_sample() -> None:
    st.session_state[cache.EVENTS_KEY] = str(cache.ensure_sample())


def use_path() -> None:
    path = st.session_state.get("data_path", "").strip()
    try:
        resolve_source(path)
    except InputError as exc:
        st.session_state["data_source_error"] = exc
    else:
        st.session_state[cache.EVENTS_KEY] = path


def use_upload() -> None:
    upload = st.session_state.get("data_upload")
    if upload is None:
        return
    try:
        path = studio.save_upload(UPLOADS, upload.name, upload.getvalue())
    except InputError as exc:
        st.session_state["data_source_error"] = exc
    else:
        st.session_state[cache.EVENTS_KEY] = str(path)


st.title("Data")
current = st.session_state.get(cache.EVENTS_KEY) or ""
if not current or current == str(cache.SAMPLE_EVENTS):
    mode = 0
else:
    mode = 2 if str(UPLOADS) in current else 1
source = st.radio("Event log", SOURCES, mode, horizontal=True, key="data_source")
if source == SOURCES[0]:
    st.button("Use the bundled sample", on_click=use_sample, key="data_use_sample")
elif source == SOURCES[1]:
    st.text_input("File, folder or glob", current, key="data_path")
    st.button("Use this log", on_click=use_path, key="data_use_path")
else:
    limit = min(studio.MAX_UPLOAD_MB, st.get_option("server.maxUploadSize"))
    st.file_uploader(
        f"CSV, Parquet or NDJSON, up to {limit} MB (saved under data/uploads/)",
        type=list(studio.UPLOAD_TYPES),
        key="data_upload",
        on_change=use_upload,
    )
if error := st.session_state.pop("data_source_error", None):
    show_error(error)

events = st.session_state.get(cache.EVENTS_KEY) or str(cache.SAMPLE_EVENTS)
st.caption(f"Analysing: {events}")
try:
    ws = cache.workspace()
    notices.config_errors(cache.config_errors(ws))
    report, failure = cache.load_health(ws), None
except InputError as exc:
    report, failure = None, exc
    show_error(exc)

with st.expander("Column mapping", expanded=failure is not None):
    st.markdown(
        "The engine reads the contract's columns (`timestamp`, `user_id`, `event`, "
        "`experiment_id`, `variant`, `value`); any other column is a dimension. If "
        "your log names them differently, map them here and paste the `columns:` key "
        "into each experiment's config (the Configs page's form has the same mapping)."
    )
    try:
        columns = studio.log_columns(resolve_source(events))
    except InputError:
        columns = []
    names = [name for name, _ in columns]
    defaults = studio.default_mapping(names)
    cols = st.columns(len(defaults))
    mapping = {
        canonical: col.selectbox(
            canonical,
            ["", *names],
            ["", *names].index(defaults[canonical]),
            key=f"data_map_{canonical}",
        )
        for canonical, col in zip(defaults, cols, strict=True)
    }
    snippet = studio.columns_yaml(mapping)
    st.code(snippet or "# the log already uses the contract's names", language="yaml")
    st.dataframe(
        pl.DataFrame(columns, schema=["column", "type"], orient="row"), hide_index=True
    )
if report is None:
    st.stop()

a, b, c = st.columns(3)
a.metric("Rows", f"{report.rows:,}")
b.metric("Users", f"{report.users:,}")
if report.first_event and report.last_event:
    days = (report.last_event.date() - report.first_event.date()).days + 1
    c.metric("Days of data", f"{days:,}")
    st.caption(
        f"From {report.first_event:%Y-%m-%d %H:%M} to "
        f"{report.last_event:%Y-%m-%d %H:%M} UTC, {report.files} file(s)."
    )

st.subheader("Events by type")
left, right = st.columns([1, 2])
left.dataframe(report.events_by_type, hide_index=True)
try:
    per_day = cache.load_events_per_day(ws.events, ws.fingerprint)
    right.plotly_chart(charts.events_per_day_chart(per_day), key="data_per_day")
except InputError as exc:
    show_error(exc)

st.subheader("Exposures per experiment and variant")
for exp in report.experiments:
    title = (
        f"{exp.experiment_id} — as of {exp.as_of}: {exp.multiple_exposures:,} "
        f"multiple-exposure users excluded, {exp.exposures_outside_window:,} exposure "
        f"rows outside the window, {exp.pre_exposure_events:,} pre-exposure events"
    )
    with st.expander(title):
        st.dataframe(exp.by_variant, hide_index=True)

st.subheader("Rows set aside (not analysed), by reason")
set_aside = pl.DataFrame(
    {
        "reason": [SET_ASIDE_LABELS.get(k, k) for k in report.set_aside],
        "rows": list(report.set_aside.values()),
    },
    schema={"reason": pl.String, "rows": pl.Int64},
)
st.dataframe(set_aside, hide_index=True)
for key, examples in report.set_aside_examples.items():
    if report.set_aside.get(key) and examples.height:
        with st.expander(f"First examples: {SET_ASIDE_LABELS.get(key, key)}"):
            st.dataframe(examples, hide_index=True)
