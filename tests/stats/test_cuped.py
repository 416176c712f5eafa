from __future__ import annotations

import math

import numpy as np
import pytest

from cxlab.stats.aggregates import CovariateStats, RatioCovariateStats, SampleStats
from cxlab.stats.cuped import cuped_adjust
from cxlab.stats.fixed import fixed_test


def _arm(y: np.ndarray, x: np.ndarray) -> CovariateStats:
    return CovariateStats(
        y.size, y.sum(), (y * y).sum(), x.sum(), (x * x).sum(), (x * y).sum()
    )


@pytest.fixture
def raw() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(11)
    x_c, x_t = rng.gamma(2, 5, 2_000), rng.gamma(2, 5, 1_800)
    y_c = 0.8 * x_c + rng.normal(0, 4, 2_000)
    y_t = 0.8 * x_t + rng.normal(0, 4, 1_800) + 0.5
    return y_c, x_c, y_t, x_t


def test_adjustment_matches_regression_on_raw_arrays(raw) -> None:
    y_c, x_c, y_t, x_t = raw
    res = cuped_adjust(_arm(y_c, x_c), _arm(y_t, x_t))
    y, x = np.concatenate([y_c, y_t]), np.concatenate([x_c, x_t])
    # Deng et al. (2013) §3: θ = cov(Y, X) / var(X) over the pooled units
    theta = np.cov(y, x, ddof=1)[0, 1] / np.var(x, ddof=1)
    assert res.theta == pytest.approx(theta, rel=1e-9)
    for est, (yy, xx) in zip(
        (res.control, res.treatment), ((y_c, x_c), (y_t, x_t)), strict=True
    ):
        adjusted = yy - theta * (xx - x.mean())  # Ŷ_cv per unit
        assert est.n == yy.size
        assert est.mean == pytest.approx(adjusted.mean(), rel=1e-9)
        assert est.var == pytest.approx(adjusted.var(ddof=1), rel=1e-9)


def test_variance_reduction_is_share_of_difference_variance_removed(raw) -> None:
    y_c, x_c, y_t, x_t = raw
    res = cuped_adjust(_arm(y_c, x_c), _arm(y_t, x_t))
    before = y_c.var(ddof=1) / y_c.size + y_t.var(ddof=1) / y_t.size
    after = res.control.var / y_c.size + res.treatment.var / y_t.size
    assert res.variance_reduction == pytest.approx(1 - after / before, rel=1e-12)
    corr = np.corrcoef(np.concatenate([y_c, y_t]), np.concatenate([x_c, x_t]))[0, 1]
    assert res.variance_reduction == pytest.approx(corr**2, abs=0.05)  # ≈ ρ²
    assert res.reason is None


def test_adjusted_arms_feed_the_fixed_test_and_narrow_the_interval(raw) -> None:
    y_c, x_c, y_t, x_t = raw
    res = cuped_adjust(_arm(y_c, x_c), _arm(y_t, x_t))
    adjusted = fixed_test(res.control, res.treatment, alpha=0.05)
    plain = fixed_test(
        SampleStats(y_c.size, y_c.sum(), (y_c**2).sum()),
        SampleStats(y_t.size, y_t.sum(), (y_t**2).sum()),
        alpha=0.05,
    )
    assert adjusted.se < plain.se
    assert adjusted.abs_ci[0] < 0.5 < adjusted.abs_ci[1]


def test_constant_covariate_means_no_adjustment_with_reason() -> None:
    y = np.array([1.0, 3.0, 2.0, 5.0])
    x = np.zeros(4)
    res = cuped_adjust(_arm(y, x), _arm(y + 1, x))
    assert res.theta == 0.0
    assert res.variance_reduction == 0.0
    assert "zero variance" in res.reason
    assert res.control.mean == pytest.approx(y.mean())
    assert res.control.var == pytest.approx(y.var(ddof=1))


def test_arm_with_one_unit_gives_nan_and_reason() -> None:
    one = _arm(np.array([1.0]), np.array([2.0]))
    res = cuped_adjust(one, _arm(np.array([1.0, 2.0]), np.array([0.0, 1.0])))
    assert math.isnan(res.theta)
    assert math.isnan(res.control.mean)
    assert res.reason is not None


# --- ratio metrics: CUPED on the linearised ratio ---------------------------------


def _ratio_arm(x, y, x0, y0) -> RatioCovariateStats:
    return RatioCovariateStats(
        x.size,
        *(float(v.sum()) for v in (x, y, x * x, y * y, x * y)),
        *(float(v.sum()) for v in (x0, y0, x0 * x0, y0 * y0, x0 * y0)),
        *(float(v.sum()) for v in (x * x0, x * y0, y * x0, y * y0)),
    )


def _linearised(x, y):
    """Each unit's delta-method contribution to Σx/Σy: (x − R y) / ȳ."""
    return (x - x.sum() / y.sum() * y) / y.mean()


@pytest.fixture
def ratio_raw() -> list[tuple[np.ndarray, ...]]:
    """Contacts (x) per order (y), now and in the pre-period, for two arms."""
    rng = np.random.default_rng(5)
    arms = []
    for n, rate in ((1_500, 0.30), (1_400, 0.24)):
        y0 = rng.poisson(2.0, n).astype(float)
        x0 = rng.binomial(y0.astype(int), 0.3).astype(float)
        keen = y0 + rng.poisson(0.5, n)
        y = rng.poisson(keen).astype(float)
        x = rng.binomial(y.astype(int), rate).astype(float) + (x0 > 1)
        arms.append((x, y, x0, y0))
    return arms


def test_ratio_adjustment_matches_least_squares_on_linearised_values(
    ratio_raw,
) -> None:
    res = cuped_adjust(*(_ratio_arm(*arm) for arm in ratio_raw))
    x, y, x0, y0 = (np.concatenate(v) for v in zip(*ratio_raw, strict=True))
    # θ: least squares of the pooled linearised ratio on the pooled linearised
    # pre-period ratio, with an intercept (Deng, Knoblich & Lu 2018 §3.3).
    design = np.column_stack([np.ones(x.size), _linearised(x0, y0)])
    (_, theta), *_ = np.linalg.lstsq(design, _linearised(x, y), rcond=None)
    assert res.theta == pytest.approx(theta, rel=1e-9)
    pooled_pre = x0.sum() / y0.sum()
    for est, (xa, ya, x0a, y0a) in zip(
        (res.control, res.treatment), ratio_raw, strict=True
    ):
        ratio, pre_ratio = xa.sum() / ya.sum(), x0a.sum() / y0a.sum()
        assert est.mean == pytest.approx(ratio - theta * (pre_ratio - pooled_pre))
        adjusted = _linearised(xa, ya) - theta * _linearised(x0a, y0a)
        assert est.var == pytest.approx(adjusted.var(ddof=1), rel=1e-9)
    assert 0.05 < res.variance_reduction < 0.9
    assert res.reason is None


def test_ratio_without_pre_period_denominator_is_not_adjusted(ratio_raw) -> None:
    x, y, x0, _ = ratio_raw[0]
    arm = _ratio_arm(x, y, x0 * 0, x0 * 0)
    res = cuped_adjust(arm, arm)
    assert res.theta == 0.0
    assert res.variance_reduction == 0.0
    assert res.reason == "an arm has no pre-period denominator"
    assert res.control.mean == pytest.approx(x.sum() / y.sum())
    assert res.control.var == pytest.approx(_linearised(x, y).var(ddof=1))
