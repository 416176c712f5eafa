"""Always-valid inference: mixture sequential test and group-sequential test.

Two methods, one result type (:class:`SequentialResult`):

* ``mixture`` (default): the normal-mixture confidence sequence of Waudby-Smith et
  al. (2023) with its dual always-valid p-value (a mixture SPRT). Valid under
  continuous monitoring; ``tuning`` N* is the total sample size at which the
  sequence is tightest.
* ``group``: a Lan-DeMets O'Brien-Fleming-type alpha-spending test against a
  planned total sample size, boundaries by recursive numerical integration.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import optimize, special

from stats.aggregates import ArmStats
from stats.delta import as_output, check_alpha, compare_arms
from stats.fixed import _interval

DEFAULT_TUNING = 5_000
SQRT_2PI = math.sqrt(2 * math.pi)


@dataclass(frozen=True, slots=True)
class SequentialResult:
    """Result of a sequential test; field names follow the JSON contract.

    Attributes:
        p_value: always-valid p-value (mixture) or repeated p-value (group);
            p_value < alpha exactly when ``abs_ci`` excludes 0.
        abs_ci: confidence sequence / repeated confidence interval of abs_delta.
        rel_ci: the same for rel_delta (delta method).
        method: ``"mixture"`` or ``"group"``.
        abs_delta: treatment − control at the current look.
        rel_delta: treatment / control − 1 at the current look.
        reason: why fields are NaN, or a caveat (group: planned size exceeded).
        information_fraction: group only: share of planned users observed (≤ 1).
        boundary_z: group only: |z| boundary at the current look.
        planned_size_exceeded: group only: more users than planned.
    """

    p_value: float
    abs_ci: tuple[float, float]
    rel_ci: tuple[float, float]
    method: str = "mixture"
    abs_delta: float = math.nan
    rel_delta: float = math.nan
    reason: str | None = None
    information_fraction: float | None = None
    boundary_z: float | None = None
    planned_size_exceeded: bool | None = None


def mixture_rho_squared(alpha: float, tuning: float) -> float:
    """Mixing variance ρ² that makes the confidence sequence tightest at N*.

    Args:
        alpha: significance level.
        tuning: N*, the total sample size at which the width is optimised.

    Returns:
        ρ² = (−2 ln α + ln(−2 ln α + 1)) / N*.

    Raises:
        ValueError: alpha outside (0, 1) or tuning not positive.

    References:
        Waudby-Smith, I., Arbour, D., Sinha, R., Kennedy, E. H. & Ramdas, A. (2023).
        Time-uniform central limit theory and asymptotic confidence sequences.
        arXiv:2103.06476, eq. 161.
    """
    check_alpha(alpha)
    if not tuning > 0:
        raise ValueError(f"tuning must be positive, not {tuning!r}")
    log_a = -2.0 * math.log(alpha)
    return (log_a + math.log(log_a + 1.0)) / tuning  # eq. 161


def mixture_multiplier(t: Any, *, alpha: float, tuning: float = DEFAULT_TUNING) -> Any:
    """Half-width of the normal-mixture confidence sequence in standard errors.

    Args:
        t: total units observed (n_c + n_t); number or array.
        alpha: significance level.
        tuning: N*.

    Returns:
        c(t) = sqrt((tρ² + 1)/(tρ²) · 2 ln(sqrt(tρ² + 1)/α)); the sequence is
        estimate ± c(t)·se. Always ≥ z_{1−α/2}.

    References:
        Waudby-Smith et al. (2023), arXiv:2103.06476, eq. 9 (half-width), with the
        standard error in place of σ̂/√t.
    """
    tr = np.asarray(t, dtype=float) * mixture_rho_squared(alpha, tuning)
    with np.errstate(divide="ignore", invalid="ignore"):
        # eq. 9: sqrt((tρ²+1)/(t²ρ²) · 2 ln(sqrt(tρ²+1)/α)) · σ̂ = c(t) · se
        c = np.sqrt((tr + 1.0) / tr * 2.0 * np.log(np.sqrt(tr + 1.0) / alpha))
    return as_output(np.where(tr > 0, c, np.nan))


def mixture_p_value(
    z: Any, t: Any, *, alpha: float, tuning: float = DEFAULT_TUNING
) -> Any:
    """Always-valid p-value of the normal mixture SPRT, min(1, 1/Λ).

    Args:
        z: z statistic abs_delta / se; number or array.
        t: total units observed (n_c + n_t).
        alpha: level the mixing variance is tuned for (as in the sequence).
        tuning: N*.

    Returns:
        p = min(1, 1/Λ), Λ = (1 + tρ²)^(−1/2) exp(tρ² z² / (2(1 + tρ²))).

    References:
        Waudby-Smith et al. (2023), arXiv:2103.06476, eq. 155.
    """
    tr = np.asarray(t, dtype=float) * mixture_rho_squared(alpha, tuning)
    z = np.asarray(z, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # eq. 155: log Λ = −½ log(1 + tρ²) + tρ² z² / (2(1 + tρ²))
        log_lr = -0.5 * np.log1p(tr) + tr * z**2 / (2.0 * (1.0 + tr))
        p = np.minimum(1.0, np.exp(-log_lr))
    return as_output(np.where(tr > 0, p, np.nan))


def sequential_test(
    control: ArmStats,
    treatment: ArmStats,
    *,
    alpha: float = 0.05,
    tuning: float = DEFAULT_TUNING,
) -> SequentialResult:
    """Normal-mixture confidence sequence and always-valid p-value (mixture SPRT).

    With t = n_c + n_t and the fixed test's unpooled se and delta-method rel_se:
    abs_ci = abs_delta ± c(t)·se, rel_ci = rel_delta ± c(t)·rel_se, and
    p = min(1, 1/Λ) with z = abs_delta/se; p < alpha exactly when abs_ci excludes
    0. Arms may hold numpy arrays (elementwise, ``reason`` None), as in
    :func:`stats.fixed.fixed_test`.

    Args:
        control: the control arm.
        treatment: the treatment arm.
        alpha: level; the sequence covers with probability ≥ 1 − alpha at all times.
        tuning: N*, the total sample size at which the sequence is tightest.

    Returns:
        A :class:`SequentialResult` with ``method="mixture"``.

    Raises:
        ValueError: alpha outside (0, 1) or tuning not positive.

    References:
        Waudby-Smith, I., Arbour, D., Sinha, R., Kennedy, E. H. & Ramdas, A. (2023).
        Time-uniform central limit theory and asymptotic confidence sequences.
        arXiv:2103.06476, eqs. 9 (half-width), 155 (p-value), 161 (ρ).
        Deng, Knoblich & Lu (2018), arXiv:1803.06336 (delta method, relative lift).
    """
    d = compare_arms(control, treatment)
    t = np.asarray(d.n_control) + np.asarray(d.n_treatment)
    c = np.asarray(mixture_multiplier(t, alpha=alpha, tuning=tuning))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.asarray(d.abs_delta) / np.asarray(d.se)
        p = np.where(
            np.isnan(z), np.nan, mixture_p_value(z, t, alpha=alpha, tuning=tuning)
        )
        abs_half = c * np.asarray(d.se)  # eq. 9: abs_delta ± c(t) se
        rel_half = c * np.asarray(d.rel_se)  # eq. 9 on the delta-method rel_se
    return SequentialResult(
        p_value=as_output(p),
        abs_ci=_interval(d.abs_delta, abs_half),
        rel_ci=_interval(d.rel_delta, rel_half),
        method="mixture",
        abs_delta=d.abs_delta,
        rel_delta=d.rel_delta,
        reason=d.reason or d.rel_reason,
    )


def running_sequential(results: Sequence[SequentialResult]) -> list[SequentialResult]:
    """Running minimum p-value and running intersection of intervals over looks.

    A confidence sequence covers at all looks simultaneously, so the intersection
    of its intervals is again a valid interval and the running minimum of the
    always-valid p-value is again always valid. Looks with a NaN p-value are
    skipped (the previous running result is carried). Should two intervals be
    disjoint (possible only when the sequence has already missed), the interval
    collapses to the current interval's end nearest the running one, which keeps
    ``p_value < alpha`` ⇔ ``abs_ci`` excludes 0.

    Args:
        results: one result per look, oldest first.

    Returns:
        One running result per look.

    References:
        Howard, S. R., Ramdas, A., McAuliffe, J. & Sekhon, J. (2021). Time-uniform,
        nonparametric, nonasymptotic confidence sequences. Annals of Statistics
        49(2). arXiv:1810.08240, section 2 (intersection of a confidence sequence).
    """
    out: list[SequentialResult] = []
    current: SequentialResult | None = None
    for res in results:
        if res.p_value is None or math.isnan(res.p_value):
            out.append(current if current is not None else res)
            continue
        if current is None:
            current = res
        else:
            abs_ci, abs_note = _intersect(current.abs_ci, res.abs_ci)
            rel_ci, rel_note = _intersect(current.rel_ci, res.rel_ci)
            current = replace(
                res,
                p_value=min(current.p_value, res.p_value),
                abs_ci=abs_ci,
                rel_ci=rel_ci,
                reason=res.reason or abs_note or rel_note,
            )
        out.append(current)
    return out


def _intersect(
    running: tuple[float, float], new: tuple[float, float]
) -> tuple[tuple[float, float], str | None]:
    lo_r, hi_r = running
    lo_n, hi_n = new
    if any(math.isnan(v) for v in new):
        return running, None
    if any(math.isnan(v) for v in running):
        return new, None
    lo, hi = max(lo_r, lo_n), min(hi_r, hi_n)
    if lo <= hi:
        return (lo, hi), None
    point = lo_n if lo_n > hi_r else hi_n  # end of `new` nearest `running`
    return (point, point), "confidence intervals of successive looks are disjoint"


# ---------------------------------------------------------------------------
# Group sequential
# ---------------------------------------------------------------------------


def obf_spending(tau: Any, alpha: float) -> Any:
    """Lan-DeMets O'Brien-Fleming-type alpha spending function.

    Args:
        tau: information fraction(s) in (0, 1].
        alpha: total two-sided level.

    Returns:
        α(τ) = 2 − 2 Φ(z_{1−α/2} / √τ).

    References:
        Lan, K. K. G. & DeMets, D. L. (1983). Discrete sequential boundaries for
        clinical trials. Biometrika 70(3), 659-663. DOI:10.1093/biomet/70.3.659,
        the O'Brien-Fleming-type function α₁*(t).
    """
    tau = np.asarray(tau, dtype=float)
    # Lan & DeMets (1983): α₁*(τ) = 2 − 2Φ(z_{α/2} / √τ)
    return as_output(2.0 * special.ndtr(_z_upper(alpha / 2) / -np.sqrt(tau)))


def group_sequential_boundaries(fractions: Sequence[float], alpha: float) -> np.ndarray:
    """Two-sided |z| boundaries for looks at the given information fractions.

    Each boundary b_k spends α(τ_k) − α(τ_{k−1}) of the O'Brien-Fleming-type
    function: P(|Z_j| < b_j for j < k, |Z_k| ≥ b_k) = α(τ_k) − α(τ_{k−1}) under
    H0, computed by recursive numerical integration of the score S_k = Z_k √τ_k
    (Brownian motion in information time) on a Simpson grid. Valid for any number
    and timing of looks. The last fraction equal to 1 spends all remaining alpha.

    Args:
        fractions: strictly increasing information fractions in (0, 1].
        alpha: total two-sided level.

    Returns:
        Array of boundaries (inf where a look spends no alpha).

    References:
        Armitage, P., McPherson, C. K. & Rowe, B. C. (1969). Repeated significance
        tests on accumulating data. JRSS A 132(2), 235-244. DOI:10.2307/2343787.
        Jennison, C. & Turnbull, B. W. (2000). Group Sequential Methods with
        Applications to Clinical Trials. Chapman & Hall/CRC, ch. 19 (numerical
        computations for group sequential tests).
    """
    return np.array(_boundaries(tuple(float(f) for f in fractions), float(alpha)))


@functools.lru_cache(maxsize=4096)
def _boundaries(fractions: tuple[float, ...], alpha: float) -> tuple[float, ...]:
    spent = np.asarray(obf_spending(np.array(fractions), alpha), dtype=float)
    if fractions and fractions[-1] >= 1.0:
        spent[-1] = alpha
    bounds: list[float] = []
    grid = weights = density = None  # density of S on the continuation region
    prev_tau, prev_spent = 0.0, 0.0
    for tau, cum in zip(fractions, spent, strict=True):
        target = cum - prev_spent
        if grid is None:
            # First look: P(|Z_1| ≥ b_1) = α(τ_1).
            b = float(_z_upper(target / 2)) if target > 0 else math.inf
            sd = math.sqrt(tau)
            grid, weights = _simpson_grid(b * sd if math.isfinite(b) else 12 * sd, sd)
            density = np.exp(-0.5 * (grid / sd) ** 2) / (sd * SQRT_2PI)
        else:
            sd = math.sqrt(tau - prev_tau)
            mass = weights * density
            exit_prob = functools.partial(
                _exit_probability, grid, mass, np.cumsum(mass), sd, math.sqrt(tau)
            )

            remaining = float(mass.sum())
            if target <= 0:
                b = math.inf
            elif target >= remaining:
                b = 0.0
            else:
                hi = float(_z_upper(target / 2))
                while exit_prob(hi) > target:
                    hi *= 1.5
                b = optimize.brentq(
                    lambda x, g=target, f=exit_prob: f(x) - g, 0.0, hi, xtol=1e-10
                )
            c = b * math.sqrt(tau) if math.isfinite(b) else 12 * math.sqrt(tau)
            new_grid, new_weights = _simpson_grid(c, sd)
            # f_k(s) = ∫ f_{k−1}(u) φ((s − u)/sd)/sd du over the continuation region
            density = _gaussian_smooth(new_grid, grid, mass, sd)
            grid, weights = new_grid, new_weights
        bounds.append(b)
        prev_tau, prev_spent = tau, float(cum)
    return tuple(bounds)


KERNEL_REACH_SD = 12.0  # φ beyond 12 sd is < 1e-31 of its peak: left out


def _exit_probability(
    grid: np.ndarray,
    mass: np.ndarray,
    cum_mass: np.ndarray,
    sd: float,
    root_tau: float,
    b: float,
) -> float:
    """P(|S_k| ≥ b·√τ_k, no earlier exit), from the masses of S_{k−1} on ``grid``.

    J&T (2000) ch. 19: ∫ f_{k−1}(u) P(|S_k| ≥ c | S_{k−1} = u) du, c = b√τ_k. A
    point farther than KERNEL_REACH_SD·sd inside ±c exits with probability < 1e-31
    and one as far outside exits surely, so only the two bands around ±c need the
    normal tails; the rest is a sum of masses (``cum_mass``, the running total).
    """
    c = b * root_tau
    reach = KERNEL_REACH_SD * sd
    i1, i2, i3, i4 = np.searchsorted(
        grid, [-c - reach, -c + reach, c - reach, c + reach]
    )
    if i2 >= i3:  # the bands meet: every point needs its tails
        i1, i2, i3, i4 = 0, len(grid), len(grid), len(grid)
    exits = 0.0
    for lo, hi in ((i1, i2), (i3, i4)):
        u = grid[lo:hi]
        tails = special.ndtr((u - c) / sd) + special.ndtr(-(c + u) / sd)
        exits += float(mass[lo:hi] @ tails)
    below = cum_mass[i1 - 1] if i1 > 0 else 0.0  # u < −c − reach: exits
    above = cum_mass[-1] - (cum_mass[i4 - 1] if i4 > 0 else 0.0)  # u ≥ c + reach
    return exits + float(below + above)


def _z_upper(p: Any) -> Any:
    """The standard normal quantile with upper tail p (scipy.stats.norm.isf, direct)."""
    return -special.ndtri(p)


def _gaussian_smooth(
    new_grid: np.ndarray, grid: np.ndarray, mass: np.ndarray, sd: float
) -> np.ndarray:
    """Σ_j mass_j φ((s − u_j)/sd)/sd at every s of ``new_grid`` (u = ``grid``).

    Only the old grid points within KERNEL_REACH_SD·sd of each s contribute (a band
    of the kernel matrix, not all of it): with daily looks the band is ~100 points
    of a 4001-point grid.
    """
    h = grid[1] - grid[0] if len(grid) > 1 else math.inf
    reach = math.ceil(KERNEL_REACH_SD * sd / h) if math.isfinite(h) else 0
    if 2 * reach + 1 >= len(grid):
        diff = (new_grid[:, None] - grid[None, :]) / sd
        return (np.exp(-0.5 * diff**2) / (sd * SQRT_2PI)) @ mass
    centre = np.rint((new_grid - grid[0]) / h).astype(np.int64)
    index = centre[:, None] + np.arange(-reach, reach + 1)[None, :]
    inside = (index >= 0) & (index < len(grid))
    index = np.clip(index, 0, len(grid) - 1)
    diff = (new_grid[:, None] - grid[index]) / sd
    kernel = np.where(inside, np.exp(-0.5 * diff**2), 0.0) / (sd * SQRT_2PI)
    return (kernel * mass[index]).sum(axis=1)


def _simpson_grid(half_width: float, kernel_sd: float) -> tuple[np.ndarray, np.ndarray]:
    """Odd Simpson grid on [−half_width, half_width], spacing ≤ kernel_sd / 4."""
    h_target = min(0.05, kernel_sd / 4)
    m = int(min(4001, max(101, math.ceil(2 * half_width / h_target) + 1)))
    m += 1 - m % 2
    grid = np.linspace(-half_width, half_width, m)
    h = grid[1] - grid[0] if m > 1 else 0.0
    w = np.ones(m)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return grid, w * h / 3.0


def _margin(z: np.ndarray, fractions: tuple[float, ...], alpha: float) -> float:
    """max_k (|z_k| − b_k(alpha)): ≥ 0 exactly when some look crosses."""
    bounds = np.array(_boundaries(fractions, alpha))
    return float(np.max(np.abs(z) - bounds))


def group_sequential_test(
    looks: Sequence[tuple[ArmStats, ArmStats]],
    *,
    alpha: float = 0.05,
    planned_users: float,
) -> SequentialResult:
    """Group-sequential test with O'Brien-Fleming-type alpha spending.

    Each look k (cumulative arms, oldest first, the last one being now) has
    information fraction τ_k = (n_c + n_t) / planned_users, capped at 1. Looks
    that add no information (or are degenerate) are skipped. Once the total
    exceeds the plan, the current look is analysed as the final one and spends
    all remaining alpha (``planned_size_exceeded``; say so in ``reason``).

    Reported intervals are repeated confidence intervals, estimate ± b_k·se at
    each look, intersected over the looks so far (the RCIs cover simultaneously,
    so their intersection does too). The p-value is the repeated p-value: the
    smallest α' at which some look so far crosses the α'-boundaries, found by
    bisection; bracketing at ``alpha`` makes p < alpha ⇔ a boundary was crossed
    ⇔ ``abs_ci`` excludes 0 exact.

    Args:
        looks: (control, treatment) cumulative arms at each look so far.
        alpha: total two-sided level.
        planned_users: planned total users of the two arms.

    Returns:
        A :class:`SequentialResult` with ``method="group"``.

    Raises:
        ValueError: alpha outside (0, 1) or planned_users not positive.

    References:
        Lan, K. K. G. & DeMets, D. L. (1983). Discrete sequential boundaries for
        clinical trials. Biometrika 70(3). DOI:10.1093/biomet/70.3.659.
        Jennison, C. & Turnbull, B. W. (2000). Group Sequential Methods with
        Applications to Clinical Trials, ch. 7.2 (spending functions), ch. 9
        (repeated confidence intervals and repeated p-values), ch. 19.
    """
    check_alpha(alpha)
    if not planned_users > 0:
        raise ValueError(f"planned_users must be positive, not {planned_users!r}")
    nan_ci = (math.nan, math.nan)
    if not looks:
        return SequentialResult(math.nan, nan_ci, nan_ci, "group", reason="no looks")
    deltas = [compare_arms(c, t) for c, t in looks]
    current = deltas[-1]
    total = current.n_control + current.n_treatment
    exceeded = bool(total > planned_users)
    usable: list[tuple[float, Any]] = []  # (τ, deltas)
    last_tau = 0.0
    for i, d in enumerate(deltas):
        if not math.isfinite(d.se) or not math.isfinite(d.abs_delta):
            continue
        tau = min(1.0, (d.n_control + d.n_treatment) / planned_users)
        is_last = i == len(deltas) - 1
        if tau >= 1.0 and not is_last:
            continue  # the final analysis (τ = 1) is the current look
        if tau <= last_tau + 1e-9:
            if is_last and usable:
                usable[-1] = (usable[-1][0], d)  # same information: use newest data
            continue
        usable.append((tau, d))
        last_tau = tau
    base = {
        "method": "group",
        "abs_delta": current.abs_delta,
        "rel_delta": current.rel_delta,
        "information_fraction": min(1.0, float(total) / planned_users),
        "planned_size_exceeded": exceeded,
    }
    if not usable or usable[-1][1] is not current:
        reason = current.reason or "no look with usable information"
        return SequentialResult(math.nan, nan_ci, nan_ci, reason=reason, **base)
    fractions = tuple(tau for tau, _ in usable)
    z = np.array([d.abs_delta / d.se for _, d in usable])
    bounds = group_sequential_boundaries(fractions, alpha)
    abs_ci: tuple[float, float] = (-math.inf, math.inf)
    rel_ci: tuple[float, float] = (-math.inf, math.inf)
    note = None
    for b, (_, d) in zip(bounds, usable, strict=True):
        # Repeated CI (J&T 2000, ch. 9): estimate ± b_k se
        abs_ci, n1 = _intersect(abs_ci, _interval(d.abs_delta, b * d.se))
        rel_ci, n2 = _intersect(rel_ci, _interval(d.rel_delta, b * d.rel_se))
        note = note or n1 or n2
    abs_ci = tuple(float(v) if math.isfinite(v) else math.nan for v in abs_ci)
    rel_ci = tuple(float(v) if math.isfinite(v) else math.nan for v in rel_ci)
    p_value = _repeated_p_value(z, fractions, alpha)
    reason = current.reason or current.rel_reason
    if exceeded:
        reason = (
            "planned size exceeded: the current look is analysed as the final one "
            "and spends all remaining alpha"
        )
    return SequentialResult(
        p_value=p_value,
        abs_ci=abs_ci,
        rel_ci=rel_ci,
        reason=reason or note,
        boundary_z=float(bounds[-1]),
        **base,
    )


def _repeated_p_value(
    z: np.ndarray, fractions: tuple[float, ...], alpha: float
) -> float:
    """Smallest α' whose boundaries are crossed at some look (root in log α').

    The boundaries fall as α' grows, so max_k(|z_k| − b_k(α')) increases in α'
    and its root is the repeated p-value. The root is bracketed on the side of
    ``alpha`` that the crossing at ``alpha`` decides, so p < alpha ⇔ crossed.
    """
    floor, ceiling = 1e-12, 1.0 - 1e-9
    if _margin(z, fractions, alpha) >= 0:
        if _margin(z, fractions, floor) >= 0:
            return floor
        lo, hi = math.log(floor), math.log(alpha)
    else:
        if _margin(z, fractions, ceiling) < 0:
            return 1.0
        lo, hi = math.log(alpha), math.log(ceiling)
    root = optimize.brentq(
        lambda x: _margin(z, fractions, math.exp(x)), lo, hi, xtol=1e-7
    )
    p = math.exp(root)
    # Keep the exact duality despite the root's tolerance.
    return (
        min(p, math.nextafter(alpha, 0.0)) if hi <= math.log(alpha) else max(p, alpha)
    )
