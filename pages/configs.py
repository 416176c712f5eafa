"""Configs: browse, edit experiments and the catalog in a form or as YAML, audited."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, get_args

import streamlit as st

from cxlab import editing, studio
from cxlab.config import (
    CANONICAL_COLUMNS,
    CATALOG_FILE,
    Aggregate,
    Catalog,
    Correction,
    Decision,
    Direction,
    Experiment,
    Format,
    MetricType,
    SequentialMethod,
    Status,
)
from cxlab.errors import ConfigError, InputError, printable
from cxlab.ui import auth, cache, sources
from cxlab.ui.navigation import ensure_app_navigation

ensure_app_navigation()


@st.cache_resource(max_entries=8, show_spinner=False)
def read_folder(folder: str, configs: tuple[tuple[str, str], ...]) -> studio.Folder:
    """The folder's configs, parsed once per content (``configs`` keys the cache)."""
    return studio.read_folder(folder)


@st.cache_resource(max_entries=32, show_spinner=False)
def checked_catalog(
    text: str, folder: str, configs: tuple[tuple[str, str], ...]
) -> Catalog | ConfigError:
    """A catalog draft validated against the folder's experiments, once per content."""
    return studio.validate_catalog_text(text, folder)


@st.cache_resource(max_entries=8, show_spinner=False)
def experiment_ids(
    folder: str, configs: tuple[tuple[str, str], ...], _catalog: Catalog
) -> dict[str, str]:
    """Each experiment file's id, read once per content: a draft is validated against
    them as one types (``configs`` keys the cache, and decides the catalog)."""
    return studio.experiment_ids(folder, _catalog)


st.title("Configs")
folder = cache.experiments_folder()
audit = editing.audit_file(folder, os.environ.get(editing.AUDIT_ENV))
if flash := st.session_state.pop("configs_flash", None):
    st.success(flash, icon=":material/check_circle:")
contents = read_folder(str(folder), cache.config_hashes(folder))
for error in contents.errors:
    st.error(sources.scrub(error), icon=":material/error:")
if contents.catalog is None:
    st.stop()
catalog = contents.catalog
tabs = ["Browse", "Experiment", "Metric", "Audit trail"]
browse, exp_tab, metric_tab, audit_tab = st.tabs(tabs)


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


def forget(prefix: str) -> None:
    """Drop a form's widget values, so it refills from the YAML."""
    for key in [k for k in st.session_state if str(k).startswith(prefix)]:
        del st.session_state[key]


def ensure_open(kind: str, path: Path | None, template: str) -> editing.Opened:
    """The file this editor has open; opening another one resets the YAML text.

    Streamlit forgets a widget's value when its page is left; the YAML text is
    then restored from the draft kept beside it (:func:`yaml_editor`).
    """
    held = st.session_state.get(f"configs_{kind}_opened")
    if held is not None and held[0] == str(path):
        if f"configs_{kind}_text" not in st.session_state:
            draft = st.session_state.get(f"configs_{kind}_draft", held[1].text)
            st.session_state[f"configs_{kind}_text"] = draft
        return held[1]
    opened = editing.open_config(path, template)
    st.session_state[f"configs_{kind}_opened"] = (str(path), opened)
    st.session_state[f"configs_{kind}_text"] = opened.text
    return opened


def reload(kind: str) -> None:
    """Forget the opened file, so the next run opens it afresh from disk."""
    st.session_state.pop(f"configs_{kind}_opened", None)


def basis(kind: str, prefix: str, text: str, parsed: Any, default: Any) -> Any:
    """The values the form shows: refilled from the YAML when it changed and parses.

    Args:
        kind: ``exp`` or ``metric``.
        prefix: the form's widget key prefix.
        text: the YAML text now.
        parsed: the form's values from the text when it is valid, else None.
        default: the values for a form that shows no valid YAML yet.
    """
    key = f"configs_{kind}_basis"
    held = st.session_state.get(key)
    if held and held[0] == prefix and (held[1] == text or parsed is None):
        return held[2]
    forget(prefix)
    values = default if parsed is None else parsed
    st.session_state[key] = (prefix, text, values)
    return values


