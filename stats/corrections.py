"""Multiple-testing corrections of p-values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

Correction = Literal["holm", "bh", "none"]


def adjust_p_values(p_values: Sequence[float], method: Correction) -> list[float]:
    """Adjust a family of p-values; NaN entries pass through and are left out.

    Args:
        p_values: raw p-values (NaN for tests that could not run).
        method: ``"holm"`` (family-wise error), ``"bh"`` (false discovery rate)
            or ``"none"``.

    Returns:
        Adjusted p-values in the input order, capped at 1.

    Raises:
        ValueError: an unknown method.

    References:
        Holm, S. (1979). A simple sequentially rejective multiple test procedure.
        Scand. J. Statist. 6(2), 65-70 (step-down procedure).
        Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate.
        JRSS B 57(1), 289-300. DOI:10.1111/j.2517-6161.1995.tb02031.x (step-up).
    """
    if method not in ("holm", "bh", "none"):
        raise ValueError(f"unknown correction {method!r}")
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    keep = ~np.isnan(p)
    q = p[keep]
    m = q.size
    if method == "none" or m == 0:
        out[keep] = q
        return [float(v) for v in out]
    order = np.argsort(q, kind="stable")
    ranked = q[order]
    i = np.arange(1, m + 1)
    if method == "holm":
        # Holm (1979): p̃_(i) = max_{j ≤ i} min(1, (m − j + 1) p_(j))
        adj = np.maximum.accumulate(np.minimum(1.0, (m - i + 1) * ranked))
    else:
        # BH (1995): p̃_(i) = min_{j ≥ i} min(1, m p_(j) / j)
        adj = np.minimum.accumulate((m * ranked / i)[::-1])[::-1]
        adj = np.minimum(1.0, adj)
    back = np.empty(m)
    back[order] = adj
    out[keep] = back
    return [float(v) for v in out]
