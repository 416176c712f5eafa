"""Words one group uses distinctly more than another: the "Fightin' Words" z-scores.

Counts in, z-scores out: the weighted log-odds ratio of each word between two
groups with an informative Dirichlet prior, so that rare words, whose raw
log-odds swing widely, do not dominate the list.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def log_odds_z(
    counts_a: Sequence[float] | np.ndarray,
    counts_b: Sequence[float] | np.ndarray,
    prior: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """Z-scores of each word's log-odds in group a against group b.

    With counts y_wa, y_wb of word w, totals n_a, n_b, the prior's pseudo-counts
    α_w and α₀ = Σα_w:

        δ_w = log[(y_wa + α_w) / (n_a + α₀ − y_wa − α_w)]
            − log[(y_wb + α_w) / (n_b + α₀ − y_wb − α_w)]
        σ²_w ≈ 1 / (y_wa + α_w) + 1 / (y_wb + α_w)
        z_w = δ_w / σ_w

    A positive z means a uses the word more than b. The usual informative prior
    is the two groups' pooled counts (``counts_a + counts_b``), possibly scaled.

    Args:
        counts_a: each word's count in group a.
        counts_b: each word's count in group b, same order.
        prior: each word's Dirichlet pseudo-count α_w (> 0), same order.

    Returns:
        z_w per word (an empty array for no words).

    References:
        Monroe, B. L., Colaresi, M. P. & Quinn, K. M. (2008). Fightin' Words:
        lexical feature selection and evaluation for identifying the content of
        political conflict. Political Analysis 16(4), 372-403.
        DOI:10.1093/pan/mpn018, §3.5.1 (informative Dirichlet prior), eq. 22.
    """
    a = np.asarray(counts_a, dtype=float)
    b = np.asarray(counts_b, dtype=float)
    alpha = np.asarray(prior, dtype=float)
    if a.shape != b.shape or a.shape != alpha.shape:
        raise ValueError("counts_a, counts_b and prior must have one length")
    if a.size == 0:
        return np.array([])
    if np.any(alpha <= 0):
        raise ValueError("every prior pseudo-count must be positive")
    alpha_0 = alpha.sum()
    # Monroe et al. (2008) §3.5.1: log-odds of w in each group, smoothed by α.
    odds_a = np.log((a + alpha) / (a.sum() + alpha_0 - a - alpha))
    odds_b = np.log((b + alpha) / (b.sum() + alpha_0 - b - alpha))
    variance = 1.0 / (a + alpha) + 1.0 / (b + alpha)  # ibid. §3.5.1: its variance
    return (odds_a - odds_b) / np.sqrt(variance)  # Monroe et al. (2008) eq. 22
