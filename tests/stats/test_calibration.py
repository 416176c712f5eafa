"""Simulation calibration of the tests (seeded, vectorised over arrays of arms).

The cheap checks (arms built from binomial/multinomial counts) always run 10,000
replicates (or CXLAB_SIM_REPS if larger): well under a second each. The slow
ones (per-user revenue and ratio draws) read CXLAB_SIM_REPS, default 4,000; the
full run in bench/calibrate.py uses 20,000-100,000.

Each check's tolerance is max(stated tolerance, 4 Monte-Carlo standard errors):
at 10,000 replicates "5 % ± 1 pp" stays ± 1 pp; the coverage checks stay
± 1 pp at 10,000 and widen to ± 1.38 pp at 4,000; one-sided "≤ 5 %" checks allow
5 % + 4 MCSE (+0.87 pp at 10,000); "≤ 0.1 %" allows +0.13 pp at 10,000.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from stats import calibration as cal
from stats.aggregates import ProportionStats
from stats.sequential import group_sequential_test

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
    ],
    ids=lambda f: f.__name__,
)
def test_simulated_rate_meets_its_target(check) -> None:
    result = check(CHEAP_REPS)
    assert result.replicates == CHEAP_REPS
    assert result.passed, result


@pytest.mark.slow
@pytest.mark.parametrize(
    "check", [cal.coverage_revenue, cal.coverage_ratio], ids=lambda f: f.__name__
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
