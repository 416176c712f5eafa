"""Non-inferiority of a guardrail: is the treatment shown not worse than a margin?

The hypotheses are on the relative lift L = mean_t / mean_c − 1 with the
delta-method standard error, in the metric's good direction: with margin m > 0,
H0: the treatment is worse by m or more (L ≤ −m when larger is better, L ≥ m when
smaller is better) against H1: it is not. A small p-value shows the guardrail
safe within the margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy import special

from cxlab.stats.aggregates import ArmStats
from cxlab.stats.delta import compare_arms
from cxlab.stats.sequential import DEFAULT_TUNING, mixture_p_value

Direction = Literal["increase", "decrease"]


@dataclass(frozen=True, slots=True)
class NonInferiority:
    """A non-inferiority test of one guardrail.

    Attributes:
        margin: the relative margin m (> 0).
        p_value: one-sided p-value of H0 "worse by m or more".
        passed: p_value ≤ alpha: the guardrail is shown safe within the margin.
    """

    margin: float
    p_value: float
    passed: bool


def _shifted_z(
    control: ArmStats, treatment: ArmStats, margin: float, direction: Direction
) -> tuple[float, float]:
    """(z, n): the distance of the lift from the margin's boundary, in rel_se."""
    d = compare_arms(control, treatment)
    sign = 1.0 if direction == "increase" else -1.0
    with_margin = sign * float(d.rel_delta) + margin  # > 0: better than the boundary
    z = with_margin / float(d.rel_se) if d.rel_se and d.rel_se > 0 else math.nan
    return z, float(d.n_control + d.n_treatment)


def fixed_non_inferiority(
    control: ArmStats,
    treatment: ArmStats,
    *,
    margin: float,
    direction: Direction,
    alpha: float,
) -> NonInferiority:
    """One-sided z test of non-inferiority on the relative lift.

    Args:
        control: the control arm.
        treatment: the treatment arm.
        margin: relative margin m > 0.
        direction: the metric's good direction.
        alpha: one-sided level.

    Returns:
        p = 1 − Φ(z), z = (±L̂ + m) / se(L̂) (+ for ``increase``).

    References:
        Wellek, S. (2010). Testing Statistical Hypotheses of Equivalence and
        Noninferiority, 2nd ed., ch. 2 (the shifted one-sided z test).
        Deng, Knoblich & Lu (2018), arXiv:1803.06336 (delta method for L).
    """
    z, _ = _shifted_z(control, treatment, margin, direction)
    p = float(special.ndtr(-z)) if math.isfinite(z) else math.nan
    return NonInferiority(margin, p, bool(p <= alpha))


def sequential_non_inferiority(
    control: ArmStats,
    treatment: ArmStats,
    *,
    margin: float,
    direction: Direction,
    alpha: float,
    tuning: float = DEFAULT_TUNING,
) -> NonInferiority:
    """Always-valid non-inferiority: the confidence sequence clears the margin.

    The mixture sequence at level a excludes the boundary −m (or m) exactly when
    the always-valid p-value of the shifted statistic is below a; on the good
    side of the boundary that p-value is the test's, on the bad side it is 1.
    Valid under continuous monitoring (two-sided, so conservative one-sided).

    Args:
        control: the control arm.
        treatment: the treatment arm.
        margin: relative margin m > 0.
        direction: the metric's good direction.
        alpha: level (and the level the mixture is tuned for).
        tuning: N*, as in :func:`cxlab.stats.sequential.sequential_test`.

    Returns:
        The test; ``p_value`` = min(1, 1/Λ) at z = (±L̂ + m) / se(L̂) when z > 0.

    References:
        Waudby-Smith, I. et al. (2023). Time-uniform central limit theory and
        asymptotic confidence sequences. arXiv:2103.06476, eqs. 9, 155.
    """
    z, n = _shifted_z(control, treatment, margin, direction)
    if not math.isfinite(z):
        return NonInferiority(margin, math.nan, False)
    p = float(mixture_p_value(z, n, alpha=alpha, tuning=tuning)) if z > 0 else 1.0
    return NonInferiority(margin, p, bool(p <= alpha))


def bayesian_non_inferiority(
    posterior_mean: float,
    posterior_sd: float,
    *,
    margin: float,
    direction: Direction,
    alpha: float,
) -> NonInferiority:
    """Posterior probability of being worse than the margin, as the p-value.

    Args:
        posterior_mean: posterior mean of the relative lift.
        posterior_sd: its posterior standard deviation.
        margin: relative margin m > 0.
        direction: the metric's good direction.
        alpha: the largest posterior probability of harm beyond m that passes.

    Returns:
        p = P(worse by m or more | data) = Φ(−(±μ + m)/σ).

    References:
        Gelman, A. et al. (2013). Bayesian Data Analysis, 3rd ed., section 2.5.
    """
    sign = 1.0 if direction == "increase" else -1.0
    if not (math.isfinite(posterior_mean) and posterior_sd > 0):
        return NonInferiority(margin, math.nan, False)
    p = float(special.ndtr(-(sign * posterior_mean + margin) / posterior_sd))
    return NonInferiority(margin, p, bool(p <= alpha))
