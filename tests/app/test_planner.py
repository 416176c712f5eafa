"""The Planner page: prefilled from the log, numbers equal to cxlab.planning."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cxlab import planning
from cxlab.api import summarize_all
from cxlab.config import load_catalog, load_experiments
from cxlab.events import resolve_source
from cxlab.ui import cache
from tests.app.conftest import drawn

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "planner.py")
TIMEOUT = 120
CATALOG = load_catalog(ROOT / "experiments" / "metrics.yaml")
EXPERIMENTS = load_experiments(ROOT / "experiments", CATALOG)


def number(at: AppTest, suffix: str) -> float:
    """The value of the number input whose key ends with ``suffix``."""
    return next(n.value for n in at.number_input if n.key.endswith(suffix))


def set_number(at: AppTest, suffix: str, value: float) -> None:
    next(n for n in at.number_input if n.key.endswith(suffix)).set_value(value)


@pytest.fixture(scope="module")
def conversion_baseline() -> planning.Baseline:
    """The baseline the engine gives for conversion on the sample log."""
    source = resolve_source(cache.ensure_sample())
    summaries = summarize_all(source, EXPERIMENTS, CATALOG)
    exp = planning.pick_experiment("conversion", EXPERIMENTS, summaries=summaries)
    return planning.baseline_from_summaries(
        CATALOG["conversion"], exp, summaries[exp.id]
    )


def test_inputs_are_prefilled_from_the_control_arm_of_the_latest_healthy_experiment(
    conversion_baseline: planning.Baseline,
) -> None:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.selectbox(key="planner_metric").value == "conversion"
    # The latest experiment with conversion, recommendations-carousel, has an SRM.
    assert conversion_baseline.experiment_id == "free-shipping-threshold"
    options = at.selectbox(key="planner_experiment_conversion").options
    assert "recommendations-carousel" not in options
    assert options[0] == "free-shipping-threshold"
    assert number(at, "_mean") == pytest.approx(conversion_baseline.mean)
    assert number(at, "_sd") == pytest.approx(conversion_baseline.sd)
    assert number(at, "_daily") == round(conversion_baseline.daily_users or 0)


def test_sentence_and_table_match_planning_for_the_same_inputs() -> None:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    set_number(at, "_mean", 0.12)
    set_number(at, "_sd", math.sqrt(0.12 * 0.88))
    set_number(at, "_daily", 9000.0)
    set_number(at, "_variants", 2)
    next(t for t in at.toggle if t.key.endswith("_seq")).set_value(False)
    at.run()
    assert not at.exception
    tuning = int(number(at, "_tuning"))
    plan = planning.make_plan(
        CATALOG["conversion"],
        0.12,
        0.12 * 0.88,
        relative_mde=0.05,
        daily_users=9000,
        sequential=False,
        tuning=tuning,
    )
    # 46,047 users per arm (statsmodels NormalIndPower, see test_planning.py)
    assert (
        at.success[0].value
        == planning.plan_sentence(plan)
        == (
            "With 9,000 users a day you need 11 days to detect a 5% rise in conversion "
            "with 80% power."
        )
    )
    shown = {m.label: m.value for m in at.metric}
    assert shown["Users per arm"] == "46,047"
    assert shown["Total users"] == "92,094"
    assert shown["Days needed"] == "11"
    assert shown["Sequential inflation"] == f"×{plan.inflation:.2f}"
    table = at.dataframe[0].value
    expected = planning.weeks_table(plan)
    assert list(table["users_per_arm"]) == expected["users_per_arm"].to_list()
    assert list(table["fixed_mde"]) == pytest.approx(expected["fixed_mde"].to_list())
    assert list(table["sequential_mde"]) == pytest.approx(
        expected["sequential_mde"].to_list()
    )
    (chart,) = drawn(at)  # the weekly MDE, per method, as the table has it
    weeks = chart["data"]["values"]
    fixed = [r["mde"] for r in weeks if r["method"] == "fixed horizon"]
    assert fixed == pytest.approx(expected["fixed_mde"].to_list())
    assert len(weeks) == 2 * expected.height


def test_a_decrease_metric_is_planned_as_a_drop() -> None:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key="planner_metric").set_value("contacts_per_order").run()
    assert not at.exception
    assert "5% drop in contacts per order with 80% power" in at.success[0].value


def test_every_catalog_metric_plans_from_the_log() -> None:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    for metric_id in CATALOG.ids:
        at.selectbox(key="planner_metric").set_value(metric_id).run()
        assert not at.exception, metric_id
        assert not at.error, (metric_id, [e.value for e in at.error])
        assert at.caption[1].value.startswith("Baseline: control arm of"), metric_id
        assert len(at.success) + len(at.warning) == 1, metric_id  # the plan sentence


def test_a_broken_log_is_named_and_typed_baselines_still_plan(tmp_path: Path) -> None:
    log = tmp_path / "events.csv"
    log.write_text("timestamp,event\n2026-09-01T10:00:00,order\n")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[cache.EVENTS_KEY] = str(log)
    at.run()
    assert not at.exception
    assert "missing required column(s): user_id" in at.warning[0].value
    assert "(column 'user_id')" in at.warning[0].value
    assert number(at, "_mean") == 0.1  # the typed default for a proportion
    assert at.success[0].value.startswith("You need ")  # no traffic known
