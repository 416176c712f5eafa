"""Sample-ratio mismatch: chi-square test and an always-valid sequential test."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

DEFAULT_SRM_THRESHOLD = 0.001
DEFAULT_SRM_CONCENTRATION = 1_000.0


@dataclass(frozen=True, slots=True)
class SrmResult:
    """Result of :func:`srm_test`.

    Attributes:
        p_value: chi-square goodness-of-fit p-value.
        ok: True unless p_value < threshold.
        expected: expected counts per variant under the configured weights.
        reason: why p_value is NaN, else None.
    """

    p_value: float
    ok: bool
    expected: tuple[float, ...]
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SequentialSrmResult:
    """Result of :func:`sequential_srm`.

    Attributes:
        p_value: always-valid p-value, min(1, running min of 1/BF).
        ok: True unless p_value < threshold.
        reason: why p_value is NaN, else None.
    """

    p_value: float
    ok: bool
    reason: str | None = None


def _normalised(weights: Sequence[float], k: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    if w.shape != (k,):
        raise ValueError(f"expected {k} weights, got {w.shape[0] if w.ndim else 0}")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError("weights must be positive and finite")
    return w / w.sum()


def srm_test(
    observed: Sequence[int],
    weights: Sequence[float],
    *,
    threshold: float = DEFAULT_SRM_THRESHOLD,
) -> SrmResult:
    """Chi-square goodness-of-fit test of the users per variant against the weights.

    Args:
        observed: users per variant.
        weights: configured traffic weights (normalised to sum 1).
        threshold: flag a mismatch when p_value < threshold.

    Returns:
        p-value, ok flag and expected counts. All-zero counts give p NaN, ok True
        and a reason.

    Raises:
        ValueError: weights of the wrong length or not positive.

    References:
        Pearson, K. (1900). On the criterion that a given system of deviations ...
        Phil. Mag. 50(302), 157-175. DOI:10.1080/14786440009463897.
        Fabijan, A. et al. (2019). Diagnosing Sample Ratio Mismatch in Online
        Controlled Experiments. KDD 2019. DOI:10.1145/3292500.3330722.
    """
    obs = np.asarray(observed, dtype=float)
    w = _normalised(weights, obs.shape[0])
    total = float(obs.sum())
    expected = tuple(float(e) for e in total * w)  # E_i = N w_i
    if total <= 0:
        return SrmResult(math.nan, True, expected, "no users in any variant")
    p_value = float(srm_p_values(obs, weights))
    return SrmResult(p_value, bool(p_value >= threshold), expected)


def srm_p_values(counts: Any, weights: Sequence[float]) -> Any:
    """Chi-square SRM p-values, elementwise over leading axes of (..., k) counts.

    Args:
        counts: users per variant; the last axis runs over variants.
        weights: configured traffic weights (normalised to sum 1).

    Returns:
        p-values (NaN where a row has no users).

    References:
        Pearson, K. (1900). Phil. Mag. 50(302), 157-175.
        DOI:10.1080/14786440009463897.
    """
    obs = np.asarray(counts, dtype=float)
    w = _normalised(weights, obs.shape[-1])
    total = obs.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = total * w  # E_i = N w_i
        # Pearson (1900): X² = Σ (O_i − E_i)² / E_i ~ χ²_{k−1}
        stat = ((obs - expected) ** 2 / expected).sum(axis=-1)
        p = special.chdtrc(obs.shape[-1] - 1, stat)  # χ² upper tail
    p = np.where(total[..., 0] > 0, p, np.nan)
    return float(p) if p.ndim == 0 else p


def srm_log_bayes_factor(
    counts: Any, weights: Sequence[float], *, concentration: float
) -> Any:
    """Log Bayes factor of a Dirichlet-multinomial alternative against the weights.

    Works elementwise over leading axes: ``counts`` has shape (..., k).

    Args:
        counts: cumulative users per variant.
        weights: configured traffic weights θ₀ (normalised to sum 1).
        concentration: prior concentration; the alternative is θ ~ Dir(c·θ₀).

    Returns:
        ln BF = ln B(c θ₀ + x) − ln B(c θ₀) − Σ x_i ln θ₀_i, with B the
        multivariate beta function.

    References:
        Lindon, M. & Malek, A. (2022). Anytime-valid inference for multinomial count
        data. NeurIPS 2022. arXiv:2011.03567 (Dirichlet-multinomial Bayes
        factor of the sequential multinomial test; a test martingale).
    """
    x = np.asarray(counts, dtype=float)
    w = _normalised(weights, x.shape[-1])
    a = concentration * w

    def log_beta(v: Any) -> Any:  # ln B(v) = Σ ln Γ(v_i) − ln Γ(Σ v_i)
        return special.gammaln(v).sum(axis=-1) - special.gammaln(v.sum(axis=-1))

    # Lindon & Malek (2022), Dirichlet-multinomial: BF = B(α + x)/B(α) / Π θ₀_i^{x_i}
    return log_beta(a + x) - log_beta(a) - (x * np.log(w)).sum(axis=-1)


def sequential_srm(
    daily_cumulative_counts: Sequence[Sequence[int]],
    weights: Sequence[float],
    *,
    concentration: float = DEFAULT_SRM_CONCENTRATION,
    threshold: float = DEFAULT_SRM_THRESHOLD,
) -> SequentialSrmResult:
    """Always-valid sample-ratio-mismatch test over daily cumulative counts.

    The Bayes factor of the Dirichlet-multinomial mixture against the configured
    weights is a test martingale under H0 (it is the product of the predictive
    likelihood ratios of the increments and depends only on the cumulative
    counts), so p = min(1, min over looks of 1/BF) is valid however often the
    counts are checked (Ville's inequality). The default concentration 1000
    puts the alternative's shares within a few percentage points of the weights,
    where real mismatches live.

    Args:
        daily_cumulative_counts: per look (oldest first), cumulative users per
            variant.
        weights: configured traffic weights.
        concentration: Dirichlet prior concentration c (prior Dir(c·θ₀)).
        threshold: flag a mismatch when p_value < threshold.

    Returns:
        The always-valid p-value and ok flag; NaN p, ok True with a reason when
        there are no users.

    References:
        Lindon, M. & Malek, A. (2022). Anytime-valid inference for multinomial count
        data. NeurIPS 2022. arXiv:2011.03567 (sequential multinomial test
        and its anytime-valid p-value).
        Ville, J. (1939). Étude critique de la notion de collectif (inequality).
    """
    counts = np.asarray(daily_cumulative_counts, dtype=float)
    if counts.ndim != 2 or counts.shape[0] == 0 or counts[-1].sum() <= 0:
        return SequentialSrmResult(math.nan, True, "no users in any variant")
    log_bf = srm_log_bayes_factor(counts, weights, concentration=concentration)
    # Ville: P(sup BF ≥ 1/α) ≤ α ⇒ p = min(1, 1 / max_s BF_s)
    p_value = float(min(1.0, math.exp(-max(0.0, float(np.max(log_bf))))))
    return SequentialSrmResult(p_value, bool(p_value >= threshold))
