"""Portfolio math: empirical-Bayes shrinkage, combined effects and headline counts."""

from __future__ import annotations

import datetime as dt
import math
from types import SimpleNamespace

import numpy as np
import pytest

from cxlab import portfolio
from cxlab.portfolio import (
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


# --- fakes of analysed experiments (only the fields the functions read) -------------


def row(metric: str, variant: str, role: str, verdict: str, rel: float, se: float):
    return SimpleNamespace(
        metric=SimpleNamespace(
            id=metric, label=metric.title(), type="nps" if metric == "nps" else "mean"
        ),
        variant=variant,
        role=role,
        verdict=verdict,
        rel_delta=rel,
        fixed=SimpleNamespace(
            rel_delta=rel, rel_se=se, abs_delta=rel * 30, se=se * 30, rel_ci=(0, 0)
        ),
        sequential=SimpleNamespace(rel_ci=(0, 0)),
        bayesian=SimpleNamespace(prob_beat_control=0.5 + rel, rel_ci=(0, 0)),
    )


def experiment(exp_id, status, rows, *, srm_ok=True, end=dt.date(2026, 10, 20)):
    return SimpleNamespace(
        experiment=SimpleNamespace(
            id=exp_id,
            status=status,
            start=dt.date(2026, 6, 1),
            end=None if status == "running" else end,
            treatments=("t",),
            decision="fixed",
        ),
        srm=SimpleNamespace(ok=srm_ok),
        results=tuple(rows),
        finished=status != "running",
        as_of=end,
        warnings=(),
    )


PORTFOLIO = [
    experiment("a", "shipped", [row("conversion", "t", "primary", "win", 0.10, 0.04)]),
    experiment(
        "b", "rolled_back", [row("conversion", "t", "primary", "loss", -0.02, 0.05)]
    ),
    experiment("c", "shipped", [row("conversion", "t", "primary", "win", 0.05, 0.02)]),
    experiment(
        "d",
        "stopped",
        [row("conversion", "t", "primary", "win", 0.40, 0.01)],
        srm_ok=False,  # invalid: neither a win nor a learning, not in τ²
    ),
    experiment(
        "e", "running", [row("conversion", "t", "primary", "inconclusive", 0, 1)]
    ),
    experiment(
        "f",
        "shipped",
        [row("conversion", "t", "primary", "win", 0.2, 0.1)],
        end=dt.date(2026, 6, 30),  # decided last quarter
    ),
]


def test_headline_counts_running_decided_wins_and_learnings() -> None:
    head = portfolio.headline(PORTFOLIO, dt.date(2026, 11, 5))
    assert head.quarter == "Q4 2026"
    assert head.running == 1
    assert head.decided == 4  # a, b, c, d (f ended in Q2)
    assert head.wins == 2  # a, c (d's win is invalid)
    assert head.learnings == 3  # a, b (a loss is a learning), c
    assert head.win_rate == pytest.approx(0.5)
    assert head.learning_rate == pytest.approx(0.75)


def test_shipped_impact_shrinks_with_tau2_from_all_valid_experiments() -> None:
    results = PORTFOLIO[:5]  # a, b, c shipped/rolled back; d invalid; e running
    effect = portfolio.shipped_impact(results, "conversion")
    assert effect is not None
    # τ² from a, b, c and e (valid), not d: e adds w = 1, y = 0 to the sums.
    tau2 = (12.66 - 4) / (3525 + 1)
    assert effect.tau2 == pytest.approx(tau2)
    assert effect.n_experiments == 4
    b_a, b_c = tau2 / (tau2 + 0.0016), tau2 / (tau2 + 0.0004)
    m_a, m_c = b_a * 0.10, b_c * 0.05
    assert [c[0] for c in effect.contributions] == ["a", "c"]
    assert effect.estimate == pytest.approx((1 + m_a) * (1 + m_c) - 1)
    assert effect.raw_sum == pytest.approx(0.15)
    assert effect.estimate < effect.raw_sum
    lo, hi = effect.ci
    assert lo < effect.estimate < hi
    value, caption = portfolio.describe_impact(effect)
    assert value == f"{effect.estimate * 100:+.1f}%"
    assert "shrunk toward zero" in caption
    assert "+15.0%" in caption  # the raw sum, stated for comparison


def test_shipped_impact_is_none_without_shipped_experiments() -> None:
    assert portfolio.shipped_impact(PORTFOLIO[1:2], "conversion") is None
