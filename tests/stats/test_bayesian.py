from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stats_strategies import proportion_arms

from cxlab.stats.aggregates import ProportionStats
from cxlab.stats.bayesian import bayesian_test, beta_binomial_prob_better
from cxlab.stats.fixed import fixed_test

CONTROL = ProportionStats(10_012, 1_202)
TREATMENT = ProportionStats(9_987, 1_252)


def test_contract_example_golden_values() -> None:
    # CONTRACT §4 example, "bayesian" block (flat prior): prob 0.868, loss 0.0026,
    # rel_ci equal to the fixed rel_ci. Rounded in the contract, hence abs tolerances.
    res = bayesian_test(CONTROL, TREATMENT, alpha=0.05, direction="increase")
    assert res.prob_beat_control == pytest.approx(0.868, abs=5e-4)
    assert res.expected_loss == pytest.approx(0.0026, abs=5e-5)
    assert res.rel_ci == pytest.approx(
        fixed_test(CONTROL, TREATMENT, alpha=0.05).rel_ci, rel=1e-12
    )


def test_expected_loss_matches_numerical_integral() -> None:
    res = bayesian_test(CONTROL, TREATMENT, alpha=0.05, direction="increase")
    mu, sd = res.posterior_mean, res.posterior_sd
    x = np.linspace(mu - 12 * sd, mu + 12 * sd, 200_001)
    dens = np.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
    # E[max(0, −L)] by the trapezoid rule on the Gaussian posterior
    assert res.expected_loss == pytest.approx(
        np.trapezoid(np.maximum(0, -x) * dens, x), rel=1e-6
    )


def test_conjugate_prior_shrinks_towards_prior_mean() -> None:
    flat = bayesian_test(CONTROL, TREATMENT, alpha=0.05, direction="increase")
    res = bayesian_test(
        CONTROL, TREATMENT, alpha=0.05, direction="increase", prior_sd=0.05
    )
    # Normal-normal conjugacy (Gelman et al. BDA3 §2.5) by hand
    prec = 1 / 0.05**2 + 1 / flat.posterior_sd**2
    assert res.posterior_sd == pytest.approx(math.sqrt(1 / prec), rel=1e-12)
    assert res.posterior_mean == pytest.approx(
        (flat.posterior_mean / flat.posterior_sd**2) / prec, rel=1e-12
    )
    assert 0 < res.posterior_mean < flat.posterior_mean


def test_invalid_direction_and_prior_are_rejected() -> None:
    with pytest.raises(ValueError, match="direction"):
        bayesian_test(CONTROL, TREATMENT, direction="up")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prior_sd"):
        bayesian_test(CONTROL, TREATMENT, prior_sd=0.0)


def test_degenerate_input_gives_nan_and_reason() -> None:
    res = bayesian_test(ProportionStats(100, 0), ProportionStats(100, 3))
    assert math.isnan(res.prob_beat_control)
    assert math.isnan(res.expected_loss)
    assert "control mean is zero" in res.reason


@settings(max_examples=60, deadline=None)
@given(proportion_arms(), proportion_arms(), st.none() | st.floats(0.01, 1.0))
def test_probability_in_unit_interval_and_flips_with_direction(
    control, treatment, prior_sd
) -> None:
    up = bayesian_test(control, treatment, direction="increase", prior_sd=prior_sd)
    down = bayesian_test(control, treatment, direction="decrease", prior_sd=prior_sd)
    if math.isnan(up.prob_beat_control):
        assert up.reason is not None
        return
    assert 0.0 <= up.prob_beat_control <= 1.0
    assert down.prob_beat_control == pytest.approx(1 - up.prob_beat_control, abs=1e-12)
    assert up.expected_loss >= 0
    assert down.expected_loss >= 0


@pytest.mark.parametrize(
    ("control", "treatment"),
    [
        (ProportionStats(10_012, 1_202), ProportionStats(9_987, 1_252)),
        (ProportionStats(40, 3), ProportionStats(35, 7)),
        (ProportionStats(1_000, 500), ProportionStats(1_000, 480)),
    ],
)
def test_beta_binomial_agrees_with_monte_carlo(control, treatment) -> None:
    # Monte Carlo with 10^6 draws, seed 0; MC standard errors are below 5e-4 for
    # the probability, hence abs=3e-3 / rel=2e-2 on the loss.
    rng = np.random.default_rng(0)
    draws = 1_000_000
    p_c = rng.beta(1 + control.successes, 1 + control.n - control.successes, draws)
    p_t = rng.beta(
        1 + treatment.successes, 1 + treatment.n - treatment.successes, draws
    )
    lift = p_t / p_c - 1
    prob, loss = beta_binomial_prob_better(control, treatment, direction="increase")
    assert prob == pytest.approx(np.mean(p_t > p_c), abs=3e-3)
    assert loss == pytest.approx(np.mean(np.maximum(0, -lift)), rel=2e-2, abs=1e-5)
    prob_d, loss_d = beta_binomial_prob_better(control, treatment, direction="decrease")
    assert prob_d == pytest.approx(1 - prob, abs=1e-12)
    assert loss_d == pytest.approx(np.mean(np.maximum(0, lift)), rel=2e-2, abs=1e-5)


def test_beta_binomial_empty_arm_gives_nan() -> None:
    prob, loss = beta_binomial_prob_better(ProportionStats(0, 0), TREATMENT)
    assert math.isnan(prob)
    assert math.isnan(loss)


def test_beta_binomial_probability_stays_within_zero_and_one() -> None:
    """The sample's click-to-call phone-contact rate: treatment far worse, in a
    'decrease' metric. The quadrature once returned -4.6e-11 here."""
    control, treatment = ProportionStats(68_115, 1_556), ProportionStats(68_211, 2_007)
    prob, loss = beta_binomial_prob_better(control, treatment, direction="decrease")
    assert 0.0 <= prob < 1e-9
    assert loss == pytest.approx(0.2886533, rel=1e-6)  # (2007/68211)/(1556/68115) − 1
