"""Fixed-horizon two-sided z test of two arms, unpooled variances."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from cxlab.stats.aggregates import ArmStats
from cxlab.stats.delta import (
    agreeing_rel_ci,
    as_output,
    check_alpha,
    compare_arms,
    z_upper,
)


@dataclass(frozen=True, slots=True)
class FixedResult:
    """Result of :func:`fixed_test`; field names follow the JSON contract.

    Attributes:
        abs_delta: treatment − control.
        rel_delta: treatment / control − 1.
        p_value: two-sided p-value of H0: abs_delta = 0.
        abs_ci: (lower, upper) 1 − alpha confidence interval of abs_delta.
        rel_ci: (lower, upper) delta-method confidence interval of rel_delta,
            made to agree with abs_ci about 0
            (:func:`cxlab.stats.delta.agreeing_rel_ci`).
        se: standard error of abs_delta.
        rel_se: delta-method standard error of rel_delta.
        reason: why some fields are NaN, else None.
    """

    abs_delta: float
    rel_delta: float
    p_value: float
    abs_ci: tuple[float, float]
    rel_ci: tuple[float, float]
    se: float
    rel_se: float
    reason: str | None = None


def fixed_test(
    control: ArmStats, treatment: ArmStats, *, alpha: float = 0.05
) -> FixedResult:
    """Two-sided large-sample z test with unpooled variances and delta-method lift.

    The arms' fields may be numpy arrays of one shape: every numeric field of the
    result is then an array computed elementwise (``reason`` is None; NaN marks
    degenerate entries). This is how the calibration simulations run this code.

    Args:
        control: the control arm (``n``, ``mean``, ``var``; var / n = Var(mean)).
        treatment: the treatment arm.
        alpha: two-sided significance level; intervals have coverage 1 − alpha.

    Returns:
        Deltas, p-value and confidence intervals. Degenerate input (an arm with
        fewer than 2 units, zero variance of the difference, zero control mean
        for the relative results) gives NaN fields and a ``reason``.

    Raises:
        ValueError: alpha outside (0, 1).

    References:
        Deng, A., Knoblich, U. & Lu, J. (2018). Applying the Delta Method in Metric
        Analytics: A Practical Guide with Novel Ideas. KDD 2018. arXiv:1803.06336,
        delta method for the percent change (variance of rel_delta).
    """
    check_alpha(alpha)
    d = compare_arms(control, treatment)
    z_crit = z_upper(alpha / 2)  # z_{1−α/2}
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.asarray(d.abs_delta) / np.asarray(d.se)
        # Wald test: p = 2 (1 − Φ(|z|)), z = (x̄_t − x̄_c) / sqrt(V_c + V_t)
        p_value = 2.0 * special.ndtr(-np.abs(z))
        abs_half = z_crit * np.asarray(d.se)  # abs_delta ± z_{1−α/2} se
        rel_half = z_crit * np.asarray(d.rel_se)  # rel_delta ± z_{1−α/2} rel_se
    abs_ci = _interval(d.abs_delta, abs_half)
    return FixedResult(
        abs_delta=d.abs_delta,
        rel_delta=d.rel_delta,
        p_value=as_output(p_value),
        abs_ci=abs_ci,
        rel_ci=agreeing_rel_ci(abs_ci, _interval(d.rel_delta, rel_half), control.mean),
        se=d.se,
        rel_se=d.rel_se,
        reason=d.reason or d.rel_reason,
    )


def _interval(center: Any, half: Any) -> tuple[Any, Any]:
    """(center − half, center + half), NaN on both ends if either is NaN."""
    if isinstance(center, float) and isinstance(half, float):  # no array overhead
        if math.isfinite(center) and not math.isnan(half):
            return float(center - half), float(center + half)
        return math.nan, math.nan
    center, half = np.asarray(center, dtype=float), np.asarray(half, dtype=float)
    bad = ~(np.isfinite(center) & ~np.isnan(half))
    lower = np.where(bad, math.nan, center - half)
    upper = np.where(bad, math.nan, center + half)
    return as_output(lower), as_output(upper)
