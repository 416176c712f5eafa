from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize
from scipy import stats as sps
from stats_strategies import proportion_arms

from cxlab.stats import sequential as seq
from cxlab.stats.aggregates import ProportionStats, SampleStats
from cxlab.stats.fixed import fixed_test
from cxlab.stats.sequential import (
    group_sequential_boundaries,
    group_sequential_test,
    mixture_multiplier,
    mixture_p_value,
    mixture_rho_squared,
    obf_spending,
    sequential_test,
    sequential_tests,
)

CONTROL = ProportionStats(10_012, 1_202)
TREATMENT = ProportionStats(9_987, 1_252)


def test_contract_example_golden_values() -> None:
    # CONTRACT §4 example ("sequential" block, N* = 5000): abs_ci [-0.00921, 0.01981],
    # p 1.0, rel_ci [-0.0794, 0.1676]. The contract's rel_ci is centred on its
    # rounded rel_delta 0.0441 (ours 0.04420), hence abs=2e-4 on rel_ci.
    res = sequential_test(CONTROL, TREATMENT, alpha=0.05)
    assert res.abs_ci == pytest.approx((-0.009203, 0.019817), abs=1e-6)
    assert res.p_value == 1.0
    assert res.rel_ci == pytest.approx((-0.0794, 0.1676), abs=2e-4)
    assert res.method == "mixture"
    assert res.reason is None


def test_rho_and_multiplier_follow_waudby_smith_formulas() -> None:
    # arXiv:2103.06476 eq. 161 and eq. 9, written out by hand for alpha 0.05, t 10^4
    rho2 = (-2 * math.log(0.05) + math.log(-2 * math.log(0.05) + 1)) / 5_000
    assert mixture_rho_squared(0.05, 5_000) == pytest.approx(rho2, rel=1e-14)
    tr = 10_000 * rho2
    c = math.sqrt((tr + 1) / tr * 2 * math.log(math.sqrt(tr + 1) / 0.05))
    assert mixture_multiplier(10_000, alpha=0.05) == pytest.approx(c, rel=1e-14)


def test_p_value_equals_alpha_exactly_on_the_sequence_boundary() -> None:
    for t in (100, 5_000, 1e6):
        c = mixture_multiplier(t, alpha=0.05)
        assert mixture_p_value(c, t, alpha=0.05) == pytest.approx(0.05, rel=1e-10)


def test_multiplier_is_smallest_near_the_tuning_size_relative_to_width() -> None:
    # The half-width c(t)/sqrt(t) is optimised at t = N*: c(t) sqrt(N*/t) is
    # minimal at N* among nearby t
    t = np.array([2_500.0, 5_000.0, 10_000.0])
    width = np.asarray(mixture_multiplier(t, alpha=0.05, tuning=5_000)) / np.sqrt(t)
    ratio = width * np.sqrt(t) / np.sqrt(5_000)
    assert ratio[1] < ratio[0]
    assert ratio[1] < ratio[2]


@settings(max_examples=80, deadline=None)
@given(proportion_arms(), proportion_arms(), st.sampled_from([0.01, 0.05, 0.1]))
def test_p_below_alpha_iff_abs_ci_excludes_zero(control, treatment, alpha) -> None:
    res = sequential_test(control, treatment, alpha=alpha)
    if math.isnan(res.p_value):
        assert res.reason is not None
        return
    assert (res.p_value < alpha) == (res.abs_ci[0] > 0 or res.abs_ci[1] < 0)


