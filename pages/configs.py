"""Configs: browse the catalog and experiments; create or edit them in forms."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, get_args

import streamlit as st

from cxlab import studio
from cxlab.config import (
    CANONICAL_COLUMNS,
    CATALOG_FILE,
    Aggregate,
    Correction,
    Decision,
    Direction,
    Format,
    MetricType,
    SequentialMethod,
    Status,
)
from cxlab.errors import ConfigError, InputError
from ui import cache
from ui.navigation import ensure_app_navigation

ensure_app_navigation()

st.title("Configs")
folder = cache.experiments_folder()
if flash := st.session_state.pop("configs_flash", None):
    st.success(flash)
contents = studio.read_folder(folder)
for error in contents.errors:
    st.error(error)
if contents.catalog is None:
    st.stop()
catalog = contents.catalog
browse, exp_tab, metric_tab = st.tabs(["Browse", "Experiment", "Metric"])


class Fields:
    """Form widgets keyed ``prefix + field`` and prefilled from a form's values."""

    def __init__(self, prefix: str, values: Any) -> None:
        self.prefix, self.values, self.out = prefix, values, {}

    def text(self, col: Any, label: str, field: str, **kw: Any) -> None:
        value = getattr(self.values, field)
        key = self.prefix + field
        self.out[field] = col.text_input(label, value, key=key, **kw)

    def pick(self, col: Any, label: str, field: str, options: Any) -> None:
        options = list(options)
        index = options.index(getattr(self.values, field))
        key = self.prefix + field
        self.out[field] = col.selectbox(
            label, options, index, key=key, format_func=lambda v: v or "(none)"
        )

    def number(self, col: Any, label: str, field: str, low: Any, **kw: Any) -> None:
        value = getattr(self.values, field)
        key = self.prefix + field
        self.out[field] = col.number_input(label, low, value=value, key=key, **kw)

    def many(self, col: Any, label: str, field: str, options: Any) -> None:
        default = list(getattr(self.values, field))
        key = self.prefix + field
        self.out[field] = tuple(col.multiselect(label, options, default, key=key))


def review(kind: str, text: str, file_name: str, checked: Any, shown: str) -> None:
    """Validation, diff, optional preview and the guarded save of a draft."""
    st.code(shown, language="yaml")
    if isinstance(checked, ConfigError):
        st.error(str(checked))
        return
    st.success(f"Valid — would be saved as {folder / file_name}")
    old = studio.read_text(folder, file_name)
    st.caption("Changes against the file on disk (comments inside edited blocks go)")
    st.code(studio.config_diff(old, text, file_name) or "no change", language="diff")
    if kind == "exp" and st.button("Preview on the current log", key="configs_preview"):
        try:
            ws = cache.workspace()
            result = cache.load_preview(
                ws.events, ws.fingerprint, checked, catalog, ws.as_of
            )
            st.dataframe(studio.preview_table(result), hide_index=True)
            st.caption(f"Recommendation now: {result.recommendation.reason}")
        except InputError as exc:
            st.error(str(exc))
    label = f"Overwrite the existing {file_name}"
    confirm = bool(old) and st.checkbox(label, key=f"configs_{kind}_confirm")
    locked = bool(old) and not confirm
    if st.button("Save", key=f"configs_{kind}_save", type="primary", disabled=locked):
        try:
            path = studio.save_config(folder, file_name, text, overwrite=confirm)
        except InputError as exc:
            st.error(str(exc))
        else:
            st.session_state[f"configs_{kind}_draft"] = None
            st.session_state["configs_flash"] = f"Saved {path}"
            st.rerun()


with browse:
    st.subheader("Experiments")
    st.caption(f"Folder: {folder}")
    st.dataframe(studio.experiments_table(contents.experiments), hide_index=True)
    st.subheader("Metric catalog")
    st.dataframe(studio.catalog_table(catalog), hide_index=True)

