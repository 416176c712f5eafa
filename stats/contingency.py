"""Whether two arms share one distribution over categories: the chi-square test."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special


@dataclass(frozen=True, slots=True)
class HomogeneityResult:
    """Result of :func:`homogeneity_test`; field names follow the JSON contract.

    Attributes:
        chi2: Pearson's statistic.
        df: degrees of freedom, (categories − 1) for two arms.
        p_value: upper tail of χ²(df) at ``chi2``; NaN when the test cannot run.
    """

    chi2: float
    df: int
    p_value: float


def homogeneity_test(
    control: Sequence[float], treatment: Sequence[float]
) -> HomogeneityResult:
    """Pearson's chi-square test of homogeneity of a 2 × K table of counts.

    Categories empty in both arms are left out. With E_ak = row_a · col_k / N,
    χ² = Σ (O_ak − E_ak)² / E_ak on (K − 1) degrees of freedom; no continuity
    correction (as ``scipy.stats.chi2_contingency(..., correction=False)``).

    Args:
        control: the control arm's count per category.
        treatment: the treatment arm's count per category, in the same order.

    Returns:
        χ², df and p; NaN with df 0 when fewer than two categories or an empty arm.

    References:
        Pearson, K. (1900). On the criterion that a given system of deviations…
        Philosophical Magazine 50(302), 157–175. DOI:10.1080/14786440009463897.
    """
    table = np.array([control, treatment], dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    rows = table.sum(axis=1)
    if table.shape[1] < 2 or not (rows > 0).all():
        return HomogeneityResult(math.nan, 0, math.nan)
    expected = np.outer(rows, table.sum(axis=0)) / table.sum()
    chi2 = float(((table - expected) ** 2 / expected).sum())  # Pearson (1900)
    df = table.shape[1] - 1
    # chdtrc: the χ² upper tail (what scipy.stats.chi2.sf evaluates)
    return HomogeneityResult(chi2, df, float(special.chdtrc(df, chi2)))