@settings(max_examples=80, deadline=None)
@given(
    proportion_arms(),
    proportion_arms(),
    st.sampled_from([0.01, 0.05, 0.1]),
    st.sampled_from([100, 5_000, 1_000_000]),
)
def test_sequential_ci_contains_fixed_ci(control, treatment, alpha, tuning) -> None:
    seq = sequential_test(control, treatment, alpha=alpha, tuning=tuning)
    fix = fixed_test(control, treatment, alpha=alpha)
    if math.isnan(seq.abs_ci[0]):
        return
    assert seq.abs_ci[0] <= fix.abs_ci[0] + 1e-15
    assert seq.abs_ci[1] >= fix.abs_ci[1] - 1e-15
    assert seq.p_value >= fix.p_value
    # The relative intervals nest too, except where one of them was made to agree
    # with its abs interval about 0 (stats.delta.agreeing_rel_ci): there the near
    # end follows the abs interval, and both must include 0 or exclude it together.
    if not math.isnan(seq.rel_ci[0]):
        assert seq.rel_ci[0] < seq.rel_delta < seq.rel_ci[1]
        excludes = seq.abs_ci[0] > 0 or seq.abs_ci[1] < 0
        assert excludes == (seq.rel_ci[0] > 0 or seq.rel_ci[1] < 0)


@settings(max_examples=50, deadline=None)
@given(proportion_arms(), proportion_arms())
def test_swapping_arms_flips_delta_and_keeps_p(control, treatment) -> None:
    a = sequential_test(control, treatment, alpha=0.05)
    b = sequential_test(treatment, control, alpha=0.05)
    if math.isnan(a.p_value):
        assert math.isnan(b.p_value)
        return
    assert b.abs_delta == pytest.approx(-a.abs_delta, abs=1e-15)
    assert b.p_value == pytest.approx(a.p_value, rel=1e-9)


def test_degenerate_input_gives_nan_and_reason() -> None:
    res = sequential_test(ProportionStats(1, 0), ProportionStats(50, 5), alpha=0.05)
    assert math.isnan(res.p_value)
    assert math.isnan(res.abs_ci[0])
    assert "fewer than 2" in res.reason


def test_rel_ci_agrees_with_abs_ci_about_zero_at_every_level() -> None:
    # Near the boundary the delta-method rel interval (variance V_t + r²V_c) and
    # the abs interval (V_t + V_c) can straddle 0 differently; the reported pair
    # must not. Sweep a treatment rate across the boundary at several levels.
    control = ProportionStats(10_000, 1_000)
    for level in (0.05, 0.0125, 0.01):
        for x_t in range(1_080, 1_200):
            res = sequential_test(
                control, ProportionStats(10_000, x_t), alpha=level, tuned_alpha=0.05
            )
            excludes_abs = res.abs_ci[0] > 0 or res.abs_ci[1] < 0
            assert excludes_abs == (res.rel_ci[0] > 0 or res.rel_ci[1] < 0)
            assert excludes_abs == (res.p_value < level)
            assert res.rel_ci[0] < res.rel_delta < res.rel_ci[1]


def test_a_corrected_level_keeps_the_tuning_and_widens_the_sequence() -> None:
    # ρ² stays tuned at 0.05; only the log term uses the corrected level
    # (Waudby-Smith et al. 2023, eq. 9).
    base = sequential_test(CONTROL, TREATMENT, alpha=0.05)
    corrected = sequential_test(CONTROL, TREATMENT, alpha=0.0125, tuned_alpha=0.05)
    assert corrected.p_value == base.p_value
    t = CONTROL.n + TREATMENT.n
    tr = t * mixture_rho_squared(0.05, 5_000)
    c = math.sqrt((tr + 1) / tr * 2 * math.log(math.sqrt(tr + 1) / 0.0125))
    se = (base.abs_ci[1] - base.abs_ci[0]) / 2 / mixture_multiplier(t, alpha=0.05)
    assert corrected.abs_ci[1] - corrected.abs_delta == pytest.approx(c * se, rel=1e-9)


def test_each_look_reports_its_own_sequence_under_a_drifting_effect() -> None:
    # A novelty effect: strong early, gone later. The current look's sequence
    # always contains the current estimate and has positive width (a running
    # intersection of looks would collapse here).
    c = t = ProportionStats(0, 0)
    for day in range(28):
        c = c + ProportionStats(2_000, 200)
        t = t + ProportionStats(2_000, 320 if day < 5 else 200)
        res = sequential_test(c, t, alpha=0.05)
        assert res.abs_ci[0] < res.abs_delta < res.abs_ci[1]
        assert res.rel_ci[0] < res.rel_delta < res.rel_ci[1]


