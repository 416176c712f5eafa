"""The config studio: YAML from forms, validation as the loader, guarded saves."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest

from cxlab import editing, sources, studio
from cxlab.config import (
    Experiment,
    MetricDef,
    load_catalog,
    load_experiment,
    load_experiments,
)
from cxlab.errors import ConfigError, InputError
from cxlab.events import resolve_source

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_catalog(ROOT / "experiments" / "metrics.yaml")
EXPERIMENTS = load_experiments(ROOT / "experiments", CATALOG)
EDITOR = editing.Editor("ana@example.com", "analyst")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the bundled experiments folder."""
    target = tmp_path / "experiments"
    shutil.copytree(ROOT / "experiments", target)
    return target


def _same(a: Experiment, b: Experiment) -> bool:
    return dataclasses.replace(a, content_hash="") == dataclasses.replace(
        b, content_hash=""
    )


def full_form() -> studio.ExperimentForm:
    return studio.ExperimentForm(
        id="faster-refunds",
        start=dt.date(2026, 11, 2),
        end=dt.date(2026, 11, 30),
        variants="instant: 0.25, control: 0.25, two_day: 0.5",
        control="control",
        primary_metric=("contacts_per_order",),
        secondary_metrics=("nps", "conversion"),
        guardrail_metrics=("revenue_per_user",),
        name="Faster refunds",
        hypothesis='Refunding at once cuts "where is my refund" contacts.',
        owner="returns",
        alpha=0.1,
        decision="bayesian",
        dimensions="platform, country",
        status="planned",
        decision_note="waiting for legal",
        planned_users=80_000,
        sequential_tuning=60_000,
        sequential_method="group",
        bayes_prior_sd=0.2,
        bayes_prior_mean=0.01,
        correction="bh",
        cuped_days=14,
        tags="returns, refunds",
        columns=(("user_id", "customer"), ("timestamp", "ts"), ("event", "")),
    )


# --- YAML round trip -----------------------------------------------------------


@pytest.mark.parametrize("exp", EXPERIMENTS, ids=lambda e: e.id)
def test_yaml_of_an_edited_bundled_experiment_parses_to_the_same_experiment(
    exp: Experiment, folder: Path
) -> None:
    text = studio.experiment_yaml(studio.form_from_experiment(exp))
    parsed = studio.validate_experiment_text(text, folder, CATALOG, f"{exp.id}.yaml")
    assert not isinstance(parsed, ConfigError), parsed
    assert _same(parsed, exp)


def test_yaml_of_a_form_with_every_option_round_trips(folder: Path) -> None:
    form = full_form()
    text = studio.experiment_yaml(form)
    parsed = studio.validate_experiment_text(
        text, folder, CATALOG, "faster-refunds.yaml"
    )
    assert not isinstance(parsed, ConfigError), parsed
    assert parsed.control == "control"
    assert [v.weight for v in parsed.variants] == [0.25, 0.25, 0.5]
    assert parsed.columns == (("timestamp", "ts"), ("user_id", "customer"))
    assert parsed.bayes_prior is not None
    assert parsed.bayes_prior.sd == 0.2
    assert parsed.dimensions == ("platform", "country")
    assert (parsed.sequential_method, parsed.correction) == ("group", "bh")
    assert (parsed.cuped_days, parsed.planned_users) == (14, 80_000)
    again = studio.experiment_yaml(studio.form_from_experiment(parsed))
    assert again == text


def test_equal_weights_are_written_as_bare_variant_ids() -> None:
    exp = next(e for e in EXPERIMENTS if len({v.weight for v in e.variants}) == 1)
    form = studio.form_from_experiment(exp)
    assert form.variants == ", ".join(exp.variant_ids)


# --- validation ------------------------------------------------------------------


def test_invalid_config_gives_config_error_with_file_and_line_and_writes_nothing(
    folder: Path,
) -> None:
    before = sorted(p.name for p in folder.iterdir())
    text = studio.experiment_yaml(dataclasses.replace(full_form(), alpha=0.7))
    line = text.splitlines().index("alpha: 0.7") + 1
    error = studio.validate_experiment_text(
        text, folder, CATALOG, "faster-refunds.yaml"
    )
    assert isinstance(error, ConfigError)
    assert str(error) == (
        f"{folder / 'faster-refunds.yaml'}:{line}: "
        "'alpha' must be between 0 and 0.5, got 0.7"
    )
    assert sorted(p.name for p in folder.iterdir()) == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id: x\nname: &n x\n", "2: anchor '&n' is not allowed"),
        ("id: x\nid: y\n", "2: key 'id' given twice (first on line 1)"),
        ("id: x\nstart: 2026-02-30\n", "2: start: 2026-02-30 is not a date"),
    ],
)
def test_editor_text_goes_through_the_one_config_loader(
    folder: Path, text: str, message: str
) -> None:
    error = studio.validate_experiment_text(text, folder, CATALOG, "x.yaml")
    assert str(error) == f"{folder / 'x.yaml'}:{message}"


