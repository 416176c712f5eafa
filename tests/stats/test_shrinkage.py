"""Shrinkage: DerSimonian-Laird τ², empirical-Bayes shrinkage, combined effects."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cxlab.stats.shrinkage import (
    combine_additive,
    combine_multiplicative,
    shrink,
    tau2_moments,
)

# Three made-up experiments: lifts y and their standard errors s.
Y = [0.10, -0.02, 0.05]
S = [0.04, 0.05, 0.02]


def test_tau2_is_the_dersimonian_laird_moment_estimate_around_zero() -> None:
    # w = 1/s² = 625, 400, 2500; Σw = 3525
    # Q₀ = Σ w y² = 625·0.01 + 400·0.0004 + 2500·0.0025 = 6.25 + 0.16 + 6.25 = 12.66
    # τ² = (Q₀ − k) / Σw = (12.66 − 3) / 3525 = 0.00274042553...
    assert tau2_moments(Y, S) == pytest.approx(9.66 / 3525, rel=1e-12)
    assert tau2_moments(Y, S) == pytest.approx(0.00274042553, rel=1e-9)


def test_tau2_is_zero_when_the_effects_are_no_more_spread_than_their_noise() -> None:
    # Q₀ = 625·0.0001 + 400·0.0001 = 0.1025 < k = 2
    assert tau2_moments([0.01, -0.01], [0.04, 0.05]) == 0.0
    assert tau2_moments([], []) == 0.0


def test_shrinkage_pulls_noisy_estimates_further_toward_zero() -> None:
    tau2 = 9.66 / 3525
    out = shrink(Y, S, tau2)
    # B_i = τ² / (τ² + s_i²), s² = 0.0016, 0.0025, 0.0004
    factors = [tau2 / (tau2 + 0.0016), tau2 / (tau2 + 0.0025), tau2 / (tau2 + 0.0004)]
    assert out.factors == pytest.approx(factors)
    assert out.factors[0] == pytest.approx(0.631372, rel=1e-5)
    assert out.estimates == pytest.approx([b * y for b, y in zip(factors, Y)])  # noqa: B905
    assert out.variances == pytest.approx(
        [b * s**2 for b, s in zip(factors, S)]  # noqa: B905
    )
    # The precise experiment (s = 0.02) keeps most of its lift; the noisy one less.
    assert out.factors[2] > out.factors[0] > out.factors[1]
    assert all(abs(m) <= abs(y) for m, y in zip(out.estimates, Y))  # noqa: B905
    assert shrink(Y, S, 0.0).estimates == (0.0, 0.0, 0.0)


def test_multiplicative_combination_with_delta_method_error() -> None:
    est, se = combine_multiplicative([0.10, -0.05], [0.0004, 0.0009])
    # 1.10 × 0.95 − 1 = 0.045
    assert est == pytest.approx(0.045)
    # Var = 1.045² (0.0004/1.10² + 0.0009/0.95²) = 1.092025 × 0.00132783...
    var = 1.045**2 * (0.0004 / 1.21 + 0.0009 / 0.9025)
    assert se == pytest.approx(math.sqrt(var))
    assert se == pytest.approx(0.038078, rel=1e-4)
    # A seeded simulation of independent normal lifts agrees to about 1%.
    rng = np.random.default_rng(7)
    draws = (1 + rng.normal(0.10, 0.02, 400_000)) * (
        1 + rng.normal(-0.05, 0.03, 400_000)
    ) - 1
    assert float(draws.std()) == pytest.approx(se, rel=0.01)
    assert combine_multiplicative([], []) == (0.0, 0.0)


def test_additive_combination_adds_points_and_variances() -> None:
    assert combine_additive([4.0, 2.5], [1.0, 2.24]) == pytest.approx((6.5, 1.8))
