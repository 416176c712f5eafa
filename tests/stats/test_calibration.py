"""Simulation calibration of the tests (seeded, vectorised over arrays of arms).

The cheap checks (arms built from binomial/multinomial counts) always run 10,000
replicates (or CXLAB_SIM_REPS if larger): well under a second each. The slow
ones (per-user revenue and ratio draws) read CXLAB_SIM_REPS, default 4,000; the
full run in bench/calibrate.py uses 20,000-100,000.

Each check's tolerance is max(stated tolerance, 4 Monte-Carlo standard errors):
at 10,000 replicates "5 % ± 1 pp" stays ± 1 pp; the coverage checks stay
± 1 pp at 10,000 and widen to ± 1.38 pp at 4,000; one-sided "≤ 5 %" checks allow
5 % + 4 MCSE (+0.87 pp at 10,000); "≤ 0.1 %" allows +0.13 pp at 10,000.
The drifting-effect coverage must reach 95 % − 4 MCSE (94.13 % at 10,000); the
mixture power read once at N must lie within 4 MCSE of normal theory (± 1.97 pp
at 40.8 %, ± 1.81 pp at 28.9 %).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from scipy import stats as sps

from cxlab.stats import calibration as cal
from cxlab.stats.aggregates import ProportionStats
from cxlab.stats.sequential import (
    DEFAULT_TUNING,
    group_sequential_test,
    mixture_multiplier,
    sequential_test,
)

REPS = int(os.environ.get("CXLAB_SIM_REPS", "4000"))
CHEAP_REPS = max(REPS, 10_000)


@pytest.mark.parametrize(
    "check",
    [
        cal.fixed_aa_final_look,
        cal.fixed_aa_peeking,
        cal.mixture_aa_peeking,
        cal.group_aa_peeking,
        cal.fixed_power,
        cal.group_power,
        cal.coverage_conversion,
        cal.coverage_nps,
        cal.srm_chi2_final_look,
        cal.srm_chi2_daily,
        cal.srm_sequential_daily,
        cal.srm_sequential_daily_strict,
        cal.mixture_drift_coverage,
        cal.running_intersection_drift_coverage,
        cal.running_intersection_drift_excludes_estimate,
        cal.fixed_power_planned,
        cal.mixture_power_read_once,
        cal.mixture_power_peeking,
        cal.mixture_power_read_once_default_tuning,
        cal.mixture_power_peeking_default_tuning,
        cal.coverage_rmst,
        cal.coverage_category_rate,
        cal.composition_aa,
    ],
    ids=lambda f: f.__name__,
)
def test_simulated_rate_meets_its_target(check) -> None:
    result = check(CHEAP_REPS)
    assert result.replicates == CHEAP_REPS
    assert result.passed, result


@pytest.mark.slow
@pytest.mark.parametrize(
    "check",
    [cal.coverage_revenue, cal.coverage_ratio, cal.coverage_capped_revenue],
    ids=lambda f: f.__name__,
)
def test_simulated_coverage_of_per_user_metrics(check) -> None:
    result = check(REPS)
    assert result.passed, result


def test_fixed_test_peeking_is_far_worse_than_sequential() -> None:
    peeking = cal.fixed_aa_peeking(CHEAP_REPS).observed
    assert peeking > 2 * cal.ALPHA
    assert cal.mixture_aa_peeking(CHEAP_REPS).observed < cal.ALPHA
    assert cal.group_aa_peeking(CHEAP_REPS).observed < peeking / 2


def test_tolerance_is_at_least_four_monte_carlo_errors() -> None:
    assert cal.mc_tolerance(0.05, 4_000, 0.01) == pytest.approx(
        4 * (0.05 * 0.95 / 4_000) ** 0.5
    )
    assert cal.mc_tolerance(0.05, 100_000, 0.01) == 0.01


def test_vectorised_group_rule_matches_public_group_sequential_test() -> None:
    # The simulation applies the boundaries of stats.sequential to arrays; the
    # public function must reach the same decision replicate by replicate.
    rng = np.random.default_rng(99)
    c, t = cal._daily_proportions(rng, 40, cal.BASE_RATE, 0.11)
    crossed = cal._group_crossings(c, t)
    for i in range(40):
        looks = [
            (
                ProportionStats(int(c.n[i, k]), int(c.successes[i, k])),
                ProportionStats(int(t.n[i, k]), int(t.successes[i, k])),
            )
            for k in range(cal.LOOKS)
        ]
        # Each look reports its own repeated p-value; the design stops at the
        # first look whose p-value is below alpha.
        p_values = [
            group_sequential_test(
                looks[: k + 1],
                alpha=cal.ALPHA,
                planned_users=2 * cal.LOOKS * cal.DAILY_USERS_PER_ARM,
            ).p_value
            for k in range(cal.LOOKS)
        ]
        assert (min(p_values) < cal.ALPHA) == bool(crossed[i])
    assert 0 < crossed.mean() < 1


# --- drifting effect ---------------------------------------------------------

# One-sided binomial tolerance for a coverage of 95 % at 10,000 replicates:
# 4 · sqrt(0.95 · 0.05 / 10,000) = 0.87 pp.
COVERAGE_FLOOR = 1 - cal.ALPHA - 4 * math.sqrt(0.95 * 0.05 / CHEAP_REPS)


def test_drifting_parameter_is_the_running_mean_of_the_daily_effects() -> None:
    # Geometric sum by hand: θ_k = 0.005 + 0.02 (1 − r^k) / ((1 − r) k), r = 2^(−1/3)
    r = 0.5 ** (1 / 3)
    k = np.arange(1, cal.LOOKS + 1)
    theta = 0.005 + 0.02 * (1 - r**k) / ((1 - r) * k)
    np.testing.assert_allclose(cal.drift_cumulative_effects(), theta, rtol=1e-12)
    assert theta[0] == pytest.approx(0.025)
    assert theta[-1] == pytest.approx(0.008457, abs=1e-6)


def test_current_look_sequence_covers_the_drifting_cumulative_effect() -> None:
    result = cal.mixture_drift_coverage(CHEAP_REPS)
    assert result.observed >= COVERAGE_FLOOR  # 0.9413 at 10,000 replicates


def test_running_intersection_loses_coverage_only_when_the_effect_drifts() -> None:
    current = cal.mixture_drift_coverage(CHEAP_REPS).observed
    running = cal.running_intersection_drift_coverage(CHEAP_REPS).observed
    excluded = cal.running_intersection_drift_excludes_estimate(CHEAP_REPS).observed
    # Early looks (θ_1 = 2.5 pp) pin the intersection above the later θ_k (0.85 pp
    # by day 28); the gap is ~37 pp, far beyond the ~0.7 pp MC error of a gap.
    assert current - running > 0.25
    assert excluded > 0.25
    # With a constant effect the intersection covers exactly when every look's
    # interval does, replicate by replicate: the loss above is the drift's.
    rng, effect = np.random.default_rng(14), 0.005
    c, t = cal._daily_proportions(rng, CHEAP_REPS, 0.10, 0.10 + effect, 2_000)
    res = sequential_test(c, t, alpha=cal.ALPHA)
    lower, upper = np.asarray(res.abs_ci[0]), np.asarray(res.abs_ci[1])
    lo, hi = cal._running_intersection(lower, upper)
    each = np.all((lower <= effect) & (effect <= upper), axis=1)
    together = np.all((lo <= effect) & (effect <= hi), axis=1)
    assert np.array_equal(each, together)
    assert each.mean() >= COVERAGE_FLOOR


# --- power where the fixed test has 80 % -------------------------------------


def _z_power(n_per_arm: float, threshold: float) -> float:
    """P(|Z| > threshold) for the unpooled z statistic, 10 % vs 10.5 %, by scipy."""
    se = math.sqrt((0.10 * 0.90 + 0.105 * 0.895) / n_per_arm)
    lam = 0.005 / se
    return float(sps.norm.cdf(lam - threshold) + sps.norm.cdf(-lam - threshold))


def test_planned_size_gives_the_fixed_test_80_percent_power() -> None:
    n = cal.PLANNED_TOTAL_USERS / 2
    assert n == 57_764  # 28 days × 2,063 users ≥ 57,759.9 (Chow et al. ch. 4)
    theory = _z_power(n, sps.norm.isf(0.025))
    assert theory == pytest.approx(0.80, abs=1e-4)
    simulated = cal.fixed_power_planned(CHEAP_REPS).observed
    assert simulated == pytest.approx(theory, abs=4 * math.sqrt(0.16 / CHEAP_REPS))


@pytest.mark.parametrize("tuning", [cal.PLANNED_TOTAL_USERS, DEFAULT_TUNING])
def test_mixture_power_read_once_matches_normal_theory(tuning) -> None:
    # Power of |Z| > c(N) with the sequence's multiplier (eq. 9), by scipy: an
    # independent check of the simulation and of stats.power.sequential_power.
    c = float(mixture_multiplier(cal.PLANNED_TOTAL_USERS, alpha=0.05, tuning=tuning))
    theory = _z_power(cal.PLANNED_TOTAL_USERS / 2, c)
    assert cal.mixture_power_theory(tuning) == pytest.approx(theory, rel=1e-9)
    simulated = cal.mixture_power_read_once(CHEAP_REPS, tuning=tuning).observed
    tol = 4 * math.sqrt(theory * (1 - theory) / CHEAP_REPS)
    assert simulated == pytest.approx(theory, abs=tol)


def test_mixture_power_stays_well_below_the_fixed_tests_80_percent() -> None:
    planned_once = cal.mixture_power_read_once(CHEAP_REPS).observed
    planned_peek = cal.mixture_power_peeking(CHEAP_REPS).observed
    default_once = cal.mixture_power_read_once_default_tuning(CHEAP_REPS).observed
    default_peek = cal.mixture_power_peeking_default_tuning(CHEAP_REPS).observed
    fixed = cal.fixed_power_planned(CHEAP_REPS).observed
    # normal theory at N: 40.8 % (N* = N), 28.9 % (N* = 5000); daily peeking
    # adds about 10 pp; all on the same replicates
    assert 0 < default_once < planned_once < planned_peek < fixed - 0.2
    assert default_once < default_peek < planned_peek
    assert planned_peek - planned_once > 0.05
