"""Empirical-Bayes shrinkage of experiment effects and their combination.

Pure functions over numbers (estimated effects and their standard errors): the
method-of-moments variance of true effects around zero (DerSimonian & Laird 1986),
the normal-normal posterior that shrinks each effect toward zero (Efron & Morris
1975), and the combined effect of several independent effects, multiplicatively
with a delta-method error (Oehlert 1992) or additively. :mod:`cxlab.portfolio` uses
them for the combined effect of the shipped experiments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Shrinkage:
    """Normal-normal empirical-Bayes shrinkage of effects toward zero.

    Attributes:
        tau2: the estimated variance of true effects across experiments.
        estimates: the shrunk effects, B_i · y_i.
        variances: their posterior variances, B_i · s_i².
        factors: the shrinkage factors B_i = τ² / (τ² + s_i²), in [0, 1].
    """

    tau2: float
    estimates: tuple[float, ...]
    variances: tuple[float, ...]
    factors: tuple[float, ...]


def tau2_moments(effects: Sequence[float], ses: Sequence[float]) -> float:
    """Method-of-moments variance of true effects around zero (DerSimonian-Laird).

    With y_i ~ N(θ_i, s_i²) and θ_i ~ N(0, τ²), the weighted statistic
    Q₀ = Σ w_i y_i² with w_i = 1/s_i² has E[Q₀] = k + τ² Σ w_i, which gives

        τ̂² = max(0, (Q₀ − k) / Σ w_i).

    This is the DerSimonian-Laird estimator with the mean fixed at zero (no effect
    a priori) instead of estimated: k degrees of freedom instead of k − 1, and
    Σ w_i instead of Σ w_i − Σ w_i² / Σ w_i.

    Args:
        effects: estimated effects y_i.
        ses: their standard errors s_i (> 0).

    Returns:
        τ̂² ≥ 0 (0 when no effects are given).

    References:
        DerSimonian R, Laird N (1986). Meta-analysis in clinical trials. Controlled
        Clinical Trials 7(3):177-188, doi:10.1016/0197-2456(86)90046-2, eq. (7).
    """
    if not effects:
        return 0.0
    weights = [1 / s**2 for s in ses]
    q0 = sum(w * y**2 for w, y in zip(weights, effects, strict=True))
    return max(0.0, (q0 - len(effects)) / sum(weights))  # DL eq. (7), mean fixed at 0


def shrink(effects: Sequence[float], ses: Sequence[float], tau2: float) -> Shrinkage:
    """Posterior means and variances of effects under a N(0, τ²) prior.

    θ_i | y_i ~ N(B_i y_i, B_i s_i²) with B_i = τ² / (τ² + s_i²): a noisy estimate
    is pulled further toward zero than a precise one.

    Args:
        effects: estimated effects y_i.
        ses: their standard errors s_i (> 0).
        tau2: the prior variance τ² of the true effects.

    Returns:
        The :class:`Shrinkage`.

    References:
        Efron B, Morris C (1975). Data analysis using Stein's estimator and its
        generalizations. JASA 70(350):311-319, doi:10.1080/01621459.1975.10479864.
    """
    factors = tuple(tau2 / (tau2 + s**2) for s in ses)  # B_i = τ² / (τ² + s_i²)
    return Shrinkage(
        tau2=tau2,
        estimates=tuple(b * y for b, y in zip(factors, effects, strict=True)),
        variances=tuple(b * s**2 for b, s in zip(factors, ses, strict=True)),
        factors=factors,
    )


def combine_multiplicative(
    effects: Sequence[float], variances: Sequence[float]
) -> tuple[float, float]:
    """Combined relative effect Π(1 + m_i) − 1 and its delta-method standard error.

    Assuming independent effects, ∂/∂m_i Π(1 + m_j) = Π(1 + m_j) / (1 + m_i), so

        Var ≈ (Π(1 + m_j))² Σ v_i / (1 + m_i)².

    Args:
        effects: relative effects m_i (e.g. shrunk lifts).
        variances: their variances v_i.

    Returns:
        (combined effect, standard error); (0, 0) when no effects are given.

    References:
        Oehlert GW (1992). A note on the delta method. The American Statistician
        46(1):27-29, doi:10.1080/00031305.1992.10475842.
    """
    product = math.prod(1 + m for m in effects)
    # Var ≈ (Π(1 + m_j))² Σ v_i / (1 + m_i)², the delta method
    var = product**2 * sum(
        v / (1 + m) ** 2 for m, v in zip(effects, variances, strict=True)
    )
    return product - 1, math.sqrt(var)


def combine_additive(
    effects: Sequence[float], variances: Sequence[float]
) -> tuple[float, float]:
    """Combined additive effect Σ m_i and its standard error √Σ v_i (independent).

    Args:
        effects: additive effects m_i (e.g. shrunk NPS deltas in points).
        variances: their variances v_i.

    Returns:
        (combined effect, standard error); (0, 0) when no effects are given.
    """
    return sum(effects), math.sqrt(sum(variances))
