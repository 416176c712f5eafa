from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stats_strategies import proportion_arms, sample_arms
from statsmodels.stats import proportion as sm_proportion
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from cxlab.stats.aggregates import Estimate, ProportionStats, SampleStats
from cxlab.stats.fixed import fixed_test

CONTROL = ProportionStats(10_012, 1_202)
TREATMENT = ProportionStats(9_987, 1_252)


def test_contract_example_golden_values() -> None:
    # CONTRACT §4 example, values from the brief (verified by the lead). They were
    # computed with z = 1.96; we use z_{0.975} = 1.959964, hence abs=2e-6 on CIs.
    res = fixed_test(CONTROL, TREATMENT, alpha=0.05)
    assert res.abs_delta == pytest.approx(0.0053070, abs=1e-7)
    assert res.p_value == pytest.approx(0.252735, abs=1e-6)
    assert res.abs_ci == pytest.approx((-0.0037876, 0.0144016), abs=2e-6)
    assert res.rel_delta == pytest.approx(0.0442047, abs=1e-7)
    assert res.rel_ci == pytest.approx((-0.0332075, 0.1216170), abs=2e-6)
    assert res.reason is None


def test_proportions_agree_with_statsmodels_wald_difference() -> None:
    # statsmodels: test_proportions_2indep(1252, 9987, 1202, 10012, method="wald",
    # compare="diff") -> p 0.25273454579597476; confint_proportions_2indep(...,
    # method="wald") -> (-0.0037873989963383443, 0.014401476962096567)
    res = fixed_test(CONTROL, TREATMENT, alpha=0.05)
    sm = sm_proportion.test_proportions_2indep(
        1_252, 9_987, 1_202, 10_012, method="wald", compare="diff"
    )
    low, high = sm_proportion.confint_proportions_2indep(
        1_252, 9_987, 1_202, 10_012, method="wald", compare="diff", alpha=0.05
    )
    assert res.p_value == pytest.approx(sm.pvalue, rel=1e-10)
    assert res.abs_ci == pytest.approx((low, high), rel=1e-10)


def test_means_agree_with_statsmodels_unequal_variance_ztest() -> None:
    rng = np.random.default_rng(42)
    x_c = rng.lognormal(3.0, 1.0, 800)
    x_t = rng.lognormal(3.1, 1.2, 650)
    control = SampleStats(x_c.size, x_c.sum(), (x_c**2).sum())
    treatment = SampleStats(x_t.size, x_t.sum(), (x_t**2).sum())
    res = fixed_test(control, treatment, alpha=0.1)
    cm = CompareMeans(DescrStatsW(x_t), DescrStatsW(x_c))
    # statsmodels: CompareMeans(t, c).ztest_ind(usevar="unequal") and
    # zconfint_diff(alpha=0.1, usevar="unequal") on the raw arrays
    _, p_sm = cm.ztest_ind(usevar="unequal")
    ci_sm = cm.zconfint_diff(alpha=0.1, usevar="unequal")
    assert res.p_value == pytest.approx(p_sm, rel=1e-9)
    assert res.abs_ci == pytest.approx(ci_sm, rel=1e-9)


def test_relative_ci_uses_delta_method_variance() -> None:
    res = fixed_test(CONTROL, TREATMENT, alpha=0.05)
    m_c, m_t = CONTROL.mean, TREATMENT.mean
    v_c, v_t = CONTROL.var / CONTROL.n, TREATMENT.var / TREATMENT.n
    # Deng, Knoblich & Lu (2018), delta method for the percent change, written out
    assert res.rel_se == pytest.approx(
        math.sqrt(v_t / m_c**2 + m_t**2 * v_c / m_c**4), rel=1e-12
    )


@pytest.mark.parametrize(
    ("control", "treatment", "reason"),
    [
        (ProportionStats(1, 1), ProportionStats(100, 10), "control has fewer"),
        (ProportionStats(100, 10), ProportionStats(0, 0), "treatment has fewer"),
        (ProportionStats(100, 0), ProportionStats(100, 0), "variance"),
        (Estimate(100, 5.0, 0.0), Estimate(100, 5.0, 0.0), "variance"),
    ],
)
def test_degenerate_input_gives_nan_and_reason(control, treatment, reason) -> None:
    res = fixed_test(control, treatment, alpha=0.05)
    assert math.isnan(res.p_value)
    assert all(math.isnan(v) for v in res.abs_ci + res.rel_ci)
    assert reason in res.reason


def test_zero_control_mean_gives_nan_relative_results_only() -> None:
    res = fixed_test(ProportionStats(100, 0), ProportionStats(100, 5), alpha=0.05)
    assert res.p_value == pytest.approx(res.p_value)  # not NaN
    assert not math.isnan(res.p_value)
    assert math.isnan(res.rel_delta)
    assert all(math.isnan(v) for v in res.rel_ci)
    assert "control mean is zero" in res.reason


def test_array_arms_give_elementwise_results_equal_to_scalar_calls() -> None:
    n = np.array([1_000, 2_000, 1])
    s_c, s_t = np.array([100, 250, 1]), np.array([120, 230, 0])
    vec = fixed_test(ProportionStats(n, s_c), ProportionStats(n, s_t), alpha=0.05)
    for i in range(3):
        one = fixed_test(
            ProportionStats(int(n[i]), int(s_c[i])),
            ProportionStats(int(n[i]), int(s_t[i])),
            alpha=0.05,
        )
        np.testing.assert_allclose(vec.p_value[i], one.p_value, rtol=1e-12)
        np.testing.assert_allclose(vec.rel_ci[0][i], one.rel_ci[0], rtol=1e-12)
    assert vec.reason is None


@settings(max_examples=60, deadline=None)
@given(
    proportion_arms(),
    proportion_arms(),
    st.sampled_from([0.01, 0.05, 0.1, 0.2]),
)
def test_p_below_alpha_iff_abs_ci_excludes_zero(control, treatment, alpha) -> None:
    res = fixed_test(control, treatment, alpha=alpha)
    if math.isnan(res.p_value):
        assert res.reason is not None
        return
    excludes = res.abs_ci[0] > 0 or res.abs_ci[1] < 0
    assert (res.p_value < alpha) == excludes


@settings(max_examples=60, deadline=None)
@given(sample_arms(), sample_arms())
def test_swapping_arms_flips_delta_and_keeps_p(control, treatment) -> None:
    a = fixed_test(control, treatment, alpha=0.05)
    b = fixed_test(treatment, control, alpha=0.05)
    assert b.abs_delta == pytest.approx(-a.abs_delta, rel=1e-9, abs=1e-12)
    assert b.p_value == pytest.approx(a.p_value, rel=1e-9, abs=1e-12)
    assert b.abs_ci == pytest.approx((-a.abs_ci[1], -a.abs_ci[0]), rel=1e-9, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(sample_arms(), sample_arms(), st.floats(min_value=1e-3, max_value=1e3))
def test_relative_results_invariant_to_scaling_values(control, treatment, c) -> None:
    def scaled(s: SampleStats) -> SampleStats:
        return SampleStats(s.n, c * s.sum, c**2 * s.sum_sq)

    a = fixed_test(control, treatment, alpha=0.05)
    b = fixed_test(scaled(control), scaled(treatment), alpha=0.05)
    assert b.rel_delta == pytest.approx(a.rel_delta, rel=1e-6, abs=1e-9)
    assert b.rel_ci == pytest.approx(a.rel_ci, rel=1e-6, abs=1e-9)
    assert b.p_value == pytest.approx(a.p_value, rel=1e-6, abs=1e-9)
