"""Time to an event under right censoring: Kaplan–Meier, RMST and the log-rank test.

Every function works on counts at distinct times (what the engine's summaries
hold): at each time ``t_i`` the number of events ``d_i`` and of censorings
``c_i``. A censoring at the same time as an event is taken to happen just after
it (the usual convention: the censored unit is still at risk at ``t_i``).

:class:`SurvivalStats` is one arm's restricted mean survival time (RMST) as
sufficient statistics for the tests of :mod:`cxlab.stats.fixed`,
:mod:`cxlab.stats.sequential` and :mod:`cxlab.stats.bayesian`: ``n`` units, ``mean`` the
RMST and ``var`` = n · Var(RMST), so that ``var / n`` is the estimator's
variance, as for every other arm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from cxlab.stats.delta import check_alpha, z_upper


@dataclass(frozen=True, slots=True)
class KaplanMeier:
    """The Kaplan–Meier estimate at each distinct time with an event or censoring.

    Attributes:
        time: the distinct times, ascending.
        at_risk: units at risk just before each time.
        events: events at each time.
        censored: censorings at each time.
        survival: S(t) just after each time.
        greenwood: Greenwood's sum Σ_{t_j ≤ t} d_j / (n_j (n_j − d_j)).
    """

    time: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    censored: np.ndarray
    survival: np.ndarray
    greenwood: np.ndarray

    @property
    def n(self) -> int:
        """Units at the start."""
        return int(self.at_risk[0]) if len(self.at_risk) else 0


def kaplan_meier(
    time: Sequence[float], events: Sequence[float], censored: Sequence[float]
) -> KaplanMeier:
    """The product-limit estimate of the survival function and Greenwood's sum.

    Args:
        time: distinct times (any order; zero-count times are dropped).
        events: events at each time.
        censored: censorings at each time.

    Returns:
        The estimate at the times with an event or a censoring.

    References:
        Kaplan, E. L. & Meier, P. (1958). Nonparametric estimation from incomplete
        observations. JASA 53(282), 457–481. DOI:10.1080/01621459.1958.10501452.
        Greenwood, M. (1926). The natural duration of cancer. Reports on Public
        Health and Medical Subjects 33, HMSO.
    """
    t = np.asarray(time, dtype=float)
    d = np.asarray(events, dtype=float)
    c = np.asarray(censored, dtype=float)
    keep = (d + c) > 0
    order = np.argsort(t[keep], kind="stable")
    t, d, c = t[keep][order], d[keep][order], c[keep][order]
    # n_i: every unit whose time is ≥ t_i is at risk at t_i.
    n = (d + c)[::-1].cumsum()[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        # Kaplan & Meier (1958): S(t) = Π_{t_i ≤ t} (1 − d_i / n_i).
        survival = np.cumprod(1.0 - d / n)
        # Greenwood (1926): Var S(t) = S(t)² Σ_{t_i ≤ t} d_i / (n_i (n_i − d_i)).
        terms = np.where(d > 0, d / (n * (n - d)), 0.0)
    return KaplanMeier(t, n, d, c, survival, np.cumsum(terms))


def survival_band(km: KaplanMeier, *, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise 1 − alpha band of S(t) on the log(−log) scale.

    Args:
        km: the estimate.
        alpha: two-sided level.

    Returns:
        (lower, upper) at ``km.time``; [1, 1] before any event, [0, 0] after S
        reaches 0.

    References:
        Kalbfleisch, J. D. & Prentice, R. L. (1980). The Statistical Analysis of
        Failure Time Data. Wiley, §1.3 (the log(−log) transformed interval).
    """
    check_alpha(alpha)
    s = km.survival
    z = z_upper(alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_s = np.log(s)
        # Var log(−log Ŝ) = Greenwood's sum / (log Ŝ)² (delta method).
        half = z * np.sqrt(km.greenwood) / np.abs(log_s)
        lower = np.power(s, np.exp(half))
        upper = np.power(s, np.exp(-half))
    inside = (s > 0) & (s < 1)
    lower = np.where(inside, lower, s)
    upper = np.where(inside, upper, s)
    return lower, upper


def restricted_mean(km: KaplanMeier, horizon: float) -> tuple[float, float]:
    """Restricted mean survival time up to ``horizon`` and its variance.

    μ(τ) = ∫₀^τ S(t) dt, the area under the Kaplan–Meier step function. Its
    variance is the Greenwood-type estimate

        Var μ̂(τ) = Σ_{t_i ≤ τ} A_i² d_i / (n_i (n_i − d_i)),  A_i = ∫_{t_i}^τ S(t) dt

    (a term with n_i = d_i has A_i = 0 and adds nothing).

    Args:
        km: the estimate.
        horizon: τ > 0.

    Returns:
        (μ̂(τ), Var μ̂(τ)); NaN for both without units.

    References:
        Royston, P. & Parmar, M. K. B. (2013). Restricted mean survival time: an
        alternative to the hazard ratio for the design and analysis of randomized
        trials with a time-to-event outcome. BMC Med Res Methodol 13, 152.
        DOI:10.1186/1471-2288-13-152.
        Klein, J. P. & Moeschberger, M. L. (2003). Survival Analysis, 2nd ed.
        Springer, §4.5, eq. 4.5.2 (the variance).
    """
    if km.n == 0 or not horizon > 0:
        return math.nan, math.nan
    hit = (km.events > 0) & (km.time <= horizon)
    t, s = km.time[hit], km.survival[hit]
    d, n = km.events[hit], km.at_risk[hit]
    # Steps of S: 1 on [0, t_1), S(t_i) on [t_i, t_{i+1}), the last up to τ.
    edges = np.concatenate([[0.0], t, [horizon]])
    levels = np.concatenate([[1.0], s])
    areas = levels * np.diff(edges)
    mean = float(areas.sum())  # Royston & Parmar (2013): μ(τ) = ∫₀^τ S(t) dt
    tail = areas[::-1].cumsum()[::-1][1:]  # A_i = ∫_{t_i}^τ S(t) dt
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(n > d, tail**2 * d / (n * (n - d)), 0.0)
    return mean, float(terms.sum())  # Klein & Moeschberger (2003), eq. 4.5.2


@dataclass(frozen=True, slots=True)
class SurvivalStats:
    """One arm's time to an event, as the RMST up to a horizon.

    Attributes:
        n: units with a start (at risk at time 0).
        mean: the restricted mean survival time μ̂(τ).
        var: n · Var μ̂(τ), so ``var / n`` is the estimator's variance.
        censored: units still open (censored before the horizon or at it
            without their event).
        horizon: τ.
        km: the Kaplan–Meier estimate.
    """

    n: int
    mean: float
    var: float
    censored: int
    horizon: float
    km: KaplanMeier


def survival_stats(
    time: Sequence[float],
    events: Sequence[float],
    censored: Sequence[float],
    *,
    horizon: float,
    still_open: int,
) -> SurvivalStats:
    """An arm's RMST statistics from its counts of events and censorings.

    Args:
        time: distinct times (hours), at most ``horizon``.
        events: events at each time.
        censored: censorings at each time.
        horizon: τ of the restricted mean.
        still_open: units censored because their event has not happened yet.

    Returns:
        The arm's :class:`SurvivalStats` (NaN mean and var without units).
    """
    km = kaplan_meier(time, events, censored)
    mean, var = restricted_mean(km, horizon)
    return SurvivalStats(km.n, mean, km.n * var, still_open, horizon, km)


def logrank_p_value(control: KaplanMeier, treatment: KaplanMeier) -> float:
    """Two-sided p-value of the log-rank test of equal hazards.

    At each distinct event time t_i of the pooled sample, with n_i at risk and
    d_i events of which n_Ti at risk in the treatment,

        E = Σ d_i n_Ti / n_i,
        V = Σ d_i (n_Ti / n_i)(1 − n_Ti / n_i)(n_i − d_i) / (n_i − 1),

    and (O_T − E)² / V is χ² with one degree of freedom.

    Args:
        control: the control arm's estimate.
        treatment: the treatment arm's estimate.

    Returns:
        The p-value; NaN without events or without variance.

    References:
        Mantel, N. (1966). Evaluation of survival data and two new rank order
        statistics arising in its consideration. Cancer Chemother Rep 50(3),
        163–170.
    """
    times = np.union1d(
        control.time[control.events > 0], treatment.time[treatment.events > 0]
    )
    if len(times) == 0:
        return math.nan
    n_c, d_c = _at(control, times)
    n_t, d_t = _at(treatment, times)
    n, d = n_c + n_t, d_c + d_t
    with np.errstate(divide="ignore", invalid="ignore"):
        share = n_t / n
        expected = float(np.sum(d * share))  # Mantel (1966): E = Σ d_i n_Ti / n_i
        ties = np.where(n > 1, (n - d) / (n - 1), 0.0)
        variance = float(np.sum(d * share * (1 - share) * ties))
    if not variance > 0:
        return math.nan
    chi2 = (float(d_t.sum()) - expected) ** 2 / variance
    return float(special.chdtrc(1, chi2))  # the χ² survival function


def _at(km: KaplanMeier, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Units at risk just before, and events at, each of ``times``."""
    if not len(km.time):
        return np.zeros(len(times)), np.zeros(len(times))
    position = np.searchsorted(km.time, times, side="left")
    total = np.concatenate([km.at_risk, [0.0]])
    at_risk = total[position]
    hit = (position < len(km.time)) & (
        km.time[np.minimum(position, len(km.time) - 1)] == times
    )
    events = np.where(hit, km.events[np.minimum(position, len(km.time) - 1)], 0.0)
    return at_risk, events