with exp_tab:
    by_id = {e.id: e for e in contents.experiments}
    choice = st.selectbox("Start from", ["(new)", *by_id], key="configs_exp_base")
    base = by_id.get(choice)
    new = studio.ExperimentForm(id="", start=dt.date.today())
    form = studio.form_from_experiment(base) if base else new
    f = Fields(f"configs_exp_{base.id if base else 'new'}_", form)
    with st.form(f"{f.prefix}form"):
        a, b, c = st.columns(3)
        f.text(a, "Id (the file name)", "id", help="a-z, 0-9, - and _ only")
        f.text(b, "Name", "name")
        f.text(c, "Owner", "owner")
        hypothesis = form.hypothesis
        key = f.prefix + "hypothesis"
        f.out["hypothesis"] = st.text_area("Hypothesis", hypothesis, 70, key=key)
        a, b, c = st.columns(3)
        f.out["start"] = a.date_input("Start", form.start, key=f.prefix + "start")
        f.out["end"] = b.date_input("End (optional)", form.end, key=f.prefix + "end")
        f.pick(c, "Status", "status", ["", *get_args(Status)])
        a, b = st.columns([2, 1])
        f.text(a, "Variants and weights, the control first", "variants")
        f.text(b, "Control (if not the first)", "control")
        f.many(st, "Primary metric", "primary_metric", catalog.ids)
        a, b = st.columns(2)
        f.many(a, "Secondary metrics", "secondary_metrics", catalog.ids)
        f.many(b, "Guardrail metrics", "guardrail_metrics", catalog.ids)
        a, b, c, d = st.columns(4)
        f.pick(a, "Decision method", "decision", get_args(Decision))
        f.number(b, "Alpha", "alpha", 0.001, max_value=0.499, format="%.3f")
        f.pick(c, "Correction", "correction", get_args(Correction))
        f.pick(d, "Sequential method", "sequential_method", get_args(SequentialMethod))
        a, b, c, d = st.columns(4)
        f.number(a, "Sequential tuning N*", "sequential_tuning", 2)
        f.number(b, "Planned users (0 = none)", "planned_users", 0)
        f.number(c, "CUPED days (0 = off)", "cuped_days", 0)
        f.number(d, "Bayes prior sd (0 = flat)", "bayes_prior_sd", 0.0)
        a, b = st.columns(2)
        f.text(a, "Dimensions (comma-separated)", "dimensions")
        f.text(b, "Tags (comma-separated)", "tags")
        f.text(st, "Decision note", "decision_note")
        with st.expander("Column mapping: only if your log names columns differently"):
            st.caption("Blank keeps the contract name; the Data page lists the log's.")
            mapped, cols = dict(form.columns), st.columns(len(CANONICAL_COLUMNS))
            f.out["columns"] = tuple(
                (name, col.text_input(name, mapped.get(name, ""), key=f.prefix + name))
                for name, col in zip(CANONICAL_COLUMNS, cols, strict=True)
            )
        if st.form_submit_button("Validate", type="primary"):
            values = studio.ExperimentForm(**{**vars(form), **f.out})
            text = studio.experiment_yaml(values)
            draft = {"base": choice, "text": text, "id": values.id.strip()}
            st.session_state["configs_exp_draft"] = draft
    draft = st.session_state.get("configs_exp_draft")
    if draft and draft["base"] == choice:
        try:
            same = base is not None and draft["id"] == base.id
            name = Path(base.source).name if same else None
            file_name = name or studio.experiment_file_name(draft["id"])
        except InputError as exc:
            st.error(f"{folder}: {exc}")
        else:
            text = draft["text"]
            checked = studio.validate_experiment_text(text, folder, catalog, file_name)
            review("exp", text, file_name, checked, text)

with metric_tab:
    m_choice = st.selectbox("Start from", ["(new)", *catalog.ids], key="configs_m_base")
    m_base = catalog[m_choice] if m_choice in catalog.ids else None
    mform = studio.form_from_metric(m_base) if m_base else studio.MetricForm(id="")
    g = Fields(f"configs_metric_{m_base.id if m_base else 'new'}_", mform)
    aggregates = get_args(Aggregate)
    with st.form(f"{g.prefix}form"):
        a, b, c, d = st.columns(4)
        g.text(a, "Id", "id")
        g.text(b, "Name", "name")
        g.pick(c, "Type", "type", get_args(MetricType))
        g.pick(d, "Good direction", "direction", get_args(Direction))
        g.text(st, "Description", "description")
        st.caption("proportion, mean, nps: the event; ratio: numerator / denominator.")
        a, b, c, d = st.columns(4)
        g.text(a, "Event", "event")
        g.pick(b, "Aggregate (mean)", "aggregate", aggregates)
        g.number(c, "Window days (0 = none)", "window_days", 0)
        g.pick(d, "Format", "format", ["", *get_args(Format)])
        a, b, c, d = st.columns(4)
        g.text(a, "Numerator event", "numerator_event")
        g.pick(b, "Numerator aggregate", "numerator_aggregate", aggregates)
        g.text(c, "Denominator event", "denominator_event")
        g.pick(d, "Denominator aggregate", "denominator_aggregate", aggregates)
        g.text(st, "Filter (column=value, comma-separated)", "filter")
        if st.form_submit_button("Validate", type="primary"):
            values = studio.MetricForm(**{**vars(mform), **g.out})
            st.session_state["configs_metric_draft"] = {
                "base": m_choice,
                "form": values,
            }
    m_draft = st.session_state.get("configs_metric_draft")
    if m_draft and m_draft["base"] == m_choice:
        values, metric_id = m_draft["form"], m_draft["form"].id.strip()
        try:
            if m_base is None and metric_id in catalog.ids:
                raise InputError(f"metric '{metric_id}' exists: pick it to edit it")
            block = studio.metric_block(values)
            old_text = studio.read_text(folder, CATALOG_FILE)
            new_text = studio.catalog_with_metric(old_text, metric_id, block)
        except InputError as exc:
            st.error(f"{folder / CATALOG_FILE}: {exc}")
        else:
            checked = studio.validate_catalog_text(new_text, folder)
            review("metric", new_text, CATALOG_FILE, checked, block)
