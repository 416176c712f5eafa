"""Absolute and relative differences of two arms, with their standard errors.

Shared by the fixed-horizon, sequential and Bayesian tests. Every function works
elementwise: the arms' ``n``, ``mean`` and ``var`` may be Python numbers or numpy
arrays of one shape (the calibration simulations pass arrays of replicates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from cxlab.stats.aggregates import ArmStats


@dataclass(frozen=True, slots=True)
class Deltas:
    """Point estimates and standard errors of treatment − control.

    Attributes:
        abs_delta: mean_t − mean_c.
        rel_delta: mean_t / mean_c − 1.
        se: standard error of abs_delta (unpooled).
        rel_se: delta-method standard error of rel_delta.
        n_control: units in the control arm.
        n_treatment: units in the treatment arm.
        reason: why inference is impossible (scalar input only), else None.
        rel_reason: why relative results are impossible (scalar input only).
    """

    abs_delta: Any
    rel_delta: Any
    se: Any
    rel_se: Any
    n_control: Any
    n_treatment: Any
    reason: str | None
    rel_reason: str | None


def z_upper(p: Any) -> Any:
    """The standard normal quantile with upper tail p: z with 1 − Φ(z) = p.

    Args:
        p: upper-tail probability; number or array.

    Returns:
        −Φ⁻¹(p), the same value as ``scipy.stats.norm.isf(p)`` without its overhead.

    References:
        Abramowitz, M. & Stegun, I. A. (1964). Handbook of Mathematical Functions,
        26.2.2 (Φ) and 26.2.22 (its inverse); ``scipy.special.ndtri``.
    """
    return -special.ndtri(p)


def as_output(x: Any) -> Any:
    """A 0-d value as a Python float, an array unchanged.

    Args:
        x: number or array.

    Returns:
        ``float(x)`` for 0-d input, else the array.

    References:
        NumPy documentation, "Scalars" (numpy.float64 vs Python float): results
        of scalar calls are plain floats so they serialise like the contract.
    """
    arr = np.asarray(x, dtype=float)
    return float(arr) if arr.ndim == 0 else arr


def check_alpha(alpha: float) -> None:
    """Reject a significance level outside (0, 1).

    Args:
        alpha: significance level.

    Raises:
        ValueError: alpha is not strictly between 0 and 1.

    References:
        Lehmann, E. L. & Romano, J. P. (2005). Testing Statistical Hypotheses,
        3rd ed., section 3.1 (a level-α test has 0 < α < 1).
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha!r}")


