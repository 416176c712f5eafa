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
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy import special

from cxlab.stats.aggregates import ArmStats
from cxlab.stats.delta import (
    Deltas,
    agreeing_rel_ci,
    as_output,
    check_alpha,
    compare_arms,
    z_upper,
)
from cxlab.stats.fixed import _interval

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


def mixture_multiplier(
    t: Any,
    *,
    alpha: float,
    tuning: float = DEFAULT_TUNING,
    tuned_alpha: float | None = None,
) -> Any:
    """Half-width of the normal-mixture confidence sequence in standard errors.

    Args:
        t: total units observed (n_c + n_t); number or array.
        alpha: the sequence's level: it covers with probability ≥ 1 − alpha.
        tuning: N*.
        tuned_alpha: the level the mixing variance ρ² is tuned for (default
            ``alpha``). Keeping ρ² fixed while ``alpha`` changes keeps the sequence
            dual to the p-value of :func:`mixture_p_value` at ``tuned_alpha``: the
            sequence at level a excludes 0 exactly when that p-value is below a.

    Returns:
        c(t) = sqrt((tρ² + 1)/(tρ²) · 2 ln(sqrt(tρ² + 1)/α)); the sequence is
        estimate ± c(t)·se. Always ≥ z_{1−α/2}.

    References:
        Waudby-Smith et al. (2023), arXiv:2103.06476, eq. 9 (half-width), with the
        standard error in place of σ̂/√t.
    """
    rho2 = mixture_rho_squared(alpha if tuned_alpha is None else tuned_alpha, tuning)
    tr = np.asarray(t, dtype=float) * rho2
    check_alpha(alpha)
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
    tuned_alpha: float | None = None,
) -> SequentialResult:
    """Normal-mixture confidence sequence and always-valid p-value (mixture SPRT).

    With t = n_c + n_t and the fixed test's unpooled se and delta-method rel_se:
    abs_ci = abs_delta ± c(t)·se, rel_ci = rel_delta ± c(t)·rel_se, and
    p = min(1, 1/Λ) with z = abs_delta/se; p < alpha exactly when abs_ci excludes
    0; rel_ci is made to agree with abs_ci about 0
    (:func:`cxlab.stats.delta.agreeing_rel_ci`). Arms may hold numpy arrays
    (elementwise, ``reason`` None), as in :func:`cxlab.stats.fixed.fixed_test`.

    This is the sequence at the current look. It covers the current cumulative
    effect at every look simultaneously, also when that effect drifts over time;
    a running intersection of the looks' intervals would not (it is valid only
    for an effect that stays fixed, and collapses when the effect drifts).

    Args:
        control: the control arm.
        treatment: the treatment arm.
        alpha: level; the sequence covers with probability ≥ 1 − alpha at all times.
        tuning: N*, the total sample size at which the sequence is tightest.
        tuned_alpha: the level the mixing variance is tuned for (default
            ``alpha``): a corrected, smaller ``alpha`` keeps the p-value and the
            sequence's shape of the experiment's own level.

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
    tuned = alpha if tuned_alpha is None else tuned_alpha
    c = np.asarray(mixture_multiplier(t, alpha=alpha, tuning=tuning, tuned_alpha=tuned))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.asarray(d.abs_delta) / np.asarray(d.se)
        p = np.where(
            np.isnan(z), np.nan, mixture_p_value(z, t, alpha=tuned, tuning=tuning)
        )
        abs_half = c * np.asarray(d.se)  # eq. 9: abs_delta ± c(t) se
        rel_half = c * np.asarray(d.rel_se)  # eq. 9 on the delta-method rel_se
    abs_ci = _interval(d.abs_delta, abs_half)
    return SequentialResult(
        p_value=as_output(p),
        abs_ci=abs_ci,
        rel_ci=agreeing_rel_ci(abs_ci, _interval(d.rel_delta, rel_half), control.mean),
        method="mixture",
        abs_delta=d.abs_delta,
        rel_delta=d.rel_delta,
        reason=d.reason or d.rel_reason,
    )


def sequential_tests(
    looks: Sequence[tuple[ArmStats, ArmStats]],
    *,
    alpha: float = 0.05,
    tuning: float = DEFAULT_TUNING,
    tuned_alpha: float | None = None,
) -> list[SequentialResult]:
    """:func:`sequential_test` at every look, in one vectorised call.

    The arms of all looks are stacked into arrays (one arm type per side). A look
    with an undefined value is tested again on its own, which names the reason;
    every other look's result is the scalar one's (reason None).

    Args:
        looks: (control, treatment) cumulative arms per look.
        alpha: level, as in :func:`sequential_test`.
        tuning: N*, as in :func:`sequential_test`.
        tuned_alpha: as in :func:`sequential_test`.

    Returns:
        One result per look, in order.
    """
    if not looks:
        return []
    kw = {"alpha": alpha, "tuning": tuning, "tuned_alpha": tuned_alpha}
    controls, treatments = [c for c, _ in looks], [t for _, t in looks]
    if len({type(a) for a in controls}) > 1 or len({type(a) for a in treatments}) > 1:
        return [sequential_test(c, t, **kw) for c, t in looks]
    res = sequential_test(_stacked(controls), _stacked(treatments), **kw)
    columns = np.array(
        [res.p_value, *res.abs_ci, *res.rel_ci, res.abs_delta, res.rel_delta],
        dtype=float,
    ).reshape(7, len(looks))
    out = []
    for (control, treatment), (p, a_lo, a_hi, r_lo, r_hi, d_abs, d_rel) in zip(
        looks, columns.T.tolist(), strict=True
    ):
        if not all(map(math.isfinite, (p, a_lo, a_hi, r_lo, r_hi, d_abs, d_rel))):
            out.append(sequential_test(control, treatment, **kw))
            continue
        out.append(
            SequentialResult(p, (a_lo, a_hi), (r_lo, r_hi), "mixture", d_abs, d_rel)
        )
    return out


def _stacked(arms: Sequence[ArmStats]) -> ArmStats:
    """Arms of one type as one arm of arrays (each field stacked over the arms)."""
    names = [f.name for f in fields(arms[0])]
    return type(arms[0])(*(np.array([getattr(a, n) for a in arms]) for n in names))


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
    return as_output(2.0 * special.ndtr(z_upper(alpha / 2) / -np.sqrt(tau)))


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
    if fractions and fractions[-1] >= 1.0:  # the final look spends all that is left
        return _advance(_look_state(fractions[:-1], alpha), fractions[-1], alpha).bounds
    return _look_state(fractions, alpha).bounds


@dataclass(frozen=True, slots=True)
class _Recursion:
    """The recursion after its latest look k (J&T 2000, ch. 19).

    Attributes:
        bounds: b_1, ..., b_k.
        tau: τ_k.
        spent: α(τ_k).
        grid: Simpson grid on the continuation region [−b_k√τ_k, b_k√τ_k].
        mass: Simpson weight × density of S_k (no exit so far) at each grid point.
    """

    bounds: tuple[float, ...]
    tau: float
    spent: float
    grid: np.ndarray | None = None
    mass: np.ndarray | None = None


# The recursion after the last look of recent (fractions, alpha) pairs, oldest
# first. The boundary of look j depends on fractions[:j] only, so the next day's
# looks extend the state of the looks before them instead of starting over. A
# state is a pure function of its key, so the cache changes no result (and threads
# sharing it at worst compute a state twice).
_STATE_CACHE_SIZE = 1024
_states: OrderedDict[tuple[tuple[float, ...], float], _Recursion] = OrderedDict()


def _look_state(fractions: tuple[float, ...], alpha: float) -> _Recursion:
    """The recursion after all ``fractions``, each spending α(τ).

    Starts from the longest prefix of ``fractions`` whose state is cached.
    """
    state, done = _Recursion((), 0.0, 0.0), 0
    for j in range(len(fractions), 0, -1):
        hit = _states.get((fractions[:j], alpha))
        if hit is not None:
            state, done = hit, j
            break
    if done == len(fractions):
        return state
    spent = np.atleast_1d(obf_spending(np.array(fractions[done:]), alpha))
    for tau, cum in zip(fractions[done:], spent, strict=True):
        state = _advance(state, tau, float(cum))
    _states[fractions, alpha] = state
    while len(_states) > _STATE_CACHE_SIZE:
        _states.popitem(last=False)
    return state


def _advance(state: _Recursion, tau: float, cum: float) -> _Recursion:
    """The recursion one look on, spending ``cum`` − α(τ_{k−1}) at τ_k = ``tau``.

    J&T (2000) ch. 19: b_k solves P(|S_j| < b_j√τ_j for j < k, |S_k| ≥ b_k√τ_k)
    = α(τ_k) − α(τ_{k−1}), and the density of S_k on the new continuation region
    is f_k(s) = ∫ f_{k−1}(u) φ((s − u)/sd)/sd du, sd = √(τ_k − τ_{k−1}).
    """
    target = cum - state.spent
    if state.mass is None:
        # First look: P(|Z_1| ≥ b_1) = α(τ_1).
        b = float(z_upper(target / 2)) if target > 0 else math.inf
        sd = math.sqrt(tau)
        grid, weights = _simpson_grid(b * sd if math.isfinite(b) else 12 * sd, sd)
        density = np.exp(-0.5 * (grid / sd) ** 2) / (sd * SQRT_2PI)
    else:
        sd = math.sqrt(tau - state.tau)
        b = _next_boundary(state, sd, math.sqrt(tau), target)
        c = b * math.sqrt(tau) if math.isfinite(b) else 12 * math.sqrt(tau)
        grid, weights = _simpson_grid(c, sd)
        density = _gaussian_smooth(grid, state.grid, state.mass, sd)
    return _Recursion((*state.bounds, b), tau, cum, grid, weights * density)


KERNEL_REACH_SD = 12.0  # φ beyond 12 sd is < 1e-31 of its peak: left out
BOUNDARY_XTOL = 1e-13  # on x = c/sd, so on b = x·sd/√τ_k at most the same


def _next_boundary(
    state: _Recursion, sd: float, root_tau: float, target: float
) -> float:
    """b_k whose exit probability after ``state`` is ``target`` (sd = kernel sd).

    Solved in x = c/sd by Newton's method from the previous boundary, or from
    z_{1−target/2}√τ_k (where the exit probability is at most ``target``) if that
    is lower. Where the exit probability jumps across the target (tails
    underflowing at the edge of the grid) there is no smooth root, and Brent's
    method on [0, z_{1−target/2}] (widened if need be) finds the jump as before.
    """
    if target <= 0:
        return math.inf
    if target >= float(state.mass.sum()):  # all the remaining mass
        return 0.0
    v, cum_mass = state.grid / sd, np.cumsum(state.mass)
    start = float(z_upper(target / 2)) * root_tau / sd
    previous = state.bounds[-1] * math.sqrt(state.tau) / sd
    x = _newton_exit_root(
        v, state.mass, cum_mass, previous if 0 < previous < start else start, target / 2
    )
    if x is not None:
        return x * sd / root_tau

    def excess(b: float) -> float:
        x = b * root_tau / sd
        return 2 * _upper_exit(v, state.mass, cum_mass, x, target / 2)[0] - target

    from scipy import optimize  # 0.5 s to import; only this fallback needs it

    hi = float(z_upper(target / 2))
    while excess(hi) > 0:
        hi *= 1.5
    return optimize.brentq(excess, 0.0, hi, xtol=1e-10)


def _newton_exit_root(
    v: np.ndarray, mass: np.ndarray, cum_mass: np.ndarray, start: float, goal: float
) -> float | None:
    """Root x of log E(x) = log ``goal`` (E from :func:`_upper_exit`), or None.

    Newton's method in log space (log E is close to linear in x), safeguarded by
    bisection of the bracket of the points evaluated so far (rtsafe: Press, W. H.
    et al. (2007). Numerical Recipes, 3rd ed., section 9.4). It stops when a step
    is below BOUNDARY_XTOL or, converging quadratically, leaves an error below it
    (≈ step³ / previous step²). None when E jumps across ``goal``: no smooth root.
    """
    log_goal = math.log(goal)
    lo, hi = 0.0, math.inf  # E(lo) > goal ≥ E(hi)
    x, last, newton_before = start, math.inf, math.nan
    for _ in range(200):
        e, slope = _upper_exit(v, mass, cum_mass, x, goal)
        lo, hi = (x, hi) if e > goal else (lo, x)
        resid = math.log(e) - log_goal if e > 0 else -math.inf
        step = resid * e / slope if slope > 0 else math.nan  # −resid / (log E)'
        newton = lo <= x + step <= hi and abs(step) <= 0.5 * last
        if not newton:
            step = (0.5 * (lo + hi) if math.isfinite(hi) else 2 * max(x, 1.0)) - x
        last = abs(step)
        smooth = abs(resid) < 1e-6
        if smooth and newton and last**3 < BOUNDARY_XTOL * newton_before**2:
            return x + step
        if last < BOUNDARY_XTOL or hi - lo < BOUNDARY_XTOL:
            return x + step if smooth else None
        newton_before = last if newton else math.nan
        x += step
    return None


def _upper_exit(
    v: np.ndarray, mass: np.ndarray, cum_mass: np.ndarray, x: float, goal: float
) -> tuple[float, float]:
    """E(x) = ½ P(|S_k| ≥ c, no earlier exit) at c = x·sd, and −dE/dx.

    J&T (2000) ch. 19 in units of the kernel sd (v = grid/sd): the grid and masses
    of S_{k−1} are symmetric, so the two tails are mirror images and E(x) =
    Σ_j mass_j (Φ(v_j − x) + Φ(−v_j − x)) / 2 = Σ_j mass_j Φ(v_j − x). A point
    farther than KERNEL_REACH_SD below ±x exits there with probability < 1e-31 and
    one as far above exits surely, so only the bands around ±x need the normal
    tails, the upper band's lower tail (< Φ(12 − 2x)) only when not negligible
    next to ``goal``; the rest is a sum of masses (``cum_mass``, the running total).
    """
    m = len(v)
    lo, hi = 0, m
    if x > KERNEL_REACH_SD:  # else the bands around ±x meet: every point's tail
        v0, dv = float(v[0]), float(v[1] - v[0])
        lo = min(m, max(0, math.ceil((x - KERNEL_REACH_SD - v0) / dv)))
        hi = min(m, max(0, math.ceil((x + KERNEL_REACH_SD - v0) / dv)))
    t = v[lo:hi] - x
    band = mass[lo:hi]
    above = float(cum_mass[-1] - (cum_mass[hi - 1] if hi > 0 else 0.0))
    exits = float(band @ special.ndtr(t)) + above
    slope = float(band @ np.exp(-0.5 * t * t))
    if lo > 0 and math.erfc((2 * x - KERNEL_REACH_SD) / math.sqrt(2)) > 1e-18 * goal:
        t = -x - v[lo:hi]  # the lower tail of the points near +x
        exits += float(band @ special.ndtr(t))
        slope += float(band @ np.exp(-0.5 * t * t))
    return exits, slope / SQRT_2PI


def _gaussian_smooth(
    new_grid: np.ndarray, grid: np.ndarray, mass: np.ndarray, sd: float
) -> np.ndarray:
    """Σ_j mass_j φ((s − u_j)/sd)/sd at every s of ``new_grid`` (u = ``grid``).

    Only the old grid points within KERNEL_REACH_SD·sd of each s contribute (a band
    of the kernel matrix, not all of it): with daily looks the band is ~100 points
    of a 4001-point grid. On the uniform grid the band's distances s − u_j are the
    distance to the nearest point minus multiples of the spacing. Grids and masses
    are symmetric about 0, so the result is computed for s ≥ 0 and mirrored.
    """
    upper = new_grid[(len(new_grid) - 1) // 2 :]
    h = float(grid[1] - grid[0]) if len(grid) > 1 else 0.0
    reach = math.ceil(KERNEL_REACH_SD * sd / h) if h > 0 else len(grid)
    scale = 1.0 / (sd * math.sqrt(2.0))  # φ(d/sd) ∝ exp(−(d·scale)²)
    if 2 * reach + 1 >= len(grid):
        kernel = np.subtract.outer(upper * scale, grid * scale)
        weights = mass
    else:
        centre = np.rint((upper - grid[0]) / h).astype(np.int64)
        offset = upper - (grid[0] + centre * h)
        kernel = np.subtract.outer(offset * scale, _band(reach) * (h * scale))
        # mass[centre + l] for l = −reach..reach, zero off the grid
        pad = reach + max(0, int(centre[-1]) - len(grid) + 1)
        padded = np.zeros(len(grid) + 2 * pad)
        padded[pad : pad + len(grid)] = mass
        stride = padded.strides[0]  # row i of windows: padded[i : i + 2 reach + 1]
        windows = np.lib.stride_tricks.as_strided(
            padded,
            (len(padded) - 2 * reach, 2 * reach + 1),
            (stride, stride),
            writeable=False,
        )
        weights = windows[centre + (pad - reach)]
    np.square(kernel, out=kernel)
    np.negative(kernel, out=kernel)
    np.exp(kernel, out=kernel)
    density = np.vecdot(kernel, weights) / (sd * SQRT_2PI)
    return np.concatenate((density[:0:-1], density))


@functools.lru_cache(maxsize=64)
def _band(reach: int) -> np.ndarray:
    """Offsets −reach, ..., reach as floats (read-only)."""
    out = np.arange(-reach, reach + 1, dtype=float)
    out.flags.writeable = False
    return out


def _simpson_grid(half_width: float, kernel_sd: float) -> tuple[np.ndarray, np.ndarray]:
    """Odd Simpson grid on [−half_width, half_width], spacing ≤ kernel_sd / 4.

    The points are exact multiples of the spacing, so the grid is symmetric.
    """
    h_target = min(0.05, kernel_sd / 4)
    m = int(min(4001, max(101, math.ceil(2 * half_width / h_target) + 1)))
    m += 1 - m % 2
    h = 2 * half_width / (m - 1)
    index, pattern = _simpson_pattern(m)
    return index * h, pattern * h / 3.0


@functools.lru_cache(maxsize=256)
def _simpson_pattern(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Point indices −(m−1)/2, ..., (m−1)/2 and Simpson's 1, 4, 2, ..., 4, 1."""
    index = np.arange(m, dtype=float) - (m - 1) // 2
    w = np.ones(m)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    index.flags.writeable = w.flags.writeable = False
    return index, w


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

    The reported interval is the current look's repeated confidence interval,
    estimate ± b_K·se (the RCIs of all looks cover simultaneously, so the current
    one is valid whenever it is read, also when the effect drifts between looks;
    an intersection over looks would be valid only for a fixed effect). The
    p-value is the current look's repeated p-value: the smallest α' at which the
    current look crosses its α'-boundary, found by a safeguarded secant search;
    bracketing at ``alpha`` makes p < alpha ⇔ the current look crosses ⇔
    ``abs_ci`` excludes 0, exactly.

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
    deltas = [_look_deltas(c, t) for c, t in looks]
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
    # Only the current look can cross: earlier looks enter the boundaries alone.
    z = np.zeros(len(usable))
    z[-1] = current.abs_delta / current.se
    bound = float(group_sequential_boundaries(fractions, alpha)[-1])
    # Repeated CI at the current look (J&T 2000, ch. 9): estimate ± b_K se
    abs_ci = _interval(current.abs_delta, bound * current.se)
    rel_ci = agreeing_rel_ci(
        abs_ci,
        _interval(current.rel_delta, bound * current.rel_se),
        looks[-1][0].mean,
    )
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
        reason=reason,
        boundary_z=bound,
        **base,
    )


