from __future__ import annotations

import math

import numpy as np
import pytest

from cxlab.stats.aggregates import NpsStats, ProportionStats, RatioStats, SampleStats


def test_sample_stats_match_numpy_on_raw_values() -> None:
    x = np.array([1.0, 4.0, 2.5, 0.0, 7.0])
    s = SampleStats(x.size, x.sum(), (x**2).sum())
    assert s.mean == pytest.approx(x.mean(), rel=1e-12)
    assert s.var == pytest.approx(x.var(ddof=1), rel=1e-12)
    assert isinstance(s.mean, float)
    assert isinstance(s.var, float)


def test_ratio_var_matches_delta_method_on_raw_values() -> None:
    rng = np.random.default_rng(0)
    y = rng.poisson(2.0, 500).astype(float)
    x = rng.poisson(0.5 + 0.2 * y).astype(float)
    r = RatioStats(500, x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum())
    ratio = x.mean() / y.mean()
    cov = np.cov(x, y, ddof=1)
    # Deng, Knoblich & Lu (2018) ratio delta method written out on the raw arrays
    expected = (
        cov[0, 0] - 2 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]
    ) / y.mean() ** 2
    assert r.mean == pytest.approx(ratio, rel=1e-12)
    assert r.var == pytest.approx(expected, rel=1e-9)


def test_nps_var_is_variance_of_plus_minus_100_scores() -> None:
    scores = np.array([100.0] * 5 + [0.0] * 3 + [-100.0] * 2)
    s = NpsStats(5, 3, 2)
    assert s.mean == pytest.approx(scores.mean())
    assert s.var == pytest.approx(scores.var(ddof=0))  # multinomial, ddof 0


def test_degenerate_arms_give_nan_not_zero() -> None:
    assert math.isnan(SampleStats(1, 3.0, 9.0).var)
    assert math.isnan(SampleStats(0, 0.0, 0.0).mean)
    assert math.isnan(ProportionStats(0, 0).var)
    assert math.isnan(RatioStats(5, 1.0, 0.0, 1.0, 0.0, 0.0).var)
    assert math.isnan(NpsStats(0, 0, 0).var)


def test_array_fields_work_elementwise_like_scalars() -> None:
    arms = [
        (SampleStats, [(10, 5.0, 9.0), (1, 2.0, 4.0), (3, 0.0, 2.0)]),
        (ProportionStats, [(10, 3), (0, 0), (5, 5)]),
        (RatioStats, [(4, 3.0, 5.0, 5.0, 9.0, 6.0), (4, 1.0, 0.0, 1.0, 0.0, 0.0)]),
        (NpsStats, [(5, 3, 2), (0, 0, 0)]),
    ]
    for cls, rows in arms:
        vec = cls(*(np.array(col, dtype=float) for col in zip(*rows, strict=True)))
        for i, row in enumerate(rows):
            one = cls(*row)
            np.testing.assert_allclose(vec.mean[i], one.mean, rtol=1e-12)
            np.testing.assert_allclose(vec.var[i], one.var, rtol=1e-12)