def apply_form(kind: str, prefix: str, values: Any, edit: Any, *args: Any) -> None:
    """Apply a submitted form to the YAML text (``edit(*args)`` gives the text)."""
    try:
        text = edit(*args)
    except InputError as exc:
        st.error(sources.scrub(str(exc)), icon=":material/error:")
        return
    st.session_state[f"configs_{kind}_text"] = text
    st.session_state[f"configs_{kind}_basis"] = (prefix, text, values)
    st.rerun()


def yaml_editor(kind: str, checked: Any, file_name: str) -> None:
    """The YAML text area, checked by the config loader whenever it changes."""
    label = "YAML (edit here or in the form)"
    text = st.text_area(label, key=f"configs_{kind}_text", height=560)
    st.session_state[f"configs_{kind}_draft"] = text  # outlives leaving the page
    if isinstance(checked, ConfigError):
        st.error(sources.scrub(str(checked)), icon=":material/error:")
        st.caption("The form catches up with YAML edits once the YAML is valid.")
    elif checked is not None:
        st.success(
            f"Valid — would be saved as {sources.shown(folder / file_name)}",
            icon=":material/check_circle:",
        )


def save_panel(kind: str, opened: editing.Opened, text: str, file_name: str) -> bool:
    """The diff against the opened file and the guarded Save; True once saved."""
    st.caption(f"Your changes to {file_name} since you opened it")
    before = opened.text if file_name == opened.file_name else ""  # a new file
    diff = editing.config_diff(before, text, file_name)
    st.code(diff or "no change", language="diff")
    key = f"configs_{kind}_save"
    if not st.button("Save", key=key, type="primary", disabled=not diff):
        return False
    try:
        studio.save_config(
            folder,
            file_name,
            text,
            catalog=catalog,
            expected=opened.expected_hash(file_name),
            editor=auth.editor(),
            audit=audit,
        )
    except editing.ChangedOnDiskError as exc:
        st.error(sources.scrub(str(exc)), icon=":material/error:")
        st.caption("The other change: the file as you opened it → as it is now")
        other = editing.other_change(opened, studio.target_path(folder, file_name))
        st.code(other or "no change", language="diff")
        st.button("Reload", key=f"configs_{kind}_reload", on_click=reload, args=(kind,))
        return False
    except InputError as exc:
        st.error(sources.scrub(str(exc)), icon=":material/error:")
        return False
    st.session_state.pop(f"configs_{kind}_opened")
    st.session_state["configs_flash"] = f"Saved {sources.shown(folder / file_name)}"
    return True


with browse:
    st.subheader("Experiments")
    st.caption(f"Folder: {sources.shown(folder)}")
    st.dataframe(
        studio.experiments_table(contents.experiments).to_arrow(), hide_index=True
    )
    st.subheader("Metric catalog")
    st.dataframe(studio.catalog_table(catalog).to_arrow(), hide_index=True)

with exp_tab:
    by_id = {e.id: e for e in contents.experiments}
    if (pick := st.session_state.pop("configs_exp_pick", None)) in by_id:
        st.session_state["configs_exp_base"] = pick
    choice = st.selectbox("Start from", ["(new)", *by_id], key="configs_exp_base")
    base = by_id.get(choice)
    new = studio.ExperimentForm(id="", start=dt.date.today())
    path = Path(base.source) if base else None
    opened = ensure_open("exp", path, studio.experiment_yaml(new))
    text = st.session_state["configs_exp_text"]
    checked: Any = None
    file_name = opened.file_name or studio.NEW_FILE
    if base or text != opened.text:
        try:
            base_id = base.id if base else None
            file_name = studio.draft_file_name(text, opened.file_name, base_id)
        except InputError as exc:
            checked = ConfigError(folder, None, str(exc))
        else:
            ids = experiment_ids(str(folder), cache.config_hashes(folder), catalog)
            checked = studio.validate_experiment_text(
                text, folder, catalog, file_name, ids
            )
    prefix = f"configs_exp_{base.id if base else 'new'}_"
    valid = isinstance(checked, Experiment)
    parsed = studio.form_from_experiment(checked) if valid else None
    form = basis("exp", prefix, text, parsed, new)
    f = Fields(prefix, form)
    left, right = st.columns([3, 2])
    with left, st.form(f"{f.prefix}form"):
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
        f.number(b, "Alpha", "alpha", 0.0, max_value=0.5, format="%.3f")
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
        if st.form_submit_button("Apply to YAML", type="primary"):
            values = studio.ExperimentForm(**{**vars(form), **f.out})
            edit = studio.edit_experiment_text
            apply_form("exp", prefix, values, edit, text, form, values, file_name)
    with right:
        yaml_editor("exp", checked, file_name)
        if checked is None:
            st.info(
                "Fill in the form or write the YAML: it is checked as you go.",
                icon=":material/info:",
            )
    if valid:
        if st.button("Preview on the current log", key="configs_preview"):
            try:
                ws = cache.workspace()
                result = cache.preview(ws, checked, catalog)
                st.dataframe(studio.preview_table(result).to_arrow(), hide_index=True)
                st.caption(f"Recommendation now: {result.recommendation.reason}")
            except InputError as exc:
                st.error(sources.scrub(str(exc)), icon=":material/error:")
        if save_panel("exp", opened, text, file_name):
            st.session_state["configs_exp_pick"] = checked.id
            st.rerun()