def _look_deltas(control: ArmStats, treatment: ArmStats) -> Deltas:
    """compare_arms for one look, remembered: a daily history re-reads its looks."""
    try:
        return _remembered_deltas(control, treatment)
    except TypeError:  # arms holding numpy arrays are not hashable
        return compare_arms(control, treatment)


_remembered_deltas = functools.lru_cache(maxsize=4096)(compare_arms)


def _repeated_p_value(
    z: np.ndarray, fractions: tuple[float, ...], alpha: float
) -> float:
    """Smallest α' whose boundaries are crossed at some look (root in log α').

    Looks with z = 0 never cross: passing only the current look's z gives the
    current look's repeated p-value.

    The boundaries fall as α' grows, so max_k(|z_k| − b_k(α')) increases in α'
    and its root is the repeated p-value. The root is bracketed on the side of
    ``alpha`` that the crossing at ``alpha`` decides, so p < alpha ⇔ crossed.
    """
    floor, ceiling = 1e-12, 1.0 - 1e-9
    crossed = _margin(z, fractions, alpha) >= 0
    if crossed:
        if _margin(z, fractions, floor) >= 0:
            return floor
        lo, hi = math.log(floor), math.log(alpha)
    else:
        if _margin(z, fractions, ceiling) < 0:
            return 1.0
        lo, hi = math.log(alpha), math.log(ceiling)
    p = math.exp(_crossing_root(np.abs(z), fractions, alpha, lo, hi))
    # Keep the exact duality despite the root's tolerance.
    return min(p, math.nextafter(alpha, 0.0)) if crossed else max(p, alpha)


