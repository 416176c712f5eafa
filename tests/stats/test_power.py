from __future__ import annotations

import math

import pytest
from scipy import stats as sps
from statsmodels.stats.power import NormalIndPower

from cxlab.stats.power import (
    days_needed,
    mde_by_week,
    minimum_detectable_effect,
    noncentrality,
    required_users,
    sequential_inflation,
    sequential_power,
)

P = 0.12
VAR = P * (1 - P)


def test_required_users_matches_textbook_formula() -> None:
    # Chow, Shao & Wang (2008) ch. 3: n = (z_{.975} + z_{.8})² 2σ² / δ²
    delta = 0.05 * P
    z = sps.norm.isf(0.025) + sps.norm.ppf(0.8)
    n = z**2 * 2 * VAR / delta**2
    plan = required_users(P, VAR, 0.05, alpha=0.05, power=0.8)
    assert plan.users_per_arm == pytest.approx(n, rel=1e-3)  # both-tails vs one-tail
    assert plan.total_users == 2 * plan.users_per_arm


@pytest.mark.parametrize("alpha", [0.001, 0.01, 0.05, 0.2, 0.45])
@pytest.mark.parametrize("power", [0.5, 0.8, 0.9, 0.99])
def test_noncentrality_has_the_asked_two_sided_power(
    alpha: float, power: float
) -> None:
    lam = noncentrality(alpha, power)
    z = sps.norm.isf(alpha / 2)
    # the two-sided z test's power at λ, both tails (statsmodels normal_power)
    reached = sps.norm.sf(z - lam) + sps.norm.cdf(-z - lam)
    assert reached == pytest.approx(power, abs=1e-12)
    # and statsmodels' own solver lands on the same λ = (δ/σ) sqrt(n/2), n = 2, to
    # its root finder's tolerance (it stops up to a few 1e-6 away)
    effect = NormalIndPower().solve_power(
        nobs1=2, alpha=alpha, power=power, ratio=1.0, alternative="two-sided"
    )
    assert lam == pytest.approx(effect, abs=1e-5)


@pytest.mark.parametrize(("alpha", "power"), [(0.05, 0.05), (0.05, 0.01), (0.05, 1.0)])
def test_noncentrality_needs_a_power_between_alpha_and_one(
    alpha: float, power: float
) -> None:
    with pytest.raises(ValueError, match="between alpha and 1"):
        noncentrality(alpha, power)


def test_bonferroni_over_treatment_arms_needs_more_users() -> None:
    two = required_users(P, VAR, 0.05, variants=2)
    three = required_users(P, VAR, 0.05, variants=3)
    assert three.alpha == pytest.approx(0.025)
    assert three.users_per_arm > two.users_per_arm
    assert three.total_users == 3 * three.users_per_arm


def test_mde_inverts_required_users() -> None:
    plan = required_users(P, VAR, 0.04)
    mde = minimum_detectable_effect(P, VAR, plan.users_per_arm)
    assert mde == pytest.approx(0.04, rel=1e-3)
    assert math.isnan(minimum_detectable_effect(P, VAR, 1))


def test_sequential_inflation_reaches_the_fixed_power() -> None:
    plan = sequential_inflation(P, VAR, 0.05, alpha=0.05, power=0.8, tuning=5_000)
    assert plan.inflation > 1
    effect = 0.05 * P / math.sqrt(VAR)
    got = sequential_power(
        effect, plan.sequential_users_per_arm, alpha=0.05, tuning=5_000
    )
    assert got == pytest.approx(0.8, abs=1e-3)
    # tuning near the needed size makes the sequence tighter there
    tuned = sequential_inflation(
        P, VAR, 0.05, tuning=2 * plan.fixed_users_per_arm * plan.inflation
    )
    assert tuned.inflation < plan.inflation


def test_days_and_weekly_mde() -> None:
    assert days_needed(20_000, 1_000) == 40
    assert days_needed(20_000, 3_000, variants=3) == 20
    weeks = mde_by_week(P, VAR, 1_000, weeks=4)
    assert [w.users_per_arm for w in weeks] == [3_500, 7_000, 10_500, 14_000]
    mdes = [w.relative_mde for w in weeks]
    assert mdes == sorted(mdes, reverse=True)
    # MDE scales as 1/sqrt(n)
    assert mdes[3] == pytest.approx(mdes[0] / 2, rel=1e-3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"baseline_mean": 0.0, "baseline_var": 1.0, "relative_mde": 0.1},
        {"baseline_mean": 1.0, "baseline_var": 0.0, "relative_mde": 0.1},
        {"baseline_mean": 1.0, "baseline_var": 1.0, "relative_mde": 0.0},
        {"baseline_mean": 1.0, "baseline_var": 1.0, "relative_mde": 0.1, "variants": 1},
    ],
)
def test_invalid_planning_inputs_are_rejected(kwargs) -> None:
    with pytest.raises(ValueError, match="must"):
        required_users(**kwargs)
    with pytest.raises(ValueError, match="daily_users"):
        days_needed(10, 0)
