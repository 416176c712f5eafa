"""The config studio and the data source: file logic behind the Configs and Data pages.

Configs: form values become YAML text (:func:`experiment_yaml`, :func:`metric_block`),
form edits are applied to the file's original text keeping its comments and key
order (:func:`edit_experiment_text`, :func:`catalog_with_metric`, through
:func:`cxlab.editing.apply_changes`), the text is validated exactly as the loader
reads files (written to a temporary folder and parsed by :mod:`cxlab.config`, errors
renamed to the target file so they read ``experiments/<id>.yaml:LINE``) and saved by
:func:`save_config`: validated again, never outside the folder, refused when the
file changed since it was opened, atomic and audited (:mod:`cxlab.editing`).

Data: the column mapping's YAML and the events per day for the data-health chart
(uploads and a log's columns are :mod:`cxlab.sources`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from cxlab import charts
from cxlab.analysis import ExperimentResult
from cxlab.charts import ci_text
from cxlab.config import (
    CANONICAL_COLUMNS,
    CATALOG_FILE,
    DEFAULT_ALPHA,
    DEFAULT_SEQUENTIAL_TUNING,
    ID_PATTERN,
    ID_RULE,
    Catalog,
    Experiment,
    MetricDef,
    as_yaml_mapping,
    experiment_files,
    load_catalog,
    load_experiment,
    load_experiments_each,
    parse_yaml,
)
from cxlab.decision import effect_text, level_text
from cxlab.editing import AuditEntry, Editor, apply_changes, write_config
from cxlab.errors import ConfigError, InputError
from cxlab.events import EventSource, scan_events

SAFE_ID = ID_PATTERN
SAFE_FILE = re.compile(r"[a-z0-9][a-z0-9_-]*\.ya?ml")
RESERVED_IDS = frozenset({"metrics"})
NEW_FILE = "new-experiment.yaml"


# --- ids and files -----------------------------------------------------------------


def check_id(experiment_id: str) -> str:
    """Accept an experiment id that is safe as a file name.

    Args:
        experiment_id: the id typed by the analyst.

    Returns:
        The id unchanged.

    Raises:
        InputError: anything but 1-64 lower-case letters, digits, ``-`` and ``_``
            (so no path separators and no ``..``), or the reserved ``metrics``.
    """
    if not SAFE_ID.fullmatch(experiment_id or ""):
        raise InputError(
            f"invalid experiment id {experiment_id!r}: ids are {ID_RULE} "
            "(it becomes the file name)"
        )
    if experiment_id in RESERVED_IDS:
        raise InputError(f"'{experiment_id}' is reserved for the metric catalog")
    return experiment_id


def experiment_file_name(experiment_id: str) -> str:
    """The file an experiment is saved to: ``<id>.yaml`` (id checked)."""
    return f"{check_id(experiment_id)}.yaml"


def draft_file_name(text: str, opened: str, opened_id: str | None) -> str:
    """The file an edited experiment text is saved to.

    The opened file while the text keeps its id; ``<id>.yaml`` for a new id (a
    new experiment, or a copy under a new id). A text without a readable id keeps
    the opened file's name (or :data:`NEW_FILE`), so validation names its error.

    Args:
        text: the edited YAML text.
        opened: the opened file's name ('' for a new experiment).
        opened_id: the opened experiment's id (None for a new one).

    Raises:
        InputError: the text's id is not safe as a file name.
    """
    fallback = opened or NEW_FILE
    try:
        data = parse_yaml(text, fallback)
    except ConfigError:
        return fallback
    draft_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(draft_id, str) or draft_id == opened_id:
        return fallback
    return experiment_file_name(draft_id)


def target_path(folder: Path | str, file_name: str) -> Path:
    """The path of a config file inside the experiments folder, checked.

    Raises:
        InputError: a name with separators or other characters, or a path that
            would land outside the folder.
    """
    if not SAFE_FILE.fullmatch(file_name or ""):
        raise InputError(f"invalid config file name {file_name!r}")
    root = Path(folder).resolve()
    path = (root / file_name).resolve()
    if path.parent != root:
        raise InputError(f"{file_name!r} would be written outside {root}")
    return path


def save_config(
    folder: Path | str,
    file_name: str,
    text: str,
    *,
    catalog: Catalog,
    expected: str,
    editor: Editor,
    audit: Path,
) -> AuditEntry | None:
    """Validate a config text and save it if the file is still the one opened.

    Args:
        folder: the experiments folder (must exist).
        file_name: ``<id>.yaml`` or ``metrics.yaml``.
        text: the YAML text.
        catalog: the metric catalog (experiments are validated against it).
        expected: the content hash the editor opened (:data:`editing.ABSENT`
            for a new file).
        editor: who saves, with their role.
        audit: the audit trail.

    Returns:
        The audit entry, or None when the text equals the file (nothing written).

    Raises:
        InputError: an unsafe name, a missing folder, an invalid text (a
            :class:`ConfigError` with ``file:line``), a role that may not save
            (:class:`AccessDeniedError`), or a file changed since it was opened
            (:class:`editing.ChangedOnDiskError`).
    """
    if not Path(folder).is_dir():
        raise InputError(f"{folder}: experiments folder not found")
    path = target_path(folder, file_name)
    if file_name == CATALOG_FILE:
        checked = validate_catalog_text(text, folder)
    else:
        checked = validate_experiment_text(text, folder, catalog, file_name)
    if isinstance(checked, ConfigError):
        raise checked
    return write_config(path, text, expected=expected, editor=editor, audit=audit)


# --- experiments: form values <-> YAML -----------------------------------------------


@dataclass(frozen=True)
class ExperimentForm:
    """The experiment form's values (CONTRACT §3), as typed by an analyst.

    Lists typed as text (``variants``, ``dimensions``, ``tags``) stay text here and
    are split by :func:`experiment_yaml`; the loader then validates them with
    ``file:line``. Empty or zero optional values are left out of the YAML.
    """

    id: str
    start: dt.date | None
    variants: str = "control: 0.5, treatment: 0.5"
    primary_metric: tuple[str, ...] = ()
    name: str = ""
    hypothesis: str = ""
    owner: str = ""
    end: dt.date | None = None
    control: str = ""
    secondary_metrics: tuple[str, ...] = ()
    guardrail_metrics: tuple[str, ...] = ()
    alpha: float = DEFAULT_ALPHA
    decision: str = "sequential"
    dimensions: str = ""
    status: str = ""
    decision_note: str = ""
    planned_users: int = 0
    sequential_tuning: int = DEFAULT_SEQUENTIAL_TUNING
    sequential_method: str = "mixture"
    bayes_prior_sd: float = 0.0
    bayes_prior_mean: float = 0.0
    correction: str = "holm"
    cuped_days: int = 0
    tags: str = ""
    columns: tuple[tuple[str, str], ...] = ()


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _scalar(text: str) -> Any:
    """A typed YAML scalar from text ('0.5' → 0.5, 'phone' → 'phone')."""
    try:
        value = parse_yaml(text, "<form>")
    except ConfigError:
        return text
    return value if isinstance(value, str | int | float | bool) else text


def parse_variants(text: str) -> list[Any]:
    """Variants typed as ``id: weight, id: weight`` (or ids only, equal split).

    Returns:
        Items for the YAML ``variants`` list: ``{"id", "weight"}`` mappings, or bare
        ids when no weight is given. Bad weights stay text so that the loader
        names them with ``file:line``.
    """
    out: list[Any] = []
    for part in _names(text):
        variant, sep, weight = part.partition(":")
        if sep:
            out.append({"id": variant.strip(), "weight": _scalar(weight.strip())})
        else:
            out.append(variant.strip())
    return out


def experiment_yaml(form: ExperimentForm) -> str:
    """The YAML text of an experiment config from the form's values.

    Args:
        form: the form's values.

    Returns:
        Block YAML in the contract's key order, optional keys only when set.
    """
    return as_yaml_mapping(experiment_data(form))


def experiment_data(form: ExperimentForm) -> dict[str, Any]:
    """The config mapping of the form's values (contract key order, set keys only)."""
    data: dict[str, Any] = {"id": form.id.strip()}
    for key in ("name", "hypothesis", "owner"):
        if getattr(form, key).strip():
            data[key] = getattr(form, key).strip()
    if form.start is not None:
        data["start"] = form.start
    if form.end is not None:
        data["end"] = form.end
    data["variants"] = parse_variants(form.variants)
    if form.control.strip():
        data["control"] = form.control.strip()
    primary = list(form.primary_metric)
    data["primary_metric"] = primary[0] if len(primary) == 1 else primary
    for key in ("secondary_metrics", "guardrail_metrics"):
        if getattr(form, key):
            data[key] = list(getattr(form, key))
    data["alpha"] = form.alpha
    data["decision"] = form.decision
    for key in ("dimensions", "tags"):
        if _names(getattr(form, key)):
            data[key] = _names(getattr(form, key))
    if form.status:
        data["status"] = form.status
    if form.decision_note.strip():
        data["decision_note"] = form.decision_note.strip()
    if form.planned_users:
        data["planned_users"] = int(form.planned_users)
    if form.sequential_tuning != DEFAULT_SEQUENTIAL_TUNING:
        data["sequential_tuning"] = int(form.sequential_tuning)
    if form.sequential_method != "mixture":
        data["sequential_method"] = form.sequential_method
    if form.bayes_prior_sd > 0:
        data["bayes_prior"] = {
            "mean": float(form.bayes_prior_mean),
            "sd": float(form.bayes_prior_sd),
        }
    if form.correction != "holm":
        data["correction"] = form.correction
    if form.cuped_days:
        data["cuped_days"] = int(form.cuped_days)
    columns = {
        k: v.strip() for k, v in sorted(form.columns) if v.strip() and v.strip() != k
    }
    if columns:
        data["columns"] = columns
    return data


