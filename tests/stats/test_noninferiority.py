from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from cxlab.stats.aggregates import ProportionStats, SampleStats
from cxlab.stats.noninferiority import (
    bayesian_non_inferiority,
    fixed_non_inferiority,
    sequential_non_inferiority,
)
from cxlab.stats.sequential import mixture_multiplier

CONTROL = ProportionStats(20_000, 2_000)


def _rel_and_se(control, treatment) -> tuple[float, float]:
    # Delta method for m_t / m_c - 1 (Deng, Knoblich & Lu 2018), written out here.
    m_c, m_t = control.mean, treatment.mean
    v_c, v_t = control.var / control.n, treatment.var / treatment.n
    return m_t / m_c - 1, math.sqrt(v_t / m_c**2 + m_t**2 * v_c / m_c**4)


@pytest.mark.parametrize("successes", [1_900, 1_960, 2_000, 2_080])
def test_fixed_test_is_the_shifted_one_sided_z_test(successes) -> None:
    treatment = ProportionStats(20_000, successes)
    rel, se = _rel_and_se(CONTROL, treatment)
    res = fixed_non_inferiority(
        CONTROL, treatment, margin=0.05, direction="increase", alpha=0.05
    )
    assert res.p_value == pytest.approx(sps.norm.sf((rel + 0.05) / se), rel=1e-12)
    assert res.passed == (res.p_value <= 0.05)


def test_a_smaller_is_better_metric_is_tested_on_the_other_side() -> None:
    contacts = ProportionStats(200_000, 10_000)
    more = ProportionStats(200_000, 10_300)  # +3%: worse, but within a 10% margin
    rel, se = _rel_and_se(contacts, more)
    res = fixed_non_inferiority(
        contacts, more, margin=0.10, direction="decrease", alpha=0.05
    )
    assert res.p_value == pytest.approx(sps.norm.sf((0.10 - rel) / se), rel=1e-12)
    assert res.passed
    worse = ProportionStats(200_000, 11_000)  # +10%: not shown within 10%
    assert not fixed_non_inferiority(
        contacts, worse, margin=0.10, direction="decrease", alpha=0.05
    ).passed


@pytest.mark.parametrize("successes", [1_930, 1_960, 2_000, 2_050])
def test_sequential_passes_exactly_when_the_sequence_clears_the_margin(
    successes,
) -> None:
    treatment = ProportionStats(20_000, successes)
    rel, se = _rel_and_se(CONTROL, treatment)
    c = mixture_multiplier(40_000, alpha=0.05, tuning=5_000)
    res = sequential_non_inferiority(
        CONTROL, treatment, margin=0.05, direction="increase", alpha=0.05
    )
    assert res.passed == (rel - c * se > -0.05)
    fixed = fixed_non_inferiority(
        CONTROL, treatment, margin=0.05, direction="increase", alpha=0.05
    )
    assert res.p_value >= fixed.p_value  # always valid costs evidence


def test_bayesian_p_value_is_the_posterior_mass_beyond_the_margin() -> None:
    res = bayesian_non_inferiority(
        -0.01, 0.02, margin=0.05, direction="increase", alpha=0.05
    )
    assert res.p_value == pytest.approx(sps.norm.cdf(-0.05, loc=-0.01, scale=0.02))
    assert res.passed == (res.p_value <= 0.05)
    down = bayesian_non_inferiority(
        0.01, 0.02, margin=0.05, direction="decrease", alpha=0.05
    )
    assert down.p_value == pytest.approx(sps.norm.sf(0.05, loc=0.01, scale=0.02))


def test_degenerate_arms_never_pass() -> None:
    flat = SampleStats(1, 5.0, 25.0)
    res = fixed_non_inferiority(
        flat, flat, margin=0.05, direction="increase", alpha=0.05
    )
    assert math.isnan(res.p_value)
    assert not res.passed