# --- group sequential ---------------------------------------------------------


def _rectangle_probability(
    bounds: list[float], fractions: list[float], rng: np.random.Generator
) -> float:
    """P(|Z_k| < b_k for all k) by scipy's multivariate normal CDF.

    Genz's algorithm is randomised quasi-Monte Carlo: ``rng`` fixes its draws, and
    abseps 1e-6 (releps 0) bounds its error well inside the tests' 5e-6.
    """
    k = len(bounds)
    cov = np.array(
        [[math.sqrt(min(a, b) / max(a, b)) for b in fractions] for a in fractions]
    )
    mvn = sps.multivariate_normal(mean=np.zeros(k), cov=cov, abseps=1e-6, releps=0)
    return float(mvn.cdf(np.array(bounds), lower_limit=-np.array(bounds), rng=rng))


@pytest.mark.parametrize(
    "fractions", [[0.5, 1.0], [0.3, 0.7, 1.0], [0.2, 0.4, 0.6, 0.8]]
)
def test_boundaries_spend_alpha_as_planned_by_multivariate_normal(fractions) -> None:
    # Independent check of the recursive integration: scipy's Genz algorithm for
    # P(|Z_1| < b_1, ..., |Z_k| < b_k) must equal 1 − α(τ_k) (Lan & DeMets 1983).
    # Seeded and at abseps 1e-6: unseeded at the default 1e-5 its error reached
    # 1.7e-5 against the old abs=2e-5; over 20 seeds at 1e-6 it stayed below 7e-7,
    # and boundaries 0.01 % too wide fail abs=5e-6.
    rng = np.random.default_rng(20_240_611)
    bounds = group_sequential_boundaries(fractions, 0.05)
    spent = 0.05 if fractions[-1] == 1.0 else obf_spending(fractions[-1], 0.05)
    for k in range(1, len(fractions) + 1):
        target = (
            0.05 if fractions[k - 1] == 1.0 else obf_spending(fractions[k - 1], 0.05)
        )
        prob = _rectangle_probability(list(bounds[:k]), fractions[:k], rng)
        assert 1 - prob == pytest.approx(target, abs=5e-6)
    assert 1 - _rectangle_probability(list(bounds), fractions, rng) == pytest.approx(
        spent, abs=5e-6
    )


def test_first_boundary_is_the_obf_spending_quantile() -> None:
    # α(0.25) = 2 − 2Φ(1.959964 / 0.5) ⇒ b_1 = 3.919928 (Lan & DeMets 1983)
    assert group_sequential_boundaries([0.25, 1.0], 0.05)[0] == pytest.approx(
        2 * sps.norm.isf(0.025), rel=1e-9
    )


def test_single_final_look_equals_the_fixed_test() -> None:
    res = group_sequential_test(
        [(CONTROL, TREATMENT)], alpha=0.05, planned_users=19_999
    )
    fix = fixed_test(CONTROL, TREATMENT, alpha=0.05)
    assert res.method == "group"
    assert res.boundary_z == pytest.approx(sps.norm.isf(0.025), rel=1e-12)
    assert res.abs_ci == pytest.approx(fix.abs_ci, rel=1e-12)
    assert res.p_value == pytest.approx(fix.p_value, rel=1e-5)
    assert res.information_fraction == 1.0
    assert res.planned_size_exceeded is False


def _history(rate_t: float, days: int, seed: int) -> list[tuple[ProportionStats, ...]]:
    rng = np.random.default_rng(seed)
    c = t = ProportionStats(0, 0)
    looks = []
    for _ in range(days):
        c = c + ProportionStats(500, int(rng.binomial(500, 0.10)))
        t = t + ProportionStats(500, int(rng.binomial(500, rate_t)))
        looks.append((c, t))
    return looks