def edit_experiment_text(
    original: str, before: ExperimentForm, after: ExperimentForm, file_name: str
) -> str:
    """The experiment's text with the form's edits applied, comments kept.

    Args:
        original: the config's current text.
        before: the form's values as it was filled from ``original``.
        after: the submitted form's values.
        file_name: the file's name, for error messages.

    Raises:
        ConfigError: the original text is YAML the config loader refuses.
    """
    return apply_changes(
        original, experiment_data(before), experiment_data(after), file_name=file_name
    )


def form_from_experiment(exp: Experiment) -> ExperimentForm:
    """The form's values for an existing experiment (for editing)."""
    weights = {v.weight for v in exp.variants}
    if len(weights) == 1:
        variants = ", ".join(v.id for v in exp.variants)  # equal split
    else:
        variants = ", ".join(f"{v.id}: {v.weight!r}" for v in exp.variants)
    prior = exp.bayes_prior
    return ExperimentForm(
        id=exp.id,
        start=exp.start,
        variants=variants,
        primary_metric=exp.primary_metrics,
        name=exp.name,
        hypothesis=exp.hypothesis,
        owner=exp.owner,
        end=exp.end,
        control=exp.control if exp.control != exp.variants[0].id else "",
        secondary_metrics=exp.secondary_metrics,
        guardrail_metrics=exp.guardrail_metrics,
        alpha=exp.alpha,
        decision=exp.decision,
        dimensions=", ".join(exp.dimensions),
        status=exp.status or "",
        decision_note=exp.decision_note,
        planned_users=exp.planned_users or 0,
        sequential_tuning=exp.sequential_tuning,
        sequential_method=exp.sequential_method,
        bayes_prior_sd=prior.sd if prior else 0.0,
        bayes_prior_mean=prior.mean if prior else 0.0,
        correction=exp.correction,
        cuped_days=exp.cuped_days,
        tags=", ".join(exp.tags),
        columns=exp.columns,
    )