def compare_arms(control: ArmStats, treatment: ArmStats) -> Deltas:
    """Differences of two arms with unpooled and delta-method standard errors.

    Degenerate entries (fewer than 2 units in an arm, zero or undefined variance of
    the difference) get NaN standard errors; a zero or NaN control mean gives NaN
    relative results. Point estimates stay defined where the means are.

    Args:
        control: the control arm (``n``, ``mean``, ``var`` with var / n = Var(mean)).
        treatment: the treatment arm.

    Returns:
        The differences; ``reason``/``rel_reason`` are set only for scalar input.

    References:
        Deng, A., Knoblich, U. & Lu, J. (2018). Applying the Delta Method in Metric
        Analytics: A Practical Guide with Novel Ideas. KDD 2018.
        arXiv:1803.06336 (delta method for the percent change, a ratio of
        two independent means).
    """
    n_c = np.asarray(control.n, dtype=float)
    n_t = np.asarray(treatment.n, dtype=float)
    m_c = np.asarray(control.mean, dtype=float)
    m_t = np.asarray(treatment.mean, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok_n = (n_c >= 2) & (n_t >= 2)
        var_mean_c = np.asarray(control.var, dtype=float) / n_c  # Var(x̄_c)
        var_mean_t = np.asarray(treatment.var, dtype=float) / n_t  # Var(x̄_t)
        var_diff = var_mean_c + var_mean_t  # unpooled: Var(x̄_t − x̄_c)
        ok_se = ok_n & np.isfinite(var_diff) & (var_diff > 0)
        abs_delta = np.where(ok_n, m_t - m_c, np.nan)
        se = np.where(ok_se, np.sqrt(np.where(ok_se, var_diff, 1.0)), np.nan)
        ok_rel = ok_n & np.isfinite(m_c) & (m_c != 0)
        m_c_safe = np.where(ok_rel, m_c, 1.0)
        rel_delta = np.where(ok_rel, m_t / m_c_safe - 1.0, np.nan)
        # Deng, Knoblich & Lu (2018), delta method:
        # Var(x̄_t/x̄_c) ≈ V_t/m_c² + m_t² V_c/m_c⁴
        rel_var = var_mean_t / m_c_safe**2 + m_t**2 * var_mean_c / m_c_safe**4
        ok_rel_se = ok_rel & ok_se & np.isfinite(rel_var) & (rel_var > 0)
        rel_se = np.where(ok_rel_se, np.sqrt(np.where(ok_rel_se, rel_var, 1.0)), np.nan)
    reason = rel_reason = None
    if n_c.ndim == 0 and n_t.ndim == 0 and m_c.ndim == 0 and m_t.ndim == 0:
        reason = _reason(n_c, n_t, var_diff)
        rel_reason = reason or _rel_reason(m_c, rel_se)
    return Deltas(
        abs_delta=as_output(abs_delta),
        rel_delta=as_output(rel_delta),
        se=as_output(se),
        rel_se=as_output(rel_se),
        n_control=as_output(n_c),
        n_treatment=as_output(n_t),
        reason=reason,
        rel_reason=rel_reason,
    )


def _reason(n_c: Any, n_t: Any, var_diff: Any) -> str | None:
    if not n_c >= 2:
        return "control has fewer than 2 units"
    if not n_t >= 2:
        return "treatment has fewer than 2 units"
    if not np.isfinite(var_diff):
        return "variance of the difference is undefined"
    if not var_diff > 0:
        return "variance of the difference is zero"
    return None


def _rel_reason(m_c: Any, rel_se: Any) -> str | None:
    if not np.isfinite(m_c):
        return "control mean is undefined; relative lift is undefined"
    if m_c == 0:
        return "control mean is zero; relative lift is undefined"
    if not np.isfinite(rel_se):
        return "variance of the relative lift is zero or undefined"
    return None


def agreeing_rel_ci(
    abs_ci: tuple[Any, Any], rel_ci: tuple[Any, Any], control_mean: Any
) -> tuple[Any, Any]:
    """The relative interval, made to agree with the absolute one about zero.

    The absolute interval is dual to the test (it excludes 0 exactly when the
    p-value is below the level). The delta-method relative interval uses the
    variance V_t + r²V_c (r = m_t/m_c) instead of V_t + V_c, so in a thin band
    where the two z statistics straddle the critical value the two intervals
    can disagree about 0. There, and only there, the relative interval's end
    nearest 0 is replaced by the matching end of the absolute interval divided
    by the control mean (the first-order map abs → rel); both then exclude 0
    exactly when the test rejects, and the interval still contains rel_delta,
    which lies beyond that end. Elementwise on arrays.

    Args:
        abs_ci: (lower, upper) interval of abs_delta.
        rel_ci: (lower, upper) delta-method interval of rel_delta.
        control_mean: the control arm's mean m_c (rel = abs / m_c).

    Returns:
        The relative interval, unchanged wherever it already agrees.

    References:
        Deng, A., Knoblich, U. & Lu, J. (2018). Applying the Delta Method in Metric
        Analytics: A Practical Guide with Novel Ideas. KDD 2018. arXiv:1803.06336
        (delta method for the percent change).
    """
    a_lo, a_hi = (np.asarray(v, dtype=float) for v in abs_ci)
    r_lo, r_hi = (np.asarray(v, dtype=float) for v in rel_ci)
    m = np.asarray(control_mean, dtype=float)
    positive = m > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        # The rel end nearest the lower abs end: rel lower for m > 0, upper for m < 0.
        lo_from = np.where(positive, a_lo, a_hi) / m
        hi_from = np.where(positive, a_hi, a_lo) / m
    abs_above = np.where(positive, a_lo > 0, a_hi < 0)  # rel must sit above 0
    abs_below = np.where(positive, a_hi < 0, a_lo > 0)  # rel must sit below 0
    finite = np.isfinite(r_lo) & np.isfinite(r_hi) & np.isfinite(m) & (m != 0)
    lower = np.where(finite & (abs_above != (r_lo > 0)), lo_from, r_lo)
    upper = np.where(finite & (abs_below != (r_hi < 0)), hi_from, r_hi)
    return as_output(lower), as_output(upper)
