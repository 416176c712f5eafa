"""The composition test against scipy.stats.chi2_contingency."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from cxlab.stats.contingency import homogeneity_test


@pytest.mark.parametrize(
    ("control", "treatment"),
    [
        ([120, 80, 40, 60], [90, 85, 45, 58]),
        ([10, 3], [4, 9]),  # two categories: no continuity correction here
        ([5, 0, 7], [6, 0, 2]),  # an empty category is left out
    ],
)
def test_matches_scipy_without_correction(control, treatment) -> None:
    table = np.array([control, treatment])
    table = table[:, table.sum(axis=0) > 0]
    chi2, p, df, _ = chi2_contingency(table, correction=False)
    result = homogeneity_test(control, treatment)
    assert result.chi2 == pytest.approx(chi2, rel=1e-12)
    assert result.p_value == pytest.approx(p, rel=1e-12)
    assert result.df == df


def test_one_category_or_an_empty_arm_cannot_be_tested() -> None:
    assert math.isnan(homogeneity_test([4], [5]).p_value)
    assert math.isnan(homogeneity_test([0, 0], [3, 4]).p_value)