def _key_line(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(f"{key}:"):
            return number
    return None


def validate_experiment_text(
    text: str,
    folder: Path | str,
    catalog: Catalog,
    file_name: str = NEW_FILE,
    ids: Mapping[str, str] | None = None,
) -> Experiment | ConfigError:
    """Validate experiment YAML exactly as the loader reads a file.

    The text is written to a temporary folder and loaded with
    :func:`cxlab.config.load_experiment`; an error is renamed to the target file
    (``<folder>/<file_name>:LINE``), so it reads as the CLI would report the saved
    file. The id must also be safe as a file name and unique in the folder.

    Args:
        text: the YAML text.
        folder: the experiments folder the file is meant for.
        catalog: the metric catalog.
        file_name: the target file's name.
        ids: :func:`experiment_ids` of the folder, when the caller keeps them (a
            page validating as one types); read from the folder otherwise.

    Returns:
        The parsed experiment, or the first :class:`ConfigError` (returned, not
        raised, for live validation).
    """
    target = Path(folder) / file_name
    try:
        target_path(folder, file_name)
    except InputError as exc:
        return ConfigError(target, None, str(exc))
    with tempfile.TemporaryDirectory(prefix="cxlab-studio-") as tmp:
        path = Path(tmp) / file_name
        path.write_text(text, encoding="utf-8")
        try:
            exp = load_experiment(path, catalog)
        except ConfigError as exc:
            return ConfigError(target, exc.line, exc.detail)
    try:
        check_id(exp.id)
    except InputError as exc:
        return ConfigError(target, _key_line(text, "id"), str(exc))
    taken = experiment_ids(folder, catalog) if ids is None else ids
    for other, other_id in taken.items():
        if other != file_name and other_id == exp.id:
            return ConfigError(
                target,
                _key_line(text, "id"),
                f"experiment id '{exp.id}' is already used by {Path(folder) / other}",
            )
    return dataclasses.replace(exp, source=str(target))


def experiment_ids(folder: Path | str, catalog: Catalog) -> dict[str, str]:
    """The id of each experiment file of a folder that loads, by file name.

    A broken file is left out: it is reported where the folder is browsed.
    """
    ids = {}
    for path in experiment_files(folder):
        try:
            ids[path.name] = load_experiment(path, catalog).id
        except ConfigError:
            continue
    return ids


@dataclass(frozen=True)
class Folder:
    """What an experiments folder holds, read file by file so one error stays local."""

    catalog: Catalog | None
    experiments: tuple[Experiment, ...]
    errors: tuple[str, ...]


def read_folder(folder: Path | str) -> Folder:
    """Load the catalog and every experiment, collecting errors instead of failing."""
    try:
        catalog = load_catalog(Path(folder) / CATALOG_FILE)
    except ConfigError as exc:
        return Folder(None, (), (str(exc),))
    try:
        experiments, errors = load_experiments_each(folder, catalog)
    except ConfigError as exc:
        return Folder(catalog, (), (str(exc),))
    return Folder(catalog, tuple(experiments), tuple(str(e) for e in errors))


def experiments_table(experiments: Sequence[Experiment]) -> pl.DataFrame:
    """One row per experiment for browsing."""
    return pl.DataFrame(
        {
            "id": [e.id for e in experiments],
            "name": [e.name for e in experiments],
            "status": [e.status or "" for e in experiments],
            "owner": [e.owner for e in experiments],
            "start": [e.start.isoformat() for e in experiments],
            "end": [e.end.isoformat() if e.end else "open" for e in experiments],
            "variants": [
                ", ".join(f"{v.id} {v.weight:.0%}" for v in e.variants)
                for e in experiments
            ],
            "primary": [", ".join(e.primary_metrics) for e in experiments],
            "decision": [e.decision for e in experiments],
            "file": [Path(e.source).name for e in experiments],
        },
    )


def _spec_text(metric: MetricDef) -> str:
    if metric.type == "ratio" and metric.numerator and metric.denominator:
        num, den = metric.numerator, metric.denominator
        return f"{num.aggregate}({num.event}) / {den.aggregate}({den.event})"
    if metric.type == "mean":
        return f"{metric.aggregate}({metric.event}) per user"
    if metric.type == "categorical":
        return f"count({metric.event}) per user by {metric.category}"
    if metric.type == "time_to_event":
        return f"{metric.start_event} → {metric.end_event}, {metric.horizon_hours:g} h"
    return metric.event or ""


def catalog_table(catalog: Catalog) -> pl.DataFrame:
    """One row per metric of the catalog for browsing."""
    metrics = catalog.metrics
    return pl.DataFrame(
        {
            "id": [m.id for m in metrics],
            "name": [m.name for m in metrics],
            "type": [m.type for m in metrics],
            "direction": [m.direction for m in metrics],
            "computed from": [_spec_text(m) for m in metrics],
            "window_days": [m.window_days for m in metrics],
            "filter": [", ".join(f"{k}={v}" for k, v in m.filter) for m in metrics],
            "description": [m.description for m in metrics],
        },
        schema_overrides={"window_days": pl.Int64},
    )


def preview_table(result: ExperimentResult) -> pl.DataFrame:
    """The preview's small results table: one row per metric and treatment.

    The estimate, interval, statistic and verdict are the decision method's call
    (:mod:`cxlab.decision`), as on the results page: the adjusted p-value (fixed
    or sequential) or the probability to beat control (Bayesian).
    """
    method = result.experiment.decision
    rows = []
    for r in result.results:
        call = r.call
        rows.append(
            {
                "metric": r.metric.label,
                "role": r.role,
                "variant": r.variant,
                "control": r.control.value,
                "treatment": r.treatment.value,
                "delta": effect_text(r.metric, call),
                "interval": ci_text(r, call, "rel"),
                "level": level_text(call),
                charts.statistic_label(method): charts.statistic_of(r, method),
                "verdict": r.verdict,
            }
        )
    return pl.DataFrame(rows)


# --- metrics: form values <-> a catalog block ----------------------------------------


@dataclass(frozen=True)
class MetricForm:
    """The metric form's values (CONTRACT §2)."""

    id: str
    type: str = "proportion"
    direction: str = "increase"
    name: str = ""
    description: str = ""
    event: str = ""
    aggregate: str = "sum"
    numerator_event: str = ""
    numerator_aggregate: str = "count"
    denominator_event: str = ""
    denominator_aggregate: str = "count"
    window_days: int = 0
    filter: str = ""
    format: str = ""
    category: str = ""  # categorical
    start_event: str = ""  # time_to_event
    end_event: str = ""
    horizon_hours: float = 0.0


def parse_filter(text: str) -> dict[str, Any]:
    """A filter typed as ``column=value, column=value``."""
    out: dict[str, Any] = {}
    for part in _names(text):
        column, _, value = part.partition("=")
        out[column.strip()] = _scalar(value.strip())
    return out


def metric_block(form: MetricForm) -> str:
    """The catalog block (``id:`` and its keys) of one metric from the form."""
    return as_yaml_mapping({form.id.strip(): metric_spec(form)})


def metric_spec(form: MetricForm) -> dict[str, Any]:
    """The definition mapping of one metric from the form (its keys, no id)."""
    spec: dict[str, Any] = {}
    if form.name.strip():
        spec["name"] = form.name.strip()
    if form.description.strip():
        spec["description"] = form.description.strip()
    spec["type"] = form.type
    if form.type == "ratio":
        spec["numerator"] = {
            "event": form.numerator_event.strip(),
            "aggregate": form.numerator_aggregate,
        }
        spec["denominator"] = {
            "event": form.denominator_event.strip(),
            "aggregate": form.denominator_aggregate,
        }
    elif form.type == "time_to_event":
        spec["start_event"] = form.start_event.strip()
        spec["end_event"] = form.end_event.strip()
        spec["horizon_hours"] = form.horizon_hours
    else:
        spec["event"] = form.event.strip()
        if form.type == "mean":
            spec["aggregate"] = form.aggregate
        if form.type == "categorical":
            spec["category"] = form.category.strip()
    if form.window_days:
        spec["window_days"] = int(form.window_days)
    if parse_filter(form.filter):
        spec["filter"] = parse_filter(form.filter)
    spec["direction"] = form.direction
    if form.format:
        spec["format"] = form.format
    return spec


def form_from_metric(metric: MetricDef) -> MetricForm:
    """The form's values for an existing metric (for editing)."""
    num, den = metric.numerator, metric.denominator
    return MetricForm(
        id=metric.id,
        type=metric.type,
        direction=metric.direction,
        name=metric.name,
        description=metric.description,
        event=metric.event or "",
        aggregate=metric.aggregate,
        numerator_event=num.event if num else "",
        numerator_aggregate=num.aggregate if num else "count",
        denominator_event=den.event if den else "",
        denominator_aggregate=den.aggregate if den else "count",
        window_days=metric.window_days or 0,
        filter=", ".join(f"{k}={v}" for k, v in metric.filter),
        format=metric.format or "",
        category=metric.category or "",
        start_event=metric.start_event or "",
        end_event=metric.end_event or "",
        horizon_hours=metric.horizon_hours or 0.0,
    )


def catalog_with_metric(
    catalog_text: str, form: MetricForm, before: MetricForm | None = None
) -> str:
    """The catalog text with one metric edited or appended, comments kept.

    Editing (``before`` given, same id): only the keys the form changed are
    rewritten (:func:`cxlab.editing.apply_changes`); the catalog's comments, key
    order and other metrics stay as written. A new metric is appended at the end.

    Args:
        catalog_text: the catalog's current text.
        form: the submitted form's values.
        before: the form's values as it was filled, when editing a metric.

    Raises:
        InputError: the metric id is not a safe id, a new metric's id is taken,
            or the catalog is not YAML the config loader accepts (a
            :class:`ConfigError`).
    """
    metric_id = form.id.strip()
    if not SAFE_ID.fullmatch(metric_id):
        raise InputError(f"invalid metric id {metric_id!r}: ids are {ID_RULE}")
    if before is not None and before.id == metric_id:
        return apply_changes(
            catalog_text,
            metric_spec(before),
            metric_spec(form),
            file_name=CATALOG_FILE,
            at=(metric_id,),
        )
    data = parse_yaml(catalog_text, CATALOG_FILE)
    if isinstance(data, dict) and metric_id in data:
        raise InputError(f"metric '{metric_id}' exists: pick it to edit it")
    text = catalog_text if catalog_text.endswith("\n") else catalog_text + "\n"
    return text + ("\n" if text.strip() else "") + metric_block(form)


def validate_catalog_text(text: str, folder: Path | str) -> Catalog | ConfigError:
    """Validate a whole catalog text as the loader would, with every experiment.

    The text is written to a temporary folder as ``metrics.yaml`` and loaded with
    :func:`cxlab.config.load_catalog`; every experiment of ``folder`` must still
    load against it. Catalog errors are renamed to ``<folder>/metrics.yaml``.

    Returns:
        The catalog, or the first :class:`ConfigError` (returned, not raised).
    """
    target = Path(folder) / CATALOG_FILE
    with tempfile.TemporaryDirectory(prefix="cxlab-studio-") as tmp:
        path = Path(tmp) / CATALOG_FILE
        path.write_text(text, encoding="utf-8")
        try:
            catalog = load_catalog(path)
        except ConfigError as exc:
            return ConfigError(target, exc.line, exc.detail)
    catalog = dataclasses.replace(catalog, source=str(target))
    for path in experiment_files(folder):
        try:
            load_experiment(path, catalog)
        except ConfigError as exc:
            return exc
    return catalog


# --- the data source ---------------------------------------------------------------


def default_mapping(columns: Sequence[str]) -> dict[str, str]:
    """Contract name → log column: the same name where the log has it, else ''."""
    return {c: (c if c in columns else "") for c in CANONICAL_COLUMNS}


def columns_yaml(mapping: Mapping[str, str]) -> str:
    """The ``columns:`` key for an experiment config (renamed columns only)."""
    renamed = {k: v for k, v in mapping.items() if v and v != k}
    return as_yaml_mapping({"columns": renamed}) if renamed else ""


def events_per_day(source: EventSource) -> pl.DataFrame:
    """Rows per UTC day and event type (one lazy scan of two columns).

    Raises:
        EventLogError: the log breaks CONTRACT §1.
    """
    return (
        scan_events(source)
        .filter(pl.col("timestamp").is_not_null())
        .group_by(pl.col("timestamp").dt.date().alias("day"), "event")
        .agg(pl.len().alias("rows"))
        .sort("day", "event")
        .collect()
    )


def error_parts(exc: InputError) -> tuple[str, str | None]:
    """An error's headline and, for a log, its first offending rows."""
    rows = getattr(exc, "rows", None)
    text = str(exc)
    if rows:
        text = text.split("\nFirst offending rows:")[0]
    return text, rows