P_VALUE_XTOL = 1e-7  # on log α'
W_LEVEL = 1 / 64  # the first iterates are rounded to multiples of this in w
ROUNDED_ITERATES = 2


def _crossing_root(
    abs_z: np.ndarray, fractions: tuple[float, ...], alpha: float, lo: float, hi: float
) -> float:
    """The log α' in [lo, hi] at which the first boundary is just crossed.

    The secant method (Press, W. H. et al. (2007). Numerical Recipes, 3rd ed.,
    section 9.2) on each look's boundary as a function of w = z_{1−α'/2}, nearly
    linear for O'Brien-Fleming-type boundaries (b_1 ∝ w exactly): the next iterate
    is the largest w at which some look's secant line reaches |z_k|, the first one
    from the boundaries at ``alpha`` and b ∝ w. The first ROUNDED_ITERATES iterates
    are rounded to multiples of W_LEVEL, so that nearby roots (of a daily history)
    share those boundaries. Bisection of the bracket (margin < 0 at lo, ≥ 0 at hi)
    takes over when an iterate leaves it or the steps stop halving.
    """
    w_old, b_old = 0.0, None
    w_new, b_new = float(z_upper(alpha / 2)), np.array(_boundaries(fractions, alpha))
    x, last = math.log(alpha), math.inf
    for i in range(200):
        w = _secant_crossing(abs_z, w_old, b_old, w_new, b_new)
        x_next = _log_level(w)
        if abs(x_next - x) < P_VALUE_XTOL:  # converged (NaN if no look rises)
            return min(max(x_next, lo), hi)
        if i < ROUNDED_ITERATES and math.isfinite(w):
            rounded = _log_level(round(w / W_LEVEL) * W_LEVEL)
            x_next = rounded if lo < rounded < hi and rounded != x else x_next
        if not (lo < x_next < hi and abs(x_next - x) <= 0.5 * last):
            x_next = 0.5 * (lo + hi)
        if hi - lo < P_VALUE_XTOL:
            return x_next
        last, x = abs(x_next - x), x_next
        level = math.exp(x)
        w_old, b_old = w_new, b_new
        w_new = float(z_upper(level / 2))
        b_new = np.array(_boundaries(fractions, level))
        lo, hi = (lo, x) if np.max(abs_z - b_new) >= 0 else (x, hi)
    return 0.5 * (lo + hi)


def _secant_crossing(
    abs_z: np.ndarray,
    w_old: float,
    b_old: np.ndarray | None,
    w_new: float,
    b_new: np.ndarray,
) -> float:
    """Largest w at which some look's secant line reaches |z_k|.

    The line of look k runs through (w_old, b_old[k]) and (w_new, b_new[k]), or
    through the origin when b_old is None (b ∝ w); NaN if no look's line rises.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = b_new / w_new if b_old is None else (b_new - b_old) / (w_new - w_old)
        w = w_new + (abs_z - b_new) / slope
    ok = np.isfinite(w) & np.isfinite(slope) & (slope > 0)
    return float(np.max(w[ok])) if ok.any() else math.nan


def _log_level(w: float) -> float:
    """The log α' of w = z_{1−α'/2}: log 2Φ(−w), without underflow."""
    return math.log(2.0) + float(special.log_ndtr(-w))
