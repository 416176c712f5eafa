"""Analysis on hand-built summaries: contract numbers, verdicts, recommendations."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import polars as pl
import pytest
from scipy import stats as sps

from cxlab import charts
from cxlab.analysis import analyze_history
from cxlab.config import Catalog, Experiment, MetricDef, Variant
from cxlab.decision import Call, recommend, sentence, verdict_of
from cxlab.report import experiment_to_dict
from cxlab.stats.aggregates import SampleStats
from cxlab.stats.fixed import fixed_test
from cxlab.summaries import SUM_COLUMNS, ExperimentHealth, LogHealth, Summaries

CONVERSION = MetricDef("conversion", "proportion", "increase", event="order")
CONTACTS = MetricDef("contact_rate", "proportion", "decrease", event="contact")
REVENUE = MetricDef("revenue_per_user", "mean", "increase", event="order")
CATALOG = Catalog((CONVERSION, CONTACTS, REVENUE))
START = dt.date(2026, 10, 1)
END = dt.date(2026, 10, 28)

EXPERIMENT = Experiment(
    id="proactive-shipping-email",
    variants=(Variant("control", 0.5), Variant("proactive_email", 0.5)),
    control="control",
    start=START,
    end=END,
    primary_metrics=("conversion",),
)


def _summaries(
    rows: list[dict], exp: Experiment = EXPERIMENT, days: int = 1
) -> Summaries:
    """Summaries whose daily table holds `rows` on the as-of day (zeros before)."""
    as_of = exp.start + dt.timedelta(days=days - 1)
    full = []
    for k in range(days):
        day = exp.start + dt.timedelta(days=k)
        for row in rows:
            scale = 1.0 if day == as_of else 0.0
            full.append(
                {
                    "experiment_id": exp.id,
                    "metric": row["metric"],
                    "variant": row["variant"],
                    "day": day,
                    "n": int(row["n"] * scale),
                    **{c: row.get(c, 0.0) * scale for c in SUM_COLUMNS},
                }
            )
    daily = pl.DataFrame(full)
    health = ExperimentHealth(0, 0, 0, 0, 0)
    log = LogHealth(0, 0, None, None, pl.DataFrame(), pl.DataFrame(), {})
    # Users enter on the as-of day: as many as the first metric's n per variant.
    first_metric = rows[0]["metric"]
    exposures = pl.DataFrame(
        [
            {
                "experiment_id": exp.id,
                "variant": row["variant"],
                "day": as_of,
                "d_users": row["n"],
                "d_conflicts": 0,
            }
            for row in rows
            if row["metric"] == first_metric
        ]
    )
    return Summaries(
        daily, pl.DataFrame(), exposures, {exp.id: health}, {exp.id: as_of}, log
    )


def _proportion_rows(metric: str, control: tuple, treatment: tuple) -> list[dict]:
    (n_c, x_c), (n_t, x_t) = control, treatment
    return [
        {"metric": metric, "variant": "control", "n": n_c, "sum_x": x_c, "sum_xx": x_c},
        {
            "metric": metric,
            "variant": "proactive_email",
            "n": n_t,
            "sum_x": x_t,
            "sum_xx": x_t,
        },
    ]


def test_contract_example_numbers_are_reproduced_through_the_json():
    # CONTRACT §4: 1202/10012 vs 1252/9987 conversions, alpha 0.05, N* = 5000, flat
    # prior. Values recomputed by hand: p1 = 0.120056, p2 = 0.125363; unpooled
    # se = sqrt(p1 q1/n1 + p2 q2/n2) = 0.0046402; z = 1.14372.
    rows = _proportion_rows("conversion", (10012, 1202), (9987, 1252))
    result = analyze_history(EXPERIMENT, CATALOG, _summaries(rows), last_only=True)[0]
    out = experiment_to_dict(result)["results"][0]
    assert out["control"] == {"n": 10012, "value": pytest.approx(0.120056, abs=1e-6)}
    assert out["treatment"]["value"] == pytest.approx(0.125363, abs=1e-6)
    assert out["abs_delta"] == pytest.approx(0.005307, abs=1e-6)
    assert out["rel_delta"] == pytest.approx(0.044205, abs=1e-6)
    assert out["fixed"]["p_value"] == pytest.approx(0.25273, abs=1e-4)
    assert out["fixed"]["abs_ci"] == pytest.approx([-0.00379, 0.01440], abs=1e-5)
    assert out["fixed"]["rel_ci"] == pytest.approx([-0.0332, 0.1216], abs=1e-4)
    assert out["sequential"]["p_value"] == 1.0
    assert out["sequential"]["abs_ci"] == pytest.approx([-0.00920, 0.01982], abs=2e-5)
    assert out["sequential"]["rel_ci"] == pytest.approx([-0.0794, 0.1676], abs=5e-4)
    assert out["bayesian"]["prob_beat_control"] == pytest.approx(0.868, abs=1e-3)
    assert out["bayesian"]["expected_loss"] == pytest.approx(0.0026, abs=1e-4)
    assert out["bayesian"]["rel_ci"] == pytest.approx(out["fixed"]["rel_ci"])
    assert out["significant"] is False
    assert out["verdict"] == "inconclusive"


def test_sequential_significance_is_holm_corrected_across_the_family():
    # Two non-guardrail metrics under Holm: the smaller always-valid p doubles.
    exp = replace(EXPERIMENT, secondary_metrics=("contact_rate",))
    rows = _proportion_rows("conversion", (50_000, 5_000), (50_000, 5_330))
    rows += _proportion_rows("contact_rate", (50_000, 3_000), (50_000, 3_000))
    result = analyze_history(exp, CATALOG, _summaries(rows), last_only=True)[0]
    conversion = result.result("conversion")
    call = conversion.calls["sequential"]
    # 5000 vs 5330 of 50,000 gives an always-valid p of 0.0367: below alpha, but
    # p̃ = 2p = 0.0734 is not, so the result is not significant in the family;
    # its level is α·p/p̃ = 0.025 and its interval at 97.5% includes 0.
    assert conversion.sequential.p_value == pytest.approx(0.03668, abs=1e-4)
    assert call.adjusted_p_value == pytest.approx(2 * 0.03668, abs=2e-4)
    assert call.alpha == pytest.approx(0.025)
    assert conversion.significant is False
    assert conversion.verdict == "inconclusive"
    assert conversion.sequential.abs_ci[0] < 0 < conversion.sequential.abs_ci[1]
    assert conversion.sequential.rel_ci[0] < 0 < conversion.sequential.rel_ci[1]


def test_a_significant_result_in_a_family_is_shown_at_its_corrected_level():
    # Holm with two results: the smaller p gets level α/2, its interval at 97.5%
    # excludes 0, and the sentence quotes exactly that interval.
    exp = replace(EXPERIMENT, secondary_metrics=("contact_rate",))
    rows = _proportion_rows("conversion", (50_000, 5_000), (50_000, 5_600))
    rows += _proportion_rows("contact_rate", (50_000, 3_000), (50_000, 3_000))
    result = analyze_history(exp, CATALOG, _summaries(rows), last_only=True)[0]
    conversion = result.result("conversion")
    call = conversion.call
    assert call.method == "sequential"
    assert call.alpha == pytest.approx(0.025)
    assert conversion.significant is True
    assert conversion.verdict == "win"
    assert call.abs_ci == conversion.sequential.abs_ci
    assert call.rel_ci[0] > 0
    assert call.abs_ci[0] > 0
    lo, hi = (f"{v * 100:+.1f}%".replace("-", "−") for v in call.rel_ci)
    assert f"(97.5% CI {lo} to {hi})" in conversion.summary
    out = experiment_to_dict(result)["results"][0]
    assert out["sequential"]["alpha"] == pytest.approx(0.025)
    assert out["fixed"]["alpha"] == pytest.approx(0.025)


def test_fixed_decision_uses_holm_adjusted_p_values():
    exp = replace(
        EXPERIMENT, decision="fixed", secondary_metrics=("contact_rate",), end=START
    )
    rows = _proportion_rows("conversion", (20_000, 2_000), (20_000, 2_130))
    rows += _proportion_rows("contact_rate", (20_000, 1_000), (20_000, 1_000))
    result = analyze_history(exp, CATALOG, _summaries(rows), last_only=True)[0]
    conversion, contacts = result.result("conversion"), result.result("contact_rate")
    # Holm with two p-values: the smaller is multiplied by 2.
    assert contacts.fixed.p_value == pytest.approx(1.0)
    assert conversion.adjusted_p_value == pytest.approx(
        min(1.0, 2 * conversion.fixed.p_value)
    )
    assert conversion.significant == (conversion.adjusted_p_value < 0.05)


def test_lower_contact_rate_is_a_win_and_higher_is_a_loss():
    assert verdict_of(CONTACTS, True, -0.1) == "win"
    assert verdict_of(CONTACTS, True, 0.1) == "loss"
    assert verdict_of(CONVERSION, True, 0.1) == "win"
    assert verdict_of(CONVERSION, False, 0.1) == "inconclusive"


def test_summary_sentence_states_direction_size_and_interval():
    call = Call(
        "sequential",
        0.05,
        0.001,
        0.001,
        -0.01,
        -0.118,
        (-0.02, -0.005),
        (-0.151, -0.084),
        True,
        "win",
    )
    text = sentence(CONTACTS, "proactive_email", call)
    assert text == (
        "proactive_email cut contact_rate by 11.8% (95% CI −15.1% to −8.4%) — a win."
    )


def test_nps_sentence_is_in_points_at_the_calls_level():
    nps = MetricDef("nps", "nps", "increase", event="nps_response")
    call = Call(
        "fixed",
        0.0125,
        0.3,
        1.0,
        4.4,
        0.13,
        (-1.2, 10.0),
        (-0.03, 0.3),
        False,
        "inconclusive",
    )
    assert sentence(nps, "b", call) == (
        "b raised nps by 4.4 points (98.75% CI −1.2 to +10.0); not significant."
    )


def _one_day_result(exp: Experiment, rows: list[dict]):
    return analyze_history(exp, CATALOG, _summaries(rows, exp), last_only=True)[0]


def test_guardrail_loss_means_roll_back_even_with_a_primary_win():
    exp = replace(
        EXPERIMENT, decision="fixed", guardrail_metrics=("contact_rate",), end=START
    )
    rows = _proportion_rows("conversion", (50_000, 5_000), (50_000, 5_600))
    rows += _proportion_rows("contact_rate", (50_000, 2_000), (50_000, 2_400))
    result = _one_day_result(exp, rows)
    assert result.result("conversion").verdict == "win"
    assert result.result("contact_rate").verdict == "loss"
    assert result.recommendation.action == "roll_back"
    assert "contact_rate" in result.recommendation.reason


def test_primary_win_without_guardrail_harm_ships():
    exp = replace(EXPERIMENT, decision="fixed", end=START)
    rows = _proportion_rows("conversion", (50_000, 5_000), (50_000, 5_600))
    assert _one_day_result(exp, rows).recommendation.action == "ship"


def test_fixed_horizon_test_keeps_running_before_its_end():
    exp = replace(EXPERIMENT, decision="fixed", end=END)
    rows = _proportion_rows("conversion", (50_000, 5_000), (50_000, 5_600))
    result = _one_day_result(exp, rows)
    assert result.finished is False
    assert result.recommendation.action == "keep_running"


def test_sample_ratio_mismatch_sends_to_review_whatever_the_metrics_say():
    exp = replace(EXPERIMENT, decision="fixed", end=START)
    rows = _proportion_rows("conversion", (52_000, 5_200), (48_000, 5_400))
    result = _one_day_result(exp, rows)
    assert result.srm.ok is False
    assert result.recommendation.action == "review"
    assert any("Sample-ratio mismatch" in w for w in result.warnings)


def test_recommend_keeps_running_while_unfinished_and_inconclusive():
    exp = replace(EXPERIMENT, end=END)
    rows = _proportion_rows("conversion", (5_000, 500), (5_000, 505))
    result = _one_day_result(exp, rows)
    assert recommend(exp, result.results, True, False).action == "keep_running"
    assert recommend(exp, result.results, True, True).action == "review"


def test_cuped_reports_variance_reduction_and_adjusted_delta():
    # Pre-period covariate perfectly aligned with the outcome in both arms removes
    # most variance; the result gains a `cuped` block.
    exp = replace(EXPERIMENT, primary_metrics=("revenue_per_user",), cuped_days=14)
    rows = [
        {"metric": "revenue_per_user", "variant": v, "n": 1000, "sum_x": s,
         "sum_xx": ss, "pre_x": s * 0.9, "pre_xx": ss * 0.81 * 0.98,
         "pre_xy": ss * 0.9 * 0.97}
        for v, s, ss in (("control", 10_000.0, 250_000.0),
                         ("proactive_email", 10_500.0, 262_000.0))
    ]  # fmt: skip
    result = _one_day_result(exp, rows)
    row = result.result("revenue_per_user")
    assert row.cuped is not None
    assert 0.5 < row.cuped.variance_reduction < 1.0
    unadjusted = fixed_test(
        SampleStats(1000, 10_000.0, 250_000.0),
        SampleStats(1000, 10_500.0, 262_000.0),
        alpha=0.05,
    )
    assert row.fixed.se**2 == pytest.approx(
        unadjusted.se**2 * (1 - row.cuped.variance_reduction), rel=1e-6
    )
    assert experiment_to_dict(result)["results"][0]["cuped"][
        "variance_reduction"
    ] == pytest.approx(row.cuped.variance_reduction)


def test_history_has_one_result_per_day_and_the_last_equals_the_as_of_result():
    rows = _proportion_rows("conversion", (10012, 1202), (9987, 1252))
    summaries = _summaries(rows, days=5)
    history = analyze_history(EXPERIMENT, CATALOG, summaries)
    assert [r.as_of for r in history] == [
        START + dt.timedelta(days=k) for k in range(5)
    ]
    last = analyze_history(EXPERIMENT, CATALOG, summaries, last_only=True)[0]
    assert experiment_to_dict(history[-1]) == experiment_to_dict(last)


NPS = MetricDef("nps", "nps", "increase", event="nps_response")


def test_a_winner_ships_only_once_its_guardrails_are_shown_safe():
    # Sequential decision, margin 2% on contact rate (smaller is better).
    exp = replace(
        EXPERIMENT, guardrail_metrics=("contact_rate",), guardrail_margin=0.02
    )
    win = _proportion_rows("conversion", (50_000, 5_000), (50_000, 5_800))
    noisy = _proportion_rows("contact_rate", (50_000, 500), (50_000, 500))
    result = _one_day_result(exp, win + noisy)
    guard = result.result("contact_rate")
    assert result.result("conversion").verdict == "win"
    assert guard.verdict == "inconclusive"
    assert guard.non_inferiority is not None
    assert guard.non_inferiority.passed is False  # ±20% noise: not within 2%
    assert result.recommendation.action == "keep_running"
    assert "not yet shown safe (within 2%)" in result.recommendation.reason
    out = experiment_to_dict(result)["results"][1]
    assert out["non_inferiority"]["margin"] == 0.02
    assert out["non_inferiority"]["passed"] is False
    shown = charts.scorecard_frame(result, "sequential")["guardrail safe"].to_list()
    assert shown[0] == ""
    assert shown[1].startswith("not yet shown safe (within 2%, p = ")
    # A precise guardrail (20M users, 25% rate, no change) is shown safe.
    precise = _proportion_rows("contact_rate", (50_000, 12_500), (50_000, 12_500))
    precise = [{**r, "n": 20_000_000, "sum_x": 5e6, "sum_xx": 5e6} for r in precise]
    shipped = _one_day_result(exp, win + precise)
    assert shipped.result("contact_rate").non_inferiority.passed is True
    assert shipped.recommendation.action == "ship"
    assert "every guardrail shown safe within 2%" in shipped.recommendation.reason


def test_a_treatment_that_changes_who_answers_nps_is_flagged():
    # 10,000 exposed users per arm; 1,000 vs 1,300 answer the survey.
    exp = replace(EXPERIMENT, secondary_metrics=("nps",), decision="fixed", end=START)
    rows = _proportion_rows("conversion", (10_000, 1_000), (10_000, 1_000))
    rows += [
        {"metric": "nps", "variant": "control", "n": 1_000, "sum_x": 400, "sum_y": 200},
        {
            "metric": "nps",
            "variant": "proactive_email",
            "n": 1_300,
            "sum_x": 520,
            "sum_y": 260,
        },
    ]
    catalog = Catalog((*CATALOG.metrics, NPS))
    result = analyze_history(exp, catalog, _summaries(rows, exp), last_only=True)[0]
    nps = result.result("nps")
    # Unpooled two-proportion z test: 0.10 vs 0.13 of 10,000 each.
    se = (0.1 * 0.9 / 9_999 + 0.13 * 0.87 / 9_999) ** 0.5
    assert nps.response.p_value == pytest.approx(2 * sps.norm.sf(0.03 / se), rel=1e-3)
    assert nps.response.ok is False
    out = experiment_to_dict(result)["results"][1]
    assert out["control"]["response_rate"] == pytest.approx(0.10)
    assert out["treatment"]["responders"] == 1_300
    assert out["response_check"]["ok"] is False
    assert any("proactive_email changed who answers nps" in w for w in result.warnings)
    assert "comparison is suspect" in result.recommendation.reason