def test_variants_typed_with_shares_are_refused_as_ids(folder: Path) -> None:
    form = dataclasses.replace(full_form(), variants="control 50%, treatment 50%")
    text = studio.experiment_yaml(form)
    error = studio.validate_experiment_text(text, folder, CATALOG, "x.yaml")
    assert isinstance(error, ConfigError)
    assert "invalid variant id 'control 50%'" in str(error)


def test_catalog_with_alias_is_refused_when_a_metric_is_added() -> None:
    with pytest.raises(ConfigError, match="anchor '&b'"):
        studio.catalog_with_metric("a: &b {type: mean}\n", studio.MetricForm(id="c"))


def test_error_is_the_one_the_loader_gives_for_the_saved_file(
    folder: Path, tmp_path: Path
) -> None:
    text = studio.experiment_yaml(
        dataclasses.replace(full_form(), primary_metric=("no_such_metric",))
    )
    error = studio.validate_experiment_text(
        text, folder, CATALOG, "faster-refunds.yaml"
    )
    on_disk = tmp_path / "faster-refunds.yaml"
    on_disk.write_text(text)
    with pytest.raises(ConfigError) as loader:
        load_experiment(on_disk, CATALOG)
    assert isinstance(error, ConfigError)
    assert (error.line, error.detail) == (loader.value.line, loader.value.detail)
    assert "metric 'no_such_metric' is not in the catalog" in error.detail


def test_weights_not_summing_to_one_are_named_at_the_variants_line(
    folder: Path,
) -> None:
    form = dataclasses.replace(full_form(), variants="control: 0.7, fast: 0.5")
    text = studio.experiment_yaml(form)
    error = studio.validate_experiment_text(text, folder, CATALOG, "x.yaml")
    assert isinstance(error, ConfigError)
    assert error.line == text.splitlines().index("variants:") + 1
    assert "variant weights must sum to 1, got 1.2" in str(error)


def test_an_id_already_used_by_another_file_is_refused(folder: Path) -> None:
    exp = EXPERIMENTS[0]
    text = studio.experiment_yaml(studio.form_from_experiment(exp))
    own = Path(exp.source).name
    error = studio.validate_experiment_text(text, folder, CATALOG, "copy.yaml")
    assert isinstance(error, ConfigError)
    assert str(error) == (
        f"{folder / 'copy.yaml'}:{text.splitlines().index(f'id: {exp.id}') + 1}: "
        f"experiment id '{exp.id}' is already used by {folder / own}"
    )
    # the ids a page keeps (read once per folder content) give the same answers
    ids = studio.experiment_ids(folder, CATALOG)
    assert ids == {Path(e.source).name: e.id for e in EXPERIMENTS}
    kept = studio.validate_experiment_text(text, folder, CATALOG, "copy.yaml", ids)
    assert str(kept) == str(error)
    same_file = studio.validate_experiment_text(text, folder, CATALOG, own, ids)
    assert isinstance(same_file, Experiment)
    assert same_file.id == exp.id


# --- ids, paths, saving ------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", ["../evil", "a/b", "a\\b", "..", "", "Upper", "metrics", ".hidden", "x y"]
)
def test_path_traversal_and_unsafe_ids_are_rejected(bad: str) -> None:
    with pytest.raises(InputError):
        studio.experiment_file_name(bad)


def save(folder: Path, name: str, text: str, expected: str = editing.ABSENT) -> Any:
    return studio.save_config(
        folder,
        name,
        text,
        catalog=CATALOG,
        expected=expected,
        editor=EDITOR,
        audit=folder / editing.AUDIT_FILE,
    )


@pytest.mark.parametrize(
    "name", ["../evil.yaml", "sub/x.yaml", "/etc/x.yaml", "x.txt", "..yaml"]
)
def test_save_refuses_names_outside_the_folder(folder: Path, name: str) -> None:
    before = sorted(p.name for p in folder.parent.rglob("*"))
    with pytest.raises(InputError):
        save(folder, name, "id: x\n")
    assert sorted(p.name for p in folder.parent.rglob("*")) == before


def test_save_writes_the_text_and_the_loader_reads_it(folder: Path) -> None:
    text = studio.experiment_yaml(full_form())
    entry = save(folder, "faster-refunds.yaml", text)
    path = folder / "faster-refunds.yaml"
    assert path.read_text() == text
    assert load_experiment(path, CATALOG).id == "faster-refunds"
    assert (entry.file, entry.user) == ("faster-refunds.yaml", "ana@example.com")