@pytest.mark.parametrize(("rate_t", "seed"), [(0.10, 1), (0.12, 2), (0.108, 3)])
def test_group_p_below_alpha_iff_crossed_iff_ci_excludes_zero(rate_t, seed) -> None:
    looks = _history(rate_t, 14, seed)
    res = group_sequential_test(looks, alpha=0.05, planned_users=28_000)
    fractions = [(k + 1) / 28 for k in range(14)]
    bounds = group_sequential_boundaries(fractions, 0.05)
    now = fixed_test(*looks[-1], alpha=0.05)
    crossed = abs(now.abs_delta / now.se) >= bounds[-1]  # the current look
    assert (res.p_value < 0.05) == crossed
    assert (res.abs_ci[0] > 0 or res.abs_ci[1] < 0) == crossed
    assert res.information_fraction == pytest.approx(0.5)
    assert res.boundary_z == pytest.approx(bounds[-1])


def test_group_p_value_is_the_level_at_which_a_boundary_is_just_crossed() -> None:
    looks = _history(0.115, 10, 5)
    res = group_sequential_test(looks, alpha=0.05, planned_users=28_000)
    assert 0.05 < res.p_value < 0.5
    fractions = [(k + 1) / 28 for k in range(10)]
    now = fixed_test(*looks[-1])
    z = abs(now.abs_delta / now.se)
    assert z >= group_sequential_boundaries(fractions, res.p_value * 1.001)[-1]
    assert z < group_sequential_boundaries(fractions, res.p_value * 0.999)[-1]


def test_planned_size_exceeded_spends_all_alpha_at_current_look() -> None:
    looks = _history(0.10, 10, 5)  # 10,000 users in total
    res = group_sequential_test(looks, alpha=0.05, planned_users=6_000)
    assert res.planned_size_exceeded is True
    assert res.information_fraction == 1.0
    assert "planned size exceeded" in res.reason
    # looks at τ < 1 (days 1-5) plus the current one as the final analysis
    used = [k / 6 for k in range(1, 6)] + [1.0]
    assert res.boundary_z == pytest.approx(group_sequential_boundaries(used, 0.05)[-1])


def test_looks_without_new_information_are_skipped() -> None:
    looks = _history(0.10, 4, 6)
    repeated = [looks[0], looks[0], looks[1], looks[2], looks[2], looks[3]]
    a = group_sequential_test(looks, alpha=0.05, planned_users=10_000)
    b = group_sequential_test(repeated, alpha=0.05, planned_users=10_000)
    assert b.p_value == pytest.approx(a.p_value)
    assert b.abs_ci == pytest.approx(a.abs_ci)


def test_group_result_is_json_serialisable() -> None:
    res = group_sequential_test(_history(0.11, 5, 7), alpha=0.05, planned_users=28_000)
    text = json.dumps(asdict(res))
    assert json.loads(text)["method"] == "group"


def test_group_degenerate_current_look_gives_nan_and_reason() -> None:
    looks = [(ProportionStats(1, 0), ProportionStats(1, 1))]
    res = group_sequential_test(looks, alpha=0.05, planned_users=1_000)
    assert math.isnan(res.p_value)
    assert res.reason is not None
    assert math.isnan(group_sequential_test([], alpha=0.05, planned_users=10).p_value)


