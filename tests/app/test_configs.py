"""The Configs page: form and YAML editor, file:line as you type, guarded saves."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from cxlab import api, studio
from cxlab.config import load_catalog, load_experiment
from cxlab.events import resolve_source
from cxlab.sample import write_sample
from cxlab.ui import cache

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "configs.py")
NEW = "configs_exp_new_"
APPLY = "form-Apply to YAML"
VALIDATE = f"FormSubmitter:{NEW}{APPLY}"
AA = "checkout-aa-test"
AA_PREFIX = f"configs_exp_{AA}_"
TIMEOUT = 90


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the bundled experiments folder the page is pointed at."""
    target = tmp_path / "experiments"
    shutil.copytree(ROOT / "experiments", target)
    return target


def page(folder: Path, events: Path | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["experiments_dir"] = str(folder)
    if events is not None:
        at.session_state[cache.EVENTS_KEY] = str(events)
    return at.run()


def fill_new(at: AppTest, exp_id: str, variants: str) -> AppTest:
    at.text_input(key=f"{NEW}id").input(exp_id)
    at.text_input(key=f"{NEW}name").input("Faster checkout")
    at.text_input(key=f"{NEW}variants").input(variants)
    at.date_input(key=f"{NEW}start").set_value(dt.date(2026, 9, 1))
    at.multiselect(key=f"{NEW}primary_metric").set_value(["conversion"])
    at.multiselect(key=f"{NEW}guardrail_metrics").set_value(["contacts_per_order"])
    at.selectbox(key=f"{NEW}decision").set_value("fixed")
    return at.button(key=VALIDATE).click().run()


def test_page_lists_the_catalog_and_the_experiments(folder: Path) -> None:
    at = page(folder)
    assert not at.exception
    experiments, metrics = at.dataframe[0].value, at.dataframe[1].value
    assert len(experiments) == len(list(folder.glob("*.yaml"))) - 1  # not metrics
    catalog = load_catalog(folder / "metrics.yaml")
    assert list(metrics["id"]) == list(catalog.ids)


def test_saving_a_new_valid_config_through_the_form_creates_the_file(
    folder: Path,
) -> None:
    at = fill_new(page(folder), "faster-checkout", "control: 0.5, one_click: 0.5")
    assert not at.exception
    assert not at.error
    assert "faster-checkout.yaml" in at.success[0].value
    assert "primary_metric: conversion" in at.code[0].value
    assert not (folder / "faster-checkout.yaml").exists()  # validated, not saved
    at.button(key="configs_exp_save").click().run()
    assert not at.exception
    saved = folder / "faster-checkout.yaml"
    assert saved.is_file()
    assert at.success[0].value == "Saved experiments/faster-checkout.yaml"
    exp = load_experiment(saved, load_catalog(folder / "metrics.yaml"))
    assert exp.variant_ids == ("control", "one_click")
    assert (exp.decision, exp.start) == ("fixed", dt.date(2026, 9, 1))
    assert exp.guardrail_metrics == ("contacts_per_order",)
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_an_invalid_config_shows_the_named_error_and_creates_nothing(
    folder: Path,
) -> None:
    before = sorted(p.name for p in folder.iterdir())
    at = fill_new(page(folder), "faster-checkout", "control: 0.7, one_click: 0.5")
    assert not at.exception
    text = at.text_area(key="configs_exp_text").value
    line = text.splitlines().index("variants:") + 1
    assert at.error[0].value == (
        f"experiments/faster-checkout.yaml:{line}: "
        "variant weights must sum to 1, got 1.2"
    )
    assert [b.key for b in at.button if b.key == "configs_exp_save"] == []
    assert sorted(p.name for p in folder.iterdir()) == before


def test_a_path_traversal_id_is_refused_and_nothing_is_written(
    folder: Path,
) -> None:
    before = sorted(p.name for p in folder.parent.rglob("*"))
    at = fill_new(page(folder), "../evil", "control, one_click")
    assert not at.exception
    assert "invalid experiment id '../evil'" in at.error[0].value
    assert [b.key for b in at.button if b.key == "configs_exp_save"] == []
    assert sorted(p.name for p in folder.parent.rglob("*")) == before


def open_aa(folder: Path) -> AppTest:
    at = page(folder)
    return at.selectbox(key="configs_exp_base").set_value(AA).run()


def test_a_form_edit_keeps_the_comments_and_saves_after_the_diff(
    folder: Path,
) -> None:
    path = folder / f"{AA}.yaml"
    original = path.read_text()
    at = open_aa(folder)
    assert at.text_area(key="configs_exp_text").value == original
    assert at.button(key="configs_exp_save").disabled  # nothing changed yet
    at.text_input(key=f"{AA_PREFIX}owner").input("new-owner")
    at.button(key=f"FormSubmitter:{AA_PREFIX}{APPLY}").click().run()
    assert not at.exception
    assert "+owner: new-owner" in at.code[0].value  # the diff
    assert path.read_text() == original  # not saved yet
    at.button(key="configs_exp_save").click().run()
    assert not at.exception
    assert at.success[0].value == f"Saved experiments/{AA}.yaml"
    expected = original.replace("owner: experimentation-platform", "owner: new-owner")
    assert path.read_text() == expected  # comments, order and styles kept


def test_yaml_errors_show_file_and_line_as_you_type_and_the_form_follows(
    folder: Path,
) -> None:
    at = open_aa(folder)
    text = at.text_area(key="configs_exp_text").value
    bad = text.replace("weight: 0.5}", "weight: 0.7}", 1)
    at.text_area(key="configs_exp_text").input(bad).run()
    assert not at.exception
    line = bad.splitlines().index("variants:") + 1
    assert at.error[0].value == (
        f"experiments/{AA}.yaml:{line}: variant weights must sum to 1, got 1.2"
    )
    assert [b.key for b in at.button if b.key == "configs_exp_save"] == []
    at.text_area(key="configs_exp_text").input(text.replace("fixed", "bayesian"))
    at.run()
    assert not at.error
    assert at.selectbox(key=f"{AA_PREFIX}decision").value == "bayesian"


def test_shares_typed_as_variant_ids_are_refused_in_the_form(folder: Path) -> None:
    at = fill_new(page(folder), "faster-checkout", "control 50%, treatment 50%")
    assert not at.exception
    assert "invalid variant id 'control 50%'" in at.error[0].value
    assert not (folder / "faster-checkout.yaml").exists()


def test_a_save_is_refused_when_the_file_changed_underneath(folder: Path) -> None:
    path = folder / f"{AA}.yaml"
    at = open_aa(folder)
    text = at.text_area(key="configs_exp_text").value
    at.text_area(key="configs_exp_text").input(text + "# mine\n").run()
    path.write_text(path.read_text() + "# theirs\n")  # another analyst saved
    at.button(key="configs_exp_save").click().run()
    assert not at.exception
    assert at.error[0].value.startswith(
        f"experiments/{AA}.yaml changed since you opened it (by an edit outside "
        "CX Lab at "
    )
    assert at.error[0].value.endswith("reload to see the other change")
    assert "+# theirs" in at.code[1].value  # the other change
    assert path.read_text().endswith("# theirs\n")
    at.button(key="configs_exp_reload").click().run()
    assert at.text_area(key="configs_exp_text").value == path.read_text()


def test_saves_are_shown_in_the_audit_trail_latest_first(folder: Path) -> None:
    at = open_aa(folder)
    text = at.text_area(key="configs_exp_text").value
    at.text_area(key="configs_exp_text").input(text + "# first\n").run()
    at.button(key="configs_exp_save").click().run()
    text = at.text_area(key="configs_exp_text").value
    at.text_area(key="configs_exp_text").input(text + "# second\n").run()
    at.button(key="configs_exp_save").click().run()
    assert not at.exception
    labels = [e.label for e in at.expander if "local user" in e.label]
    assert len(labels) == 2
    assert all(label.endswith(f"local user · {AA}.yaml") for label in labels)
    diffs = [c.value for c in at.code if c.value.startswith(f"--- a/{AA}.yaml")]
    assert diffs[-2].endswith("+# second")  # latest first
    assert diffs[-1].endswith("+# first")
    assert (folder / ".audit.jsonl").is_file()


def test_a_new_metric_is_added_to_the_catalog_with_its_comments_kept(
    folder: Path,
) -> None:
    at = page(folder)
    prefix = "configs_metric_new_"
    at.text_input(key=f"{prefix}id").input("refund_rate")
    at.text_input(key=f"{prefix}event").input("refund")
    at.selectbox(key=f"{prefix}direction").set_value("decrease")
    at.button(key=f"FormSubmitter:{prefix}{APPLY}").click().run()
    assert not at.exception
    assert not at.error
    at.button(key="configs_metric_save").click().run()
    catalog = load_catalog(folder / "metrics.yaml")
    assert catalog["refund_rate"].direction == "decrease"
    assert (folder / "metrics.yaml").read_text().startswith("# Metric catalog")


def test_preview_runs_the_unsaved_experiment_on_the_current_log(
    folder: Path, tmp_path: Path
) -> None:
    events = write_sample(tmp_path / "small.parquet", n_users=4000)
    at = page(folder, events)
    at.selectbox(key="configs_exp_base").set_value("proactive-shipping-email").run()
    prefix = "configs_exp_proactive-shipping-email_"
    at.button(key=f"FormSubmitter:{prefix}{APPLY}").click().run()
    at.button(key="configs_preview").click().run()
    assert not at.exception
    assert not at.error
    preview = at.dataframe[-1].value
    assert set(preview["metric"]) >= {"Contacts per order", "NPS"}
    assert set(preview["variant"]) == {"proactive_email"}


def test_a_preview_of_an_edit_the_scan_does_not_read_reuses_the_scanned_log(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An owner or alpha edit is previewed on the workspace's summaries (one scan
    of every experiment, shared with the other pages), with the numbers of a scan
    of the draft alone; a new end day is scanned alone."""
    events = write_sample(tmp_path / "small.parquet", n_users=4000)
    scans: list[int] = []
    summarize_all = cache.summarize_all

    def counted(source: object, experiments: list, *args: object, **kw: object):
        scans.append(len(experiments))
        return summarize_all(source, experiments, *args, **kw)

    monkeypatch.setattr(cache, "summarize_all", counted)
    st.cache_resource.clear()
    st.cache_data.clear()
    at = page(folder, events)
    at.selectbox(key="configs_exp_base").set_value("proactive-shipping-email").run()

    def preview(text: str) -> pd.DataFrame:
        at.text_area(key="configs_exp_text").set_value(text).run()
        at.button(key="configs_preview").click().run()
        assert not at.exception
        assert not at.error
        return at.dataframe[-1].value

    saved = at.text_area(key="configs_exp_text").value
    edited = saved.replace("owner: delivery-experience", "owner: someone-else")
    edited = edited.replace("alpha: 0.05", "alpha: 0.01")
    assert edited.count("someone-else") == 1
    assert "alpha: 0.01" in edited
    shown = preview(edited)
    experiments = len(list(folder.glob("*.yaml"))) - 1
    assert scans == [experiments]  # the workspace's scan, not the draft's own
    catalog = load_catalog(folder / "metrics.yaml")
    file_name = "proactive-shipping-email.yaml"
    draft = studio.validate_experiment_text(edited, folder, catalog, file_name)
    alone = api.summarize_all(resolve_source(events), [draft], catalog)[draft.id]
    expected = api.results_for(draft, catalog, alone, history=False)[0]
    # Summed with the other experiments' rows or alone: the same to rounding.
    pd.testing.assert_frame_equal(
        shown, studio.preview_table(expected).to_pandas(), check_exact=False, rtol=1e-12
    )
    preview(edited.replace("owner: someone-else", "owner: a-third"))
    assert scans == [experiments]  # no scan
    preview(edited.replace("end: 2026-10-18", "end: 2026-10-11"))
    assert scans == [experiments, 1]  # the end day is read by the scan: alone


def test_a_broken_config_in_the_folder_is_named_and_the_rest_still_works(
    folder: Path,
) -> None:
    (folder / "broken.yaml").write_text("id: broken\nstart: 2026-09-01\nvariant: []\n")
    at = page(folder)
    assert not at.exception
    assert at.error[0].value.startswith("experiments/broken.yaml:3: unknown key")
    ids = list(at.dataframe[0].value["id"])
    assert "broken" not in ids
    assert "proactive-shipping-email" in ids


def test_a_time_to_event_and_a_categorical_metric_are_made_from_the_form(
    folder: Path,
) -> None:
    at = page(folder)
    prefix = "configs_metric_new_"
    at.text_input(key=f"{prefix}id").input("hours_to_refund")
    at.selectbox(key=f"{prefix}type").set_value("time_to_event")
    at.selectbox(key=f"{prefix}direction").set_value("decrease")
    at.text_input(key=f"{prefix}start_event").input("refund_request")
    at.text_input(key=f"{prefix}end_event").input("refund_paid")
    at.number_input(key=f"{prefix}horizon_hours").set_value(96.0)
    at.button(key=f"FormSubmitter:{prefix}{APPLY}").click().run()
    assert not at.exception
    assert not at.error
    at.button(key="configs_metric_save").click().run()
    at.selectbox(key="configs_m_base").set_value("(new)").run()
    at.text_input(key=f"{prefix}id").input("refund_reasons")
    at.selectbox(key=f"{prefix}type").set_value("categorical")
    at.text_input(key=f"{prefix}event").input("refund_request")
    at.text_input(key=f"{prefix}category").input("reason")
    at.button(key=f"FormSubmitter:{prefix}{APPLY}").click().run()
    assert not at.exception
    assert not at.error
    at.button(key="configs_metric_save").click().run()
    catalog = load_catalog(folder / "metrics.yaml")
    refund = catalog["hours_to_refund"]
    assert (refund.type, refund.start_event, refund.end_event) == (
        "time_to_event",
        "refund_request",
        "refund_paid",
    )
    assert refund.horizon_hours == 96.0
    reasons = catalog["refund_reasons"]
    assert (reasons.type, reasons.event, reasons.category) == (
        "categorical",
        "refund_request",
        "reason",
    )


def test_an_unsaved_yaml_edit_survives_leaving_the_page_and_coming_back(
    folder: Path,
) -> None:
    # Streamlit drops a widget's value when its page is left; coming back to the
    # Configs page raised KeyError on the YAML text before the draft was kept.
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.session_state["experiments_dir"] = str(folder)
    at.run()
    at.switch_page("pages/configs.py").run()
    assert not at.exception
    edited = at.text_area(key="configs_metric_text").value + "# a draft\n"
    at.text_area(key="configs_metric_text").input(edited).run()
    at.switch_page("pages/portfolio.py").run()
    assert not at.exception
    at.switch_page("pages/configs.py").run()
    assert not at.exception
    assert at.text_area(key="configs_metric_text").value == edited
