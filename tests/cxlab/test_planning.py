"""Planning: users per arm, days, weekly MDE, baselines from a log, the CLI."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from statsmodels.stats.power import NormalIndPower

from cxlab import charts, planning
from cxlab.analysis import analyze
from cxlab.api import summarize_all
from cxlab.config import load_catalog, load_experiment, load_experiments
from cxlab.errors import InputError
from cxlab.events import resolve_source
from cxlab.stats.power import sequential_power
from tests.conftest import cli, run_cli

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_catalog(ROOT / "experiments" / "metrics.yaml")
CONVERSION = CATALOG["conversion"]
P = 0.12
VAR = P * (1 - P)  # Bernoulli p(1 - p) = 0.1056
Z_975 = 1.959963984540054  # scipy.stats.norm.ppf(0.975)
Z_80 = 0.8416212335729143  # scipy.stats.norm.ppf(0.8)


def test_users_per_arm_equals_statsmodels_normal_ind_power() -> None:
    plan = planning.make_plan(CONVERSION, P, VAR, relative_mde=0.05)
    # NormalIndPower().solve_power(effect_size=0.05*0.12/sqrt(0.1056), alpha=0.05,
    #   power=0.8, ratio=1.0, alternative="two-sided") = 46046.1… → 46,047 per arm
    n = NormalIndPower().solve_power(
        effect_size=0.05 * P / math.sqrt(VAR),
        alpha=0.05,
        power=0.8,
        ratio=1.0,
        alternative="two-sided",
    )
    assert plan.users_per_arm == math.ceil(n) == 46_047
    assert plan.total_users == 2 * 46_047


def test_three_variants_split_alpha_bonferroni_over_two_comparisons() -> None:
    plan = planning.make_plan(CONVERSION, P, VAR, relative_mde=0.05, variants=3)
    # the same call at alpha = 0.05 / 2 (two treatment-vs-control comparisons)
    n = NormalIndPower().solve_power(
        effect_size=0.05 * P / math.sqrt(VAR), alpha=0.025, power=0.8, ratio=1.0
    )
    assert plan.users_per_arm == math.ceil(n)
    assert plan.total_users == 3 * plan.users_per_arm


def test_days_are_total_users_over_daily_users_rounded_up() -> None:
    plan = planning.make_plan(CONVERSION, P, VAR, relative_mde=0.05, daily_users=9000)
    assert plan.fixed_days == math.ceil(plan.total_users / 9000) == 11  # 92,094 / 9,000
    assert plan.sequential_days == math.ceil(plan.sequential_total_users / 9000)
    assert plan.days == plan.fixed_days  # fixed horizon by default


def test_mde_after_n_weeks_decreases_like_one_over_sqrt_weeks() -> None:
    plan = planning.make_plan(
        CONVERSION, P, VAR, relative_mde=0.05, daily_users=9000, weeks=8
    )
    first = plan.weeks[0]
    assert first.users_per_arm == 31_500  # 7 days x 9,000 / 2 arms
    for row in plan.weeks:
        assert row.users_per_arm == row.week * 31_500
        # Closed form (z_0.975 + z_0.8) sqrt(2 var / n) / p: ∝ 1/sqrt(weeks).
        # statsmodels solves for the effect size with a root finder whose
        # tolerance is ~2e-4 relative, hence rel=5e-4.
        closed = (Z_975 + Z_80) * math.sqrt(2 * VAR / row.users_per_arm) / P
        assert row.relative_mde == pytest.approx(closed, rel=5e-4)
        assert row.relative_mde == pytest.approx(
            first.relative_mde / math.sqrt(row.week), rel=5e-4
        )
    mdes = [row.relative_mde for row in plan.weeks]
    assert mdes == sorted(mdes, reverse=True)


def test_mde_reached_at_the_planned_users_is_the_target() -> None:
    plan = planning.make_plan(CONVERSION, P, VAR, relative_mde=0.05, daily_users=9000)
    # after 11 days the fixed test has ≥ 46,047 per arm, so MDE ≤ 5 %; after 1 week
    # (31,500 per arm) it is 5 % · sqrt(46,046.1 / 31,500) ≈ 6.05 %
    assert plan.weeks[0].relative_mde == pytest.approx(
        0.05 * math.sqrt(46_046.1 / 31_500), rel=1e-3
    )
    assert plan.weeks[1].relative_mde < 0.05


def test_sequential_test_needs_more_users_and_reaches_the_power_there() -> None:
    plan = planning.make_plan(
        CONVERSION, P, VAR, relative_mde=0.05, sequential=True, tuning=100_000
    )
    assert plan.inflation == pytest.approx(
        plan.sequential_users_per_arm / plan.users_per_arm
    )
    assert plan.inflation > 1
    effect = 0.05 * P / math.sqrt(VAR)
    power = sequential_power(
        effect, plan.sequential_users_per_arm, alpha=0.05, tuning=100_000
    )
    assert power >= 0.8
    assert plan.planned_users_per_arm == plan.sequential_users_per_arm


def test_sequential_weekly_mde_is_above_the_fixed_one() -> None:
    plan = planning.make_plan(
        CONVERSION, P, VAR, daily_users=9000, sequential=True, tuning=100_000
    )
    assert all(w.sequential_mde > w.relative_mde for w in plan.weeks)


def test_sentence_says_days_direction_metric_and_power() -> None:
    plan = planning.make_plan(CONVERSION, P, VAR, relative_mde=0.05, daily_users=9000)
    assert planning.plan_sentence(plan) == (
        "With 9,000 users a day you need 11 days to detect a 5% rise in conversion "
        "with 80% power."
    )
    cpo = planning.make_plan(
        CATALOG["contacts_per_order"], 0.57, 8.0, relative_mde=0.05, daily_users=9000
    )
    assert "5% drop in contacts per order" in planning.plan_sentence(cpo)


def test_sentence_without_daily_users_gives_users_only() -> None:
    plan = planning.make_plan(CONVERSION, P, VAR, relative_mde=0.05)
    assert planning.plan_sentence(plan) == (
        "You need 46,047 users per arm (92,094 in total) to detect a 5% rise in "
        "conversion with 80% power."
    )
    assert plan.weeks == ()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"relative_mde": 0}, "MDE"),
        ({"alpha": 0.7}, "alpha"),
        ({"power": 1.2}, "power"),
        ({"power": 0.04, "alpha": 0.05}, "power must be above alpha"),
        ({"variants": 1}, "variants"),
        ({"daily_users": -5}, "daily users"),
        ({"daily_users": 1e308}, "daily users"),  # was an OverflowError
    ],
)
def test_out_of_range_inputs_raise_input_error(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        planning.make_plan(CONVERSION, P, VAR, **kwargs)


def test_weeks_table_and_chart_carry_the_weekly_mde() -> None:
    plan = planning.make_plan(CONVERSION, P, VAR, daily_users=9000, weeks=5)
    table = planning.weeks_table(plan)
    assert table["week"].to_list() == [1, 2, 3, 4, 5]
    assert table["fixed_mde"].to_list() == [w.relative_mde for w in plan.weeks]
    drawn = charts.mde_chart(plan)["data"]["values"]
    fixed = [r["mde"] for r in drawn if r["method"] == "fixed horizon"]
    sequential = [r["mde"] for r in drawn if r["method"].startswith("sequential")]
    assert fixed == [w.relative_mde for w in plan.weeks]
    assert sequential == [w.sequential_mde for w in plan.weeks]


# --- baselines from a log -------------------------------------------------------


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A folder with the catalog, one experiment and a hand-made log.

    Control: u1..u4 exposed on 2026-09-01/02, u1 orders → conversion 1/4.
    Treatment: u5..u8, u5 and u6 order → 2/4. 8 users over 2 days → 4 a day.
    """
    folder = tmp_path / "experiments"
    folder.mkdir()
    shutil.copy(ROOT / "experiments" / "metrics.yaml", folder)
    (folder / "tiny.yaml").write_text(
        "id: tiny\nstart: 2026-09-01\nend: 2026-09-05\nvariants: [control, treat]\n"
        "primary_metric: conversion\n"
    )
    rows = ["timestamp,user_id,event,experiment_id,variant,value"]
    for i in range(1, 9):
        day = "01" if i % 2 else "02"
        arm = "control" if i <= 4 else "treat"
        rows.append(f"2026-09-{day}T10:00:00,u{i},exposure,tiny,{arm},")
    rows += [f"2026-09-03T10:00:00,{u},order,,,20" for u in ("u1", "u5", "u6")]
    (tmp_path / "log.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_baseline_comes_from_the_control_arm_of_the_experiment(tiny: Path) -> None:
    exp = load_experiment(tiny / "experiments" / "tiny.yaml", CATALOG)
    summaries = summarize_all(resolve_source(tiny / "log.csv"), [exp], CATALOG)
    baseline = planning.baseline_from_summaries(CONVERSION, exp, summaries["tiny"])
    assert baseline.mean == pytest.approx(0.25)  # 1 of 4 control users ordered
    assert baseline.var == pytest.approx(0.25 * 0.75)
    assert baseline.n == 4
    assert baseline.daily_users == pytest.approx(4.0)  # 8 users over 2 days
    assert baseline.experiment_id == "tiny"


def test_a_time_to_resolution_baseline_is_the_results_pages_rmst(tiny: Path) -> None:
    """Control u1..u3 contact at 10:00 and are resolved 2, 4 and 6 hours later, u4
    never contacts: all resolved before the 72-hour horizon, so the RMST is the
    mean time, 4 hours, over the 3 of 4 users who contacted."""
    (tiny / "experiments" / "tiny.yaml").write_text(
        "id: tiny\nstart: 2026-09-01\nend: 2026-09-05\nvariants: [control, treat]\n"
        "primary_metric: time_to_resolution\n"
    )
    rows = [f"2026-09-03T10:00:00,u{i},contact,,," for i in (1, 2, 3, 5)]
    rows += [f"2026-09-03T{10 + h}:00:00,u{i},contact_resolved,,," for i, h in
             ((1, 2), (2, 4), (3, 6), (5, 1))]  # fmt: skip
    with (tiny / "log.csv").open("a") as log:
        log.write("\n".join(rows) + "\n")
    exp = load_experiment(tiny / "experiments" / "tiny.yaml", CATALOG)
    metric = CATALOG["time_to_resolution"]
    summaries = summarize_all(resolve_source(tiny / "log.csv"), [exp], CATALOG)
    baseline = planning.baseline_from_summaries(metric, exp, summaries["tiny"])
    assert baseline.mean == pytest.approx(4.0)
    assert baseline.n == 3
    assert baseline.population_share == pytest.approx(3 / 4)
    # the very numbers the results page shows for the control arm
    (result,) = analyze(exp, CATALOG, summaries["tiny"]).results
    assert baseline.mean == result.control.value
    assert baseline.var == result.control.stats.var
    # and the command line plans it instead of failing
    plan = ["plan", "--metric", "time_to_resolution", "--events", str(tiny / "log.csv")]
    out = json.loads(
        cli(*plan, "--experiments", str(tiny / "experiments"), "--format", "json")
    )
    assert out["baseline"]["mean"] == pytest.approx(4.0)
    assert out["fixed"]["users_per_arm"] > 0


def test_latest_experiment_using_the_metric_is_picked() -> None:
    from cxlab.config import load_experiments

    experiments = load_experiments(ROOT / "experiments", CATALOG)
    chosen = planning.pick_experiment("conversion", experiments)
    using = [e for e in experiments if "conversion" in dict(e.metric_roles)]
    assert chosen.start == max(e.start for e in using)
    with pytest.raises(InputError, match="does not use"):
        planning.pick_experiment("nps", experiments, "delivery-date-promise")


# --- the command line -------------------------------------------------------------


def test_cli_plan_with_a_given_baseline_prints_json() -> None:
    plan = ["plan", "--metric", "conversion", "--baseline", "0.12"]
    plan += ["--daily-users", "9000", "--experiments", str(ROOT / "experiments")]
    out = json.loads(cli(*plan, "--format", "json"))
    assert out["fixed"] == {"users_per_arm": 46_047, "total_users": 92_094, "days": 11}
    assert out["baseline"]["sd"] == pytest.approx(math.sqrt(VAR))
    assert out["sentence"].startswith("With 9,000 users a day you need 11 days")
    assert out["weeks"][0]["week"] == 1


def test_cli_plan_takes_baseline_and_traffic_from_the_log(tiny: Path) -> None:
    plan = ["plan", "--metric", "conversion", "--events", str(tiny / "log.csv")]
    out = json.loads(
        cli(*plan, "--experiments", str(tiny / "experiments"), "--format", "json")
    )
    assert out["baseline"]["mean"] == pytest.approx(0.25)
    assert out["daily_users"] == pytest.approx(4.0)
    assert "tiny" in out["baseline"]["source"]


def test_cli_plan_unknown_metric_exits_2_naming_it() -> None:
    code, _, err = run_cli(
        "plan", "--metric", "nope", "--experiments", str(ROOT / "experiments")
    )
    assert code == 2
    assert "unknown metric 'nope'" in err


def test_cli_plan_without_any_baseline_exits_2() -> None:
    code, _, err = run_cli(
        "plan", "--metric", "nps", "--experiments", str(ROOT / "experiments")
    )
    assert code == 2
    assert "no baseline for 'nps'" in err


# --- refusals and feasibility -------------------------------------------------------


@pytest.mark.parametrize("mde", [0.0, -0.05, 1.0001, 2.0])
def test_mde_outside_zero_to_one_is_refused_in_percent(mde: float) -> None:
    with pytest.raises(InputError, match=r"more than 0% and at most 100%") as excinfo:
        planning.make_plan(CONVERSION, P, VAR, relative_mde=mde)
    assert f"got {mde * 100:g}%" in str(excinfo.value)


def test_an_mde_of_one_hundred_percent_is_allowed() -> None:
    assert planning.make_plan(CONVERSION, P, VAR, relative_mde=1.0).users_per_arm > 0


def test_a_plan_longer_than_the_cap_is_not_feasible_and_says_so() -> None:
    plan = planning.make_plan(CONVERSION, P, VAR, relative_mde=0.001, daily_users=100)
    assert plan.days is not None
    assert plan.days > planning.MAX_DAYS
    assert not plan.feasible
    assert planning.days_text(plan.days) == "more than 2 years"
    assert planning.plan_sentence(plan) == (
        "With 100 users a day you would need more than 2 years to detect a 0.1% rise "
        "in conversion with 80% power: not feasible. Aim for a larger effect, more "
        "traffic or fewer variants."
    )
    assert planning.days_text(730) == "730"
    assert planning.days_text(None) == "—"


def test_the_default_baseline_skips_an_experiment_with_a_sample_ratio_mismatch(
    tiny: Path,
) -> None:
    # srm-late starts later than tiny but splits 70 control to 10 treatment users
    # against 50/50 weights: chi-square 45 on 1 df, p = 2e-11 < 0.001.
    folder = tiny / "experiments"
    (folder / "srm-late.yaml").write_text(
        "id: srm-late\nstart: 2026-09-02\nend: 2026-09-05\n"
        "variants: [control, treat]\nprimary_metric: conversion\n"
    )
    rows = [
        f"2026-09-02T11:00:00,s{i},exposure,srm-late,{arm},"
        for i, arm in enumerate(["control"] * 70 + ["treat"] * 10)
    ]
    with (tiny / "log.csv").open("a") as log:
        log.write("\n".join(rows) + "\n")
    experiments = load_experiments(folder, CATALOG)
    summaries = summarize_all(resolve_source(tiny / "log.csv"), experiments, CATALOG)
    assert planning.has_srm(experiments[0], summaries["srm-late"])
    assert not planning.has_srm(experiments[1], summaries["tiny"])
    assert planning.pick_experiment("conversion", experiments).id == "srm-late"
    healthy = planning.pick_experiment("conversion", experiments, summaries=summaries)
    assert healthy.id == "tiny"
    with pytest.raises(InputError, match="sample-ratio mismatch"):
        planning.pick_experiment("conversion", experiments[:1], summaries=summaries)