def test_group_works_for_mean_metrics() -> None:
    rng = np.random.default_rng(8)
    looks, c, t = [], SampleStats(0, 0.0, 0.0), SampleStats(0, 0.0, 0.0)
    for _ in range(5):
        x, y = rng.normal(10, 3, 300), rng.normal(10.5, 3, 300)
        c = c + SampleStats(300, x.sum(), (x**2).sum())
        t = t + SampleStats(300, y.sum(), (y**2).sum())
        looks.append((c, t))
    res = group_sequential_test(looks, alpha=0.05, planned_users=6_000)
    assert res.p_value < 0.05
    assert res.abs_ci[0] > 0
    assert replace(res, reason=None).method == "group"


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 50_000),
    st.floats(0.5, 500.0),
    st.floats(0.5, 500.0),
    st.floats(0.1, 100.0),
    st.floats(1e-3, 1e3),
)
def test_relative_results_invariant_to_scaling_values(n, mean_c, mean_t, sd, c) -> None:
    def arm(mean: float, scale: float) -> SampleStats:
        total = scale * mean * n
        return SampleStats(n, total, (scale * sd) ** 2 * (n - 1) + total**2 / n)

    a = sequential_test(arm(mean_c, 1.0), arm(mean_t, 1.0), alpha=0.05)
    b = sequential_test(arm(mean_c, c), arm(mean_t, c), alpha=0.05)
    assert b.rel_delta == pytest.approx(a.rel_delta, rel=1e-6, abs=1e-9)
    assert b.rel_ci == pytest.approx(a.rel_ci, rel=1e-6, abs=1e-9)
    assert b.p_value == pytest.approx(a.p_value, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize(
    "call",
    [
        lambda: sequential_test(CONTROL, TREATMENT, alpha=0.0),
        lambda: sequential_test(CONTROL, TREATMENT, alpha=0.05, tuning=0),
        lambda: fixed_test(CONTROL, TREATMENT, alpha=1.0),
        lambda: group_sequential_test([(CONTROL, TREATMENT)], planned_users=0),
        lambda: group_sequential_test([(CONTROL, TREATMENT)], alpha=2, planned_users=9),
    ],
)
def test_invalid_options_are_rejected(call) -> None:
    with pytest.raises(ValueError, match="must be"):
        call()


@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.integers(50, 3_000), min_size=1, max_size=8),
    st.floats(0.08, 0.14),
    st.integers(0, 2**32 - 1),
    st.sampled_from([5_000, 20_000, 60_000]),
)
def test_group_duality_holds_for_random_histories(days, rate_t, seed, planned) -> None:
    rng = np.random.default_rng(seed)
    c = t = ProportionStats(0, 0)
    looks = []
    for users in days:
        c = c + ProportionStats(users, int(rng.binomial(users, 0.1)))
        t = t + ProportionStats(users, int(rng.binomial(users, rate_t)))
        looks.append((c, t))
    res = group_sequential_test(looks, alpha=0.05, planned_users=planned)
    if math.isnan(res.p_value):
        assert res.reason is not None
        return
    assert 0 < res.p_value <= 1
    assert (res.p_value < 0.05) == (res.abs_ci[0] > 0 or res.abs_ci[1] < 0)
    assert res.planned_size_exceeded == (2 * sum(days) > planned)


def _recursion_states(fractions: list[float], alpha: float):
    """(state before look k, τ_k, spending target of look k) for k ≥ 2."""
    spent = list(np.atleast_1d(obf_spending(np.array(fractions), alpha)))
    if fractions[-1] >= 1.0:
        spent[-1] = alpha
    state = seq._advance(seq._look_state((), alpha), fractions[0], float(spent[0]))
    for tau, cum in zip(fractions[1:], spent[1:], strict=True):
        yield state, tau, float(cum) - state.spent
        state = seq._advance(state, tau, float(cum))