def test_save_validates_the_text_and_writes_nothing_when_invalid(
    folder: Path,
) -> None:
    path = folder / "checkout-aa-test.yaml"
    original = path.read_text()
    opened = editing.open_config(path)
    bad = original.replace("weight: 0.5}", "weight: 0.7}", 1)
    with pytest.raises(ConfigError, match="variant weights must sum to 1"):
        save(folder, path.name, bad, opened.hash)
    assert path.read_text() == original
    assert not (folder / editing.AUDIT_FILE).exists()


def test_a_new_config_is_refused_over_an_existing_file(folder: Path) -> None:
    path = folder / "proactive-shipping-email.yaml"
    original = path.read_text()
    with pytest.raises(editing.ChangedOnDiskError, match="changed since you opened"):
        save(folder, path.name, original + "# edited\n")
    assert path.read_text() == original
    save(folder, path.name, original + "# edited\n", editing.open_config(path).hash)
    assert path.read_text().endswith("# edited\n")


def test_a_catalog_save_is_validated_with_every_experiment(folder: Path) -> None:
    path = folder / "metrics.yaml"
    text = path.read_text()
    unused = text.replace("\nconversion:\n", "\nconversion_renamed:\n")
    with pytest.raises(ConfigError, match="conversion"):
        save(folder, "metrics.yaml", unused, editing.open_config(path).hash)
    assert path.read_text() == text


# --- the metric catalog --------------------------------------------------------------


@pytest.mark.parametrize("metric", CATALOG.metrics, ids=lambda m: m.id)
def test_an_unchanged_metric_form_leaves_the_catalog_byte_identical(
    metric: MetricDef, folder: Path
) -> None:
    text = (folder / "metrics.yaml").read_text()
    form = studio.form_from_metric(metric)
    assert studio.catalog_with_metric(text, form, form) == text


def test_editing_a_metric_changes_only_its_edited_key(folder: Path) -> None:
    text = (folder / "metrics.yaml").read_text()
    form = studio.form_from_metric(CATALOG["revenue_per_user"])
    edited = dataclasses.replace(form, format="number")
    new = studio.catalog_with_metric(text, edited, form)
    assert editing.config_diff(text, new).count("\n-") == 1
    assert "+  format: number\n" in editing.config_diff(text, new)
    assert new.startswith("# Metric catalog")  # the header comment survives
    catalog = studio.validate_catalog_text(new, folder)
    assert not isinstance(catalog, ConfigError), catalog
    assert catalog["revenue_per_user"].format == "number"
    assert catalog.metrics[:2] == CATALOG.metrics[:2]


def test_a_new_metric_is_appended_and_others_are_untouched(folder: Path) -> None:
    text = (folder / "metrics.yaml").read_text()
    form = studio.MetricForm(
        id="refund_rate", type="proportion", event="refund", direction="decrease"
    )
    new = studio.catalog_with_metric(text, form)
    assert new.startswith(text)
    catalog = studio.validate_catalog_text(new, folder)
    assert not isinstance(catalog, ConfigError)
    assert catalog.ids == (*CATALOG.ids, "refund_rate")


def test_a_new_metric_with_a_taken_id_is_refused(folder: Path) -> None:
    text = (folder / "metrics.yaml").read_text()
    with pytest.raises(InputError, match="metric 'nps' exists: pick it to edit it"):
        studio.catalog_with_metric(text, studio.MetricForm(id="nps", event="x"))


def test_an_invalid_metric_is_named_with_catalog_file_and_line(folder: Path) -> None:
    text = (folder / "metrics.yaml").read_text()
    form = studio.MetricForm(id="bad", event="order", filter="event=order")
    new = studio.catalog_with_metric(text, form)
    error = studio.validate_catalog_text(new, folder)
    assert isinstance(error, ConfigError)
    assert error.file == str(folder / "metrics.yaml")
    assert new.splitlines()[error.line - 1].startswith("  filter:")
    assert "can only test dimension columns" in error.detail


# --- the data source -----------------------------------------------------------------


def test_column_mapping_yaml_lists_renamed_columns_only(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text("ts,customer,event,variant\n")
    names = [n for n, _ in sources.log_columns(resolve_source(log))]
    assert names == ["ts", "customer", "event", "variant"]
    mapping = studio.default_mapping(names)
    assert mapping["event"] == "event"
    assert mapping["user_id"] == ""
    mapping |= {"user_id": "customer", "timestamp": "ts"}
    assert (
        studio.columns_yaml(mapping)
        == "columns:\n  timestamp: ts\n  user_id: customer\n"
    )
