"""Sufficient statistics of one arm: the hand-off from the engine to the tests.

Every test in ``stats/`` needs only, per arm, the number of units, the mean of the
per-unit metric and the per-unit variance of that mean's estimator (``var / n`` is
the variance of ``mean``). Each class below derives those three from the sums the
engine's single Polars pass produces.

The fields may also hold numpy arrays of one shape (many arms at once, e.g. the
replicates of a calibration simulation): ``mean`` and ``var`` then work
elementwise and return arrays; with scalar fields they return Python floats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Protocol

import numpy as np

NPS_SCALE = 100.0


class ArmStats(Protocol):
    """What every test reads from an arm: size, point estimate, per-unit variance."""

    @property
    def n(self) -> int: ...  # noqa: D102

    @property
    def mean(self) -> float: ...  # noqa: D102

    @property
    def var(self) -> float: ...  # noqa: D102


def _out(x: Any) -> Any:
    """A 0-d result as a Python float; an array result unchanged (elementwise use)."""
    arr = np.asarray(x, dtype=float)
    return float(arr) if arr.ndim == 0 else arr


def _safe_div(num: Any, den: Any) -> Any:
    """Return num / den, NaN where den is 0; elementwise on numpy arrays."""
    if np.ndim(num) == 0 and np.ndim(den) == 0:
        return num / den if den else math.nan
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    ok = den != 0
    return np.where(ok, num / np.where(ok, den, 1.0), np.nan)


@dataclass(frozen=True, slots=True)
class SampleStats:
    """Per-unit metric (``mean`` type): n, Σx, Σx².

    ``var`` is the unbiased sample variance (ddof = 1).
    """

    n: int
    sum: float
    sum_sq: float

    @property
    def mean(self) -> float:
        """Sample mean Σx / n."""
        return _safe_div(self.sum, self.n)

    @property
    def var(self) -> float:
        """Unbiased sample variance (Σx² − (Σx)²/n) / (n − 1)."""
        n = np.asarray(self.n, dtype=float)
        ok = n >= 2
        n_safe = np.where(ok, n, 2.0)
        var = (self.sum_sq - np.asarray(self.sum, dtype=float) ** 2 / n_safe) / (
            n_safe - 1
        )
        return _out(np.where(ok, np.maximum(var, 0.0), np.nan))

    def __add__(self, other: SampleStats) -> SampleStats:
        return SampleStats(
            self.n + other.n, self.sum + other.sum, self.sum_sq + other.sum_sq
        )


@dataclass(frozen=True, slots=True)
class ProportionStats:
    """Binary per-unit metric (``proportion`` type): n units, of which ``successes``.

    ``var`` is the Bernoulli variance p(1 − p), as in the Wald test.
    """

    n: int
    successes: float

    @property
    def mean(self) -> float:
        """Share of units with the event."""
        return _safe_div(self.successes, self.n)

    @property
    def var(self) -> float:
        """Bernoulli variance p(1 − p)."""
        p = self.mean
        return _out(p * (1.0 - p))

    def __add__(self, other: ProportionStats) -> ProportionStats:
        return ProportionStats(self.n + other.n, self.successes + other.successes)


@dataclass(frozen=True, slots=True)
class RatioStats:
    """Ratio of sums over units (``ratio`` type): Σx / Σy with per-unit x and y.

    ``var`` is the delta-method per-unit variance of the ratio, so that
    Var(R̂) ≈ var / n, with R = x̄/ȳ (Deng, Knoblich & Lu 2018, eq. 3):

        var = (σ²ₓ − 2 R σₓᵧ + R² σ²ᵧ) / ȳ²
    """

    n: int
    sum_x: float
    sum_y: float
    sum_xx: float
    sum_yy: float
    sum_xy: float

    @property
    def mean(self) -> float:
        """Ratio of sums Σx / Σy."""
        return _safe_div(self.sum_x, self.sum_y)

    @property
    def var(self) -> float:
        """Delta-method per-unit variance of the ratio of means."""
        n_raw = np.asarray(self.n, dtype=float)
        sum_y = np.asarray(self.sum_y, dtype=float)
        ok = (n_raw >= 2) & (sum_y != 0)
        n = np.where(ok, n_raw, 2.0)
        mean_x, mean_y = self.sum_x / n, np.where(ok, sum_y, 1.0) / n
        var_x = (self.sum_xx - n * mean_x**2) / (n - 1)
        var_y = (self.sum_yy - n * mean_y**2) / (n - 1)
        cov_xy = (self.sum_xy - n * mean_x * mean_y) / (n - 1)
        ratio = mean_x / mean_y
        # Deng et al. (2018), eq. 3: Var(x̄/ȳ) by the first-order Taylor expansion.
        var = (var_x - 2 * ratio * cov_xy + ratio**2 * var_y) / mean_y**2
        return _out(np.where(ok, np.maximum(var, 0.0), np.nan))

    def __add__(self, other: RatioStats) -> RatioStats:
        return RatioStats(
            self.n + other.n,
            self.sum_x + other.sum_x,
            self.sum_y + other.sum_y,
            self.sum_xx + other.sum_xx,
            self.sum_yy + other.sum_yy,
            self.sum_xy + other.sum_xy,
        )


@dataclass(frozen=True, slots=True)
class NpsStats:
    """Net Promoter Score of responders: counts of promoters, passives, detractors.

    Each responder scores +100 (promoter, 9-10), 0 (passive, 7-8) or −100
    (detractor, 0-6); the NPS is their mean. With shares p and d of promoters and
    detractors the multinomial gives the per-responder variance

        var = 100² [(p + d) − (p − d)²]
    """

    promoters: int
    passives: int
    detractors: int

    @property
    def n(self) -> int:
        """Responders."""
        return self.promoters + self.passives + self.detractors

    @property
    def mean(self) -> float:
        """NPS on −100..100: 100 (p − d)."""
        return _safe_div(NPS_SCALE * (self.promoters - self.detractors), self.n)

    @property
    def var(self) -> float:
        """Multinomial per-responder variance 100² [(p + d) − (p − d)²]."""
        p = _safe_div(self.promoters, self.n)
        d = _safe_div(self.detractors, self.n)
        # Multinomial: E[s²] − E[s]² with s ∈ {+100, 0, −100}.
        return _out(NPS_SCALE**2 * ((p + d) - (p - d) ** 2))

    def __add__(self, other: NpsStats) -> NpsStats:
        return NpsStats(
            self.promoters + other.promoters,
            self.passives + other.passives,
            self.detractors + other.detractors,
        )


@dataclass(frozen=True, slots=True)
class CovariateStats:
    """A per-unit metric y with its pre-period covariate x, for CUPED.

    Sums over units: n, Σy, Σy², Σx, Σx², Σxy (y the outcome in the experiment,
    x the same metric over the pre-exposure period; 0 for units without events).
    """

    n: int
    sum_y: float
    sum_yy: float
    sum_x: float
    sum_xx: float
    sum_xy: float

    def __add__(self, other: CovariateStats) -> CovariateStats:
        return CovariateStats(
            self.n + other.n,
            self.sum_y + other.sum_y,
            self.sum_yy + other.sum_yy,
            self.sum_x + other.sum_x,
            self.sum_xx + other.sum_xx,
            self.sum_xy + other.sum_xy,
        )


@dataclass(frozen=True, slots=True)
class RatioCovariateStats:
    """A ratio metric Σx / Σy with its pre-period ratio Σx₀ / Σy₀, for CUPED.

    Sums over units of the in-period numerator x and denominator y, the same
    two over the pre-exposure period (x₀, y₀; 0 for units without events), and
    every product the delta-method covariance of the two ratios needs.
    """

    n: int
    sum_x: float
    sum_y: float
    sum_xx: float
    sum_yy: float
    sum_xy: float
    pre_x: float
    pre_y: float
    pre_xx: float
    pre_yy: float
    pre_xy: float  # Σx₀y₀
    cross_xx: float  # Σx·x₀
    cross_xy: float  # Σx·y₀
    cross_yx: float  # Σy·x₀
    cross_yy: float  # Σy·y₀

    def __add__(self, other: RatioCovariateStats) -> RatioCovariateStats:
        return RatioCovariateStats(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(self))
        )


@dataclass(frozen=True, slots=True)
class Estimate:
    """An arm already reduced to (n, mean, var), e.g. after CUPED adjustment."""

    n: int
    mean: float
    var: float