@pytest.mark.parametrize(
    ("fractions", "alpha"),
    [
        ([0.1, 0.2, 0.5, 0.8, 1.0], 0.05),
        ([(k + 1) / 28 for k in range(28)], 0.05),
        ([0.02, 0.3, 0.3005, 0.301, 0.9], 0.01),
        ([(k + 1) / 10 for k in range(10)], 1e-4),
    ],
)
def test_newton_boundaries_solve_the_exit_equation_as_brent_does(
    fractions, alpha
) -> None:
    # Each boundary solves P(no earlier exit, |S_k| ≥ b√τ_k) = α(τ_k) − α(τ_{k−1})
    # on the recursion's grid (J&T 2000, ch. 19). Brent's method on that same
    # equation to 1e-14 must agree with the Newton solution to 1e-12 (the brentq
    # fallback, used where the equation has no smooth root, gets only 1e-10).
    for state, tau, target in _recursion_states(fractions, alpha):
        excess = functools.partial(_exit_excess, state, tau, target)
        hi = sps.norm.isf(target / 2)
        while excess(hi) > 0:
            hi *= 1.5
        brent = optimize.brentq(excess, 0.0, hi, xtol=1e-14)
        sd, root_tau = math.sqrt(tau - state.tau), math.sqrt(tau)
        newton = seq._next_boundary(state, sd, root_tau, target)
        assert newton == pytest.approx(brent, abs=1e-12)


def _exit_excess(state, tau: float, target: float, b: float) -> float:
    """P(no exit before look k, |S_k| ≥ b√τ_k) − target on the recursion's grid."""
    sd = math.sqrt(tau - state.tau)
    x = b * math.sqrt(tau) / sd
    v, cum_mass = state.grid / sd, np.cumsum(state.mass)
    return 2 * seq._upper_exit(v, state.mass, cum_mass, x, target / 2)[0] - target


def test_boundaries_extended_from_cached_looks_equal_fresh_ones_exactly() -> None:
    # A daily history extends yesterday's recursion; the as-of analysis computes it
    # from scratch. Both must give the same bits (test_analysis compares them).
    fractions = [(k + 1) * 0.021 for k in range(30)] + [1.0]
    seq._states.clear()
    seq._boundaries.cache_clear()
    fresh = group_sequential_boundaries(fractions, 0.05)
    seq._states.clear()
    seq._boundaries.cache_clear()
    for k in range(1, len(fractions)):
        group_sequential_boundaries(fractions[:k], 0.05)
    assert np.array_equal(group_sequential_boundaries(fractions, 0.05), fresh)


@pytest.mark.parametrize(
    "z",
    [
        np.linspace(0.3, 2.6, 12),
        np.linspace(0.2, 1.5, 12),
        np.r_[np.zeros(5), 3.4, np.ones(6)],
        np.linspace(-0.5, -3.5, 12),
    ],
)
def test_repeated_p_value_is_the_root_of_the_crossing_margin(z) -> None:
    # The secant search must find the α' at which max_k(|z_k| − b_k(α')) turns
    # non-negative as Brent's method does, to well within its 1e-7 in log α'.
    fractions = tuple((k + 1) / 28 for k in range(12))
    root = optimize.brentq(
        lambda x: seq._margin(z, fractions, math.exp(x)),
        math.log(1e-12),
        math.log(1 - 1e-9),
        xtol=1e-12,
    )
    p = seq._repeated_p_value(z, fractions, 0.05)
    assert p == pytest.approx(math.exp(root), rel=1e-7)


def test_the_mixture_test_over_all_looks_at_once_equals_each_look_alone() -> None:
    # One vectorised call for a daily history: the same numbers as one call per
    # look, and a degenerate look (one control unit, then a zero control mean)
    # still gets its reason from the scalar call.
    looks = [
        (ProportionStats(1, 0), ProportionStats(3, 1)),
        (ProportionStats(40, 0), ProportionStats(38, 2)),
        *[
            (ProportionStats(500 * k, 60 * k + k % 3), ProportionStats(510 * k, 66 * k))
            for k in range(1, 30)
        ],
    ]
    together = sequential_tests(looks, alpha=0.05, tuning=8_000)
    alone = [sequential_test(c, t, alpha=0.05, tuning=8_000) for c, t in looks]
    assert repr(together) == repr(alone)  # every field, bit for bit (NaN too)
    assert together[0].reason == "control has fewer than 2 units"
    assert together[1].reason == "control mean is zero; relative lift is undefined"
    assert sequential_tests([]) == []
