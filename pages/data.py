"""Data: choose the event log and the engine, map its columns, read its health."""

from __future__ import annotations

import polars as pl
import streamlit as st

from cxlab import studio
from cxlab.engine_choice import choose_engine, default_spark_url
from cxlab.errors import InputError, printable
from cxlab.events import resolve_source
from cxlab.health import ledger_table
from cxlab.sources import UPLOAD_TYPES, check_upload, log_columns, save_upload
from cxlab.sql.engines import ENGINES
from cxlab.ui import auth, cache, notices, sources
from cxlab.ui.drawing import draw
from cxlab.ui.navigation import ensure_app_navigation

ensure_app_navigation()

# Tables go to st.dataframe as Arrow: Streamlit serialises Arrow as it is, but a
# Polars frame through pandas, which was 40 % of this page's rerun (py-spy).
SOURCES = ("Bundled sample", "Path or glob on the server", "Upload a file")
ENGINE_HELP = (
    "Where the log is reduced to the per-variant sums the statistics read: Polars "
    "or DuckDB in this server, or Apache Spark. Every engine gives the same numbers. "
    "auto runs Polars, measured fastest on local files. Like the event log, the "
    "engine is a setting of this session: it decides which engine computes your "
    "pages, not other users' (theirs run auto). Only admins may change it."
)
SPARK_HELP = (
    "A master URL (local[*], spark://HOST:PORT, yarn, k8s://HOST:PORT) or a Spark "
    "Connect URL (sc://HOST:PORT). The default comes from CXLAB_SPARK_REMOTE or "
    "CXLAB_SPARK_MASTER, else a local session."
)


def show_error(exc: InputError) -> None:
    """The engine's named error, with the first offending rows when it has them."""
    headline, rows = studio.error_parts(exc)
    st.error(sources.scrub(headline), icon=":material/error:")
    if rows:
        st.code(rows, language=None)


def _escaped(column: pl.Series) -> pl.Series:
    """Text cells with control characters escaped (they come from the log)."""
    return pl.Series(column.name, [None if v is None else printable(v) for v in column])


def use_sample() -> None:
    st.session_state[cache.EVENTS_KEY] = str(cache.ensure_sample())


def use_path() -> None:
    path = st.session_state.get("data_path", "").strip()
    try:
        auth.require("choose_server_path")
        source = sources.resolve(path)
    except InputError as exc:
        st.session_state["data_source_error"] = exc
    else:
        st.session_state[cache.EVENTS_KEY] = source.spec


def use_upload() -> None:
    upload = st.session_state.get("data_upload")
    if upload is None:
        return
    try:
        auth.require("upload_log")
        path = save_upload(
            sources.session_uploads(),
            upload.name,
            upload.getvalue(),
            max_mb=sources.upload_limit_mb(),
        )
        check_upload(path)
    except InputError as exc:
        st.session_state["data_source_error"] = exc
    else:
        st.session_state[cache.EVENTS_KEY] = str(path)


def use_engine() -> None:
    try:
        auth.require("choose_engine")
        choice = choose_engine(
            st.session_state.get("data_engine", "auto"),
            st.session_state.get("data_spark_url", ""),
        )
    except InputError as exc:
        st.session_state["data_engine_error"] = exc
    else:
        st.session_state[cache.ENGINE_KEY] = choice


st.title("Data")
current = st.session_state.get(cache.EVENTS_KEY) or ""
if not current or current == str(cache.SAMPLE_EVENTS):
    mode = 0
else:
    mode = 2 if str(sources.uploads_root()) in current else 1
source = st.radio("Event log", SOURCES, mode, horizontal=True, key="data_source")
if source == SOURCES[0]:
    st.button("Use the bundled sample", on_click=use_sample, key="data_use_sample")
elif source == SOURCES[1]:
    shown = sources.shown(current) if current else ""
    label = f"File, folder or glob inside {sources.roots_text()}"
    st.text_input(label, shown, key="data_path")
    st.button("Use this log", on_click=use_path, key="data_use_path")
else:
    limit = sources.upload_limit_mb()
    st.file_uploader(
        f"CSV, Parquet or NDJSON, up to {limit} MB (kept for this session, "
        f"{sources.ttl_hours():g} hours at most)",
        type=list(UPLOAD_TYPES),
        key="data_upload",
        on_change=use_upload,
    )
if error := st.session_state.pop("data_source_error", None):
    show_error(error)

events = st.session_state.get(cache.EVENTS_KEY) or str(cache.SAMPLE_EVENTS)
choice = cache.engine_choice()
admin = auth.may("choose_engine")
left, right = st.columns([1, 2])
picked = left.selectbox(
    "Engine",
    ENGINES,
    ENGINES.index(choice.engine),
    key="data_engine",
    disabled=not admin,
    help=ENGINE_HELP,
)
if picked == "spark":
    right.text_input(
        "Spark master URL or Spark Connect URL",
        choice.spark_url or default_spark_url(),
        key="data_spark_url",
        disabled=not admin,
        help=SPARK_HELP,
    )
st.button(
    "Use this engine", on_click=use_engine, key="data_use_engine", disabled=not admin
)
if error := st.session_state.pop("data_engine_error", None):
    show_error(error)

st.caption(f"Analysing: {sources.shown(events)} · Engine: {choice.describe(events)}")
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
        columns = log_columns(resolve_source(events))
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
        pl.DataFrame(columns, schema=["column", "type"], orient="row").to_arrow(),
        hide_index=True,
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
left.dataframe(report.events_by_type.to_arrow(), hide_index=True)
try:
    per_day = cache.events_per_day_figure(ws.events, ws.fingerprint)
    draw(per_day, where=right, share=2 / 3)
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
        st.dataframe(exp.by_variant.to_arrow(), hide_index=True)

if report.ledger is not None:
    st.subheader("Ledger: every row of the log in one bucket")
    st.dataframe(
        ledger_table(report.ledger).to_arrow(),
        hide_index=True,
        column_config={"share": st.column_config.NumberColumn(format="percent")},
        key="data_ledger",
    )
    for reason, examples in report.ledger.examples.items():
        if report.ledger.set_aside.get(reason) and examples.height:
            with st.expander(f"Examples: {reason}"):
                st.dataframe(
                    examples.with_columns(
                        pl.col(pl.String).map_batches(_escaped)
                    ).to_arrow(),
                    hide_index=True,
                )