with metric_tab:
    opened_catalog = ensure_open("metric", folder / CATALOG_FILE, "")
    m_text = st.session_state["configs_metric_text"]
    m_checked = checked_catalog(m_text, str(folder), cache.config_hashes(folder))
    if isinstance(m_checked, Catalog):
        st.session_state["configs_metric_valid"] = m_checked
    draft_catalog = st.session_state.get("configs_metric_valid", catalog)
    if (pick := st.session_state.pop("configs_m_pick", None)) in draft_catalog.ids:
        st.session_state["configs_m_base"] = pick
    m_options = ["(new)", *draft_catalog.ids]
    m_choice = st.selectbox("Start from", m_options, key="configs_m_base")
    m_base = draft_catalog[m_choice] if m_choice in draft_catalog.ids else None
    m_prefix = f"configs_metric_{m_base.id if m_base else 'new'}_"
    m_parsed = studio.form_from_metric(m_base) if m_base else studio.MetricForm(id="")
    m_valid = isinstance(m_checked, Catalog)
    mform = basis("metric", m_prefix, m_text, m_parsed if m_valid else None, m_parsed)
    g = Fields(m_prefix, mform)
    aggregates = get_args(Aggregate)
    left, right = st.columns([3, 2])
    with left, st.form(f"{g.prefix}form"):
        a, b, c, d = st.columns(4)
        g.text(a, "Id", "id")
        g.text(b, "Name", "name")
        g.pick(c, "Type", "type", get_args(MetricType))
        g.pick(d, "Good direction", "direction", get_args(Direction))
        g.text(st, "Description", "description")
        st.caption(
            "proportion, mean, nps, categorical: the event (categorical: and its "
            "category column); ratio: numerator / denominator; time to event: start "
            "and end events and the horizon."
        )
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
        a, b, c, d = st.columns(4)
        g.text(a, "Category column (categorical)", "category")
        g.text(b, "Start event (time to event)", "start_event")
        g.text(c, "End event (time to event)", "end_event")
        g.number(d, "Horizon hours (time to event)", "horizon_hours", 0.0)
        g.text(st, "Filter (column=value, comma-separated)", "filter")
        if st.form_submit_button("Apply to YAML", type="primary"):
            values = studio.MetricForm(**{**vars(mform), **g.out})
            st.session_state["configs_m_pick"] = values.id.strip()
            before = mform if m_base else None
            edit = studio.catalog_with_metric
            apply_form("metric", m_prefix, values, edit, m_text, values, before)
    with right:
        yaml_editor("metric", m_checked, CATALOG_FILE)
    if m_valid and save_panel("metric", opened_catalog, m_text, CATALOG_FILE):
        st.rerun()

with audit_tab:
    entries = editing.read_audit(audit)
    st.caption(f"Every save, latest first ({sources.shown(audit)}, append-only)")
    if not entries:
        st.info("No config has been saved from CX Lab yet.", icon=":material/info:")
    for entry in entries:
        title = f"{entry.time} · {entry.user} · {entry.file}"
        with st.expander(printable(title)):
            st.code(entry.diff or "no change", language="diff")
