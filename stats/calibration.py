"""Calibration simulations: false-positive rates, power and coverage of the tests.

Each check simulates replicate experiments as arrays of per-arm sufficient
statistics and runs the package's own test functions on them elementwise (the
arms' fields are numpy arrays; see :mod:`stats.aggregates`), so what is
validated is the code the app runs, not a copy. Used by ``tests/stats`` (with
fewer replicates) and ``bench/calibrate.py`` (which writes ``docs/calibration.md``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from stats.aggregates import NpsStats, ProportionStats, RatioStats, SampleStats
from stats.fixed import fixed_test
from stats.sequential import group_sequential_boundaries, sequential_test
from stats.srm import srm_log_bayes_factor, srm_p_values

ALPHA = 0.05
LOOKS = 28
DAILY_USERS_PER_ARM = 500
BASE_RATE = 0.10


@dataclass(frozen=True, slots=True)
class CalibrationCheck:
    """Outcome of one simulation check.

    Attributes:
        check: what was simulated.
        replicates: simulated experiments.
        observed: observed rate (false positives, power or coverage).
        target: the target, in words.
        lower: smallest acceptable rate (Monte-Carlo tolerance included).
        upper: largest acceptable rate.
        passed: lower ≤ observed ≤ upper.
    """

    check: str
    replicates: int
    observed: float
    target: str
    lower: float
    upper: float
    passed: bool


def mc_tolerance(
    rate: float, replicates: int, base: float = 0.0, k: float = 4.0
) -> float:
    """Tolerance for an observed rate: max(base, k Monte-Carlo standard errors).

    Args:
        rate: the rate expected under the target.
        replicates: simulated experiments.
        base: the tolerance asked for at full replicate counts.
        k: standard errors allowed.

    Returns:
        max(base, k · sqrt(rate (1 − rate) / replicates)).

    References:
        Morris, T. P., White, I. R. & Crowther, M. J. (2019). Using simulation
        studies to evaluate statistical methods. Stat. Med. 38(11), 2074-2102.
        DOI:10.1002/sim.8086, table 6 (Monte Carlo SE of a rate).
    """
    return max(base, k * math.sqrt(rate * (1 - rate) / replicates))  # MCSE of a rate


def _check(
    name: str, reps: int, observed: float, target: str, lower: float, upper: float
) -> CalibrationCheck:
    ok = bool(lower <= observed <= upper)
    return CalibrationCheck(name, reps, float(observed), target, lower, upper, ok)


def _daily_proportions(
    rng: np.random.Generator, reps: int, rate_c: float, rate_t: float
) -> tuple[ProportionStats, ProportionStats]:
    """Cumulative conversion arms, shape (reps, LOOKS)."""
    n = np.arange(1, LOOKS + 1) * DAILY_USERS_PER_ARM
    n = np.broadcast_to(n, (reps, LOOKS))
    c = rng.binomial(DAILY_USERS_PER_ARM, rate_c, (reps, LOOKS)).cumsum(axis=1)
    t = rng.binomial(DAILY_USERS_PER_ARM, rate_t, (reps, LOOKS)).cumsum(axis=1)
    return ProportionStats(n, c), ProportionStats(n, t)


def fixed_aa_final_look(reps: int, seed: int = 1) -> CalibrationCheck:
    """A/A false-positive rate of the fixed test analysed once, at the end.

    Args:
        reps: replicates.
        seed: random seed.

    Returns:
        The check: rate within 5 % ± max(1 pp, 4 MCSE).

    References:
        Kohavi, R., Tang, D. & Xu, Y. (2020). Trustworthy Online Controlled
        Experiments, ch. 19 (A/A tests).
    """
    rng = np.random.default_rng(seed)
    c, t = _daily_proportions(rng, reps, BASE_RATE, BASE_RATE)
    final_c = ProportionStats(c.n[:, -1], c.successes[:, -1])
    final_t = ProportionStats(t.n[:, -1], t.successes[:, -1])
    rate = np.mean(fixed_test(final_c, final_t, alpha=ALPHA).p_value < ALPHA)
    tol = mc_tolerance(ALPHA, reps, 0.01)
    return _check(
        "fixed test, A/A, one look at the end",
        reps,
        rate,
        "5 % ± 1 pp",
        ALPHA - tol,
        ALPHA + tol,
    )


def _any_look(p_values: np.ndarray) -> float:
    return float(np.mean(np.any(p_values < ALPHA, axis=1)))


def fixed_aa_peeking(reps: int, seed: int = 2) -> CalibrationCheck:
    """A/A false-positive rate of the fixed test checked at 28 daily looks.

    Args:
        reps: replicates.
        seed: random seed.

    Returns:
        The check: the rate should be far above 5 % (peeking inflates it).

    References:
        Johari, R., Koomen, P., Pekelis, L. & Walsh, D. (2017). Peeking at A/B
        tests. KDD 2017. DOI:10.1145/3097983.3097992, figure 1.
    """
    rng = np.random.default_rng(seed)
    c, t = _daily_proportions(rng, reps, BASE_RATE, BASE_RATE)
    rate = _any_look(np.asarray(fixed_test(c, t, alpha=ALPHA).p_value))
    return _check(
        "fixed test, A/A, 28 daily looks (peeking)", reps, rate, "> 10 %", 0.10, 1.0
    )


def mixture_aa_peeking(reps: int, seed: int = 3) -> CalibrationCheck:
    """A/A false-positive rate of the mixture sequential test under 28 daily looks.

    Args:
        reps: replicates.
        seed: random seed.

    Returns:
        The check: rate ≤ 5 % + 4 MCSE.

    References:
        Waudby-Smith et al. (2023), arXiv:2103.06476, theorem 2.5 (time-uniform
        coverage of the asymptotic confidence sequence).
    """
    rng = np.random.default_rng(seed)
    c, t = _daily_proportions(rng, reps, BASE_RATE, BASE_RATE)
    rate = _any_look(np.asarray(sequential_test(c, t, alpha=ALPHA).p_value))
    return _check(
        "mixture sequential, A/A, 28 daily looks",
        reps,
        rate,
        "≤ 5 %",
        0.0,
        ALPHA + mc_tolerance(ALPHA, reps),
    )


def _group_crossings(c: ProportionStats, t: ProportionStats) -> np.ndarray:
    """Whether each replicate crosses the O'Brien-Fleming-type boundary."""
    fractions = [(k + 1) / LOOKS for k in range(LOOKS)]  # planned = 28 days of users
    bounds = group_sequential_boundaries(fractions, ALPHA)
    res = fixed_test(c, t, alpha=ALPHA)
    z = np.asarray(res.abs_delta) / np.asarray(res.se)
    return np.any(np.abs(z) >= bounds, axis=1)


def group_aa_peeking(reps: int, seed: int = 4) -> CalibrationCheck:
    """A/A false-positive rate of the group-sequential test at 28 daily looks.

    Args:
        reps: replicates.
        seed: random seed.

    Returns:
        The check: rate ≤ 5 % + 4 MCSE.

    References:
        Lan, K. K. G. & DeMets, D. L. (1983). Biometrika 70(3), 659-663.
        DOI:10.1093/biomet/70.3.659.
    """
    rng = np.random.default_rng(seed)
    c, t = _daily_proportions(rng, reps, BASE_RATE, BASE_RATE)
    rate = float(np.mean(_group_crossings(c, t)))
    return _check(
        "group sequential (OBF spending), A/A, 28 daily looks",
        reps,
        rate,
        "≤ 5 %",
        0.0,
        ALPHA + mc_tolerance(ALPHA, reps),
    )


def _effect_for_power(power: float) -> float:
    """Treatment rate giving the fixed test ``power`` at the planned size."""
    n = LOOKS * DAILY_USERS_PER_ARM
    z = sps.norm.isf(ALPHA / 2) + sps.norm.ppf(power)
    rate_t = BASE_RATE
    for _ in range(50):  # fixed point of δ = z sqrt((p_c q_c + p_t q_t)/n)
        se = math.sqrt((BASE_RATE * (1 - BASE_RATE) + rate_t * (1 - rate_t)) / n)
        rate_t = BASE_RATE + z * se
    return rate_t


def group_power(reps: int, seed: int = 5) -> CalibrationCheck:
    """Power of the group-sequential test where the fixed test has 80 %.

    Args:
        reps: replicates.
        seed: random seed.

    Returns:
        The check: power ≥ 75 %.

    References:
        Jennison, C. & Turnbull, B. W. (2000), Group Sequential Methods, ch. 7
        (power of spending-function designs is close to the fixed design's).
    """
    rng = np.random.default_rng(seed)
    c, t = _daily_proportions(rng, reps, BASE_RATE, _effect_for_power(0.8))
    rate = float(np.mean(_group_crossings(c, t)))
    return _check(
        "group sequential power where the fixed test has 80 %",
        reps,
        rate,
        "≥ 75 %",
        0.75,
        1.0,
    )


def fixed_power(reps: int, seed: int = 5) -> CalibrationCheck:
    """Power of the fixed test at the planned size (the reference for group_power).

    Args:
        reps: replicates.
        seed: random seed.

    Returns:
        The check: power 80 % ± max(2 pp, 4 MCSE).

    References:
        Chow, Shao & Wang (2008), Sample Size Calculations in Clinical Research,
        ch. 3 (two-sample z test).
    """
    rng = np.random.default_rng(seed)
    c, t = _daily_proportions(rng, reps, BASE_RATE, _effect_for_power(0.8))
    p = np.asarray(fixed_test(c, t, alpha=ALPHA).p_value)[:, -1]
    tol = mc_tolerance(0.8, reps, 0.02)
    rate = float(np.mean(p < ALPHA))
    return _check(
        "fixed test power at the planned size", reps, rate, "80 %", 0.8 - tol, 0.8 + tol
    )


def _coverage(name: str, reps: int, covered: np.ndarray) -> CalibrationCheck:
    tol = mc_tolerance(1 - ALPHA, reps, 0.01)
    return _check(
        name,
        reps,
        float(np.mean(covered)),
        "95 % ± 1 pp",
        1 - ALPHA - tol,
        1 - ALPHA + tol,
    )


def _covers(ci: tuple[np.ndarray, np.ndarray], truth: float) -> np.ndarray:
    lower, upper = np.asarray(ci[0]), np.asarray(ci[1])
    return (lower <= truth) & (truth <= upper)


def coverage_conversion(reps: int, seed: int = 6) -> CalibrationCheck:
    """Coverage of the fixed abs_ci and rel_ci for a conversion rate.

    Args:
        reps: replicates.
        seed: random seed.

    Returns:
        The check on abs_ci and rel_ci together (the lower of the two coverages).

    References:
        Deng, Knoblich & Lu (2018), arXiv:1803.06336 (delta-method intervals).
    """
    rng = np.random.default_rng(seed)
    n, p_c, p_t = 5_000, 0.10, 0.11
    c = ProportionStats(np.full(reps, n), rng.binomial(n, p_c, reps))
    t = ProportionStats(np.full(reps, n), rng.binomial(n, p_t, reps))
    res = fixed_test(c, t, alpha=ALPHA)
    covered_abs = _covers(res.abs_ci, p_t - p_c)
    covered_rel = _covers(res.rel_ci, p_t / p_c - 1)
    worst = covered_abs if covered_abs.mean() < covered_rel.mean() else covered_rel
    return _coverage("95 % CI coverage, conversion (abs and rel)", reps, worst)


def _lognormal_revenue(
    rng: np.random.Generator, reps: int, n: int, rate: float
) -> SampleStats:
    """Per-user revenue Bernoulli(rate) × lognormal(3, 1), as sums per replicate."""
    buyers = rng.binomial(n, rate, reps)
    owner = np.repeat(np.arange(reps), buyers)
    values = rng.lognormal(3.0, 1.0, buyers.sum())
    total = np.bincount(owner, weights=values, minlength=reps)
    total_sq = np.bincount(owner, weights=values**2, minlength=reps)
    return SampleStats(np.full(reps, n), total, total_sq)


def coverage_revenue(reps: int, seed: int = 7) -> CalibrationCheck:
    """Coverage of the fixed abs_ci for heavy-tailed revenue per user.

    Args:
        reps: replicates.
        seed: random seed.

    Returns:
        The check: coverage 95 % ± 1 pp.

    References:
        Kohavi, R., Tang, D. & Xu, Y. (2020), ch. 17 (skewed metrics and the CLT).
    """
    rng = np.random.default_rng(seed)
    n, p_c, p_t = 5_000, 0.10, 0.105
    mean_value = math.exp(3.0 + 0.5)  # E[lognormal(μ, σ)] = exp(μ + σ²/2)
    c = _lognormal_revenue(rng, reps, n, p_c)
    t = _lognormal_revenue(rng, reps, n, p_t)
    res = fixed_test(c, t, alpha=ALPHA)
    truth = (p_t - p_c) * mean_value
    return _coverage(
        "95 % CI coverage, revenue (lognormal × Bernoulli)",
        reps,
        _covers(res.abs_ci, truth),
    )


def _contacts_per_order(
    rng: np.random.Generator, reps: int, n: int, per_order: float
) -> RatioStats:
    """Orders ~ Poisson(1.2), contacts ~ Poisson(0.1 + per_order · orders)."""
    sums = np.zeros((5, reps))
    chunk = max(1, 2_000_000 // n)
    for start in range(0, reps, chunk):
        size = min(chunk, reps - start)
        orders = rng.poisson(1.2, (size, n)).astype(float)
        contacts = rng.poisson(0.1 + per_order * orders).astype(float)
        block = slice(start, start + size)
        sums[0, block] = contacts.sum(axis=1)
        sums[1, block] = orders.sum(axis=1)
        sums[2, block] = (contacts**2).sum(axis=1)
        sums[3, block] = (orders**2).sum(axis=1)
        sums[4, block] = (contacts * orders).sum(axis=1)
    return RatioStats(np.full(reps, n), *sums)


def coverage_ratio(reps: int, seed: int = 8) -> CalibrationCheck:
    """Coverage of the fixed abs_ci for contacts per order (ratio of sums).

    Args:
        reps: replicates.
        seed: random seed.

    Returns:
        The check: coverage 95 % ± 1 pp.

    References:
        Deng, Knoblich & Lu (2018), arXiv:1803.06336 (ratio metrics).
    """
    rng = np.random.default_rng(seed)
    n, b_c, b_t = 1_000, 0.15, 0.12
    c = _contacts_per_order(rng, reps, n, b_c)
    t = _contacts_per_order(rng, reps, n, b_t)
    res = fixed_test(c, t, alpha=ALPHA)
    truth = (0.1 + b_t * 1.2) / 1.2 - (0.1 + b_c * 1.2) / 1.2  # E[C]/E[O]
    return _coverage(
        "95 % CI coverage, contacts per order (ratio of Poisson counts)",
        reps,
        _covers(res.abs_ci, truth),
    )


def coverage_nps(reps: int, seed: int = 9) -> CalibrationCheck:
    """Coverage of the fixed abs_ci for NPS (multinomial responders).

    Args:
        reps: replicates.
        seed: random seed.

    Returns:
        The check: coverage 95 % ± 1 pp.

    References:
        Reichheld, F. F. (2003). The one number you need to grow. Harvard Business
        Review 81(12) (the NPS definition).
    """
    rng = np.random.default_rng(seed)
    n, p_c, p_t = 1_500, (0.45, 0.30, 0.25), (0.48, 0.30, 0.22)
    c = rng.multinomial(n, p_c, reps)
    t = rng.multinomial(n, p_t, reps)
    res = fixed_test(
        NpsStats(c[:, 0], c[:, 1], c[:, 2]),
        NpsStats(t[:, 0], t[:, 1], t[:, 2]),
        alpha=ALPHA,
    )
    truth = 100 * ((p_t[0] - p_t[2]) - (p_c[0] - p_c[2]))
    return _coverage(
        "95 % CI coverage, NPS (multinomial)", reps, _covers(res.abs_ci, truth)
    )


SRM_WEIGHTS = (0.5, 0.25, 0.25)
SRM_DAILY_USERS = 1_000


def _srm_counts(rng: np.random.Generator, reps: int) -> np.ndarray:
    """Cumulative users per variant, shape (reps, LOOKS, variants)."""
    daily = rng.multinomial(SRM_DAILY_USERS, SRM_WEIGHTS, (reps, LOOKS))
    return daily.cumsum(axis=1)


def srm_chi2_final_look(reps: int, seed: int = 10) -> CalibrationCheck:
    """Level of the χ² SRM test at α = 0.05 on one look at the end.

    Args:
        reps: replicates.
        seed: random seed.

    Returns:
        The check: rate 5 % ± 1 pp.

    References:
        Fabijan, A. et al. (2019). Diagnosing Sample Ratio Mismatch in Online
        Controlled Experiments. KDD 2019. DOI:10.1145/3292500.3330722.
    """
    rng = np.random.default_rng(seed)
    counts = _srm_counts(rng, reps)[:, -1, :]
    rate = float(np.mean(srm_p_values(counts, SRM_WEIGHTS) < ALPHA))
    tol = mc_tolerance(ALPHA, reps, 0.01)
    return _check(
        "χ² SRM at α = 0.05, one look",
        reps,
        rate,
        "5 % ± 1 pp",
        ALPHA - tol,
        ALPHA + tol,
    )


def srm_chi2_daily(reps: int, seed: int = 11) -> CalibrationCheck:
    """χ² SRM at α = 0.05 re-checked daily: shows the inflation peeking causes.

    Args:
        reps: replicates.
        seed: random seed.

    Returns:
        The check: rate above 5 % (informational; why the sequential SRM exists).

    References:
        Lindon & Malek (2022), arXiv:2011.03567, section 1 (repeated χ² tests).
    """
    rng = np.random.default_rng(seed)
    counts = _srm_counts(rng, reps)
    rate = _any_look(srm_p_values(counts, SRM_WEIGHTS))
    return _check(
        "χ² SRM at α = 0.05, 28 daily re-checks (inflates, expected)",
        reps,
        rate,
        "> 5 % (peeking)",
        ALPHA,
        1.0,
    )


def srm_sequential_daily(
    reps: int, seed: int = 12, threshold: float = ALPHA
) -> CalibrationCheck:
    """Level of the sequential (Dirichlet-multinomial) SRM test, daily re-checks.

    Args:
        reps: replicates.
        seed: random seed.
        threshold: level of the test (0.05 for precision, 0.001 as used).

    Returns:
        The check: rate ≤ threshold + 4 MCSE.

    References:
        Lindon & Malek (2022), arXiv:2011.03567 (multinomial test).
    """
    rng = np.random.default_rng(seed)
    counts = _srm_counts(rng, reps)
    log_bf = srm_log_bayes_factor(counts, SRM_WEIGHTS, concentration=1_000.0)
    rate = float(np.mean(np.max(log_bf, axis=1) >= -math.log(threshold)))
    return _check(
        f"sequential SRM at {threshold:g}, 28 daily re-checks",
        reps,
        rate,
        f"≤ {100 * threshold:g} %",
        0.0,
        threshold + mc_tolerance(threshold, reps),
    )


def srm_sequential_daily_strict(reps: int, seed: int = 13) -> CalibrationCheck:
    """The sequential SRM test at its default threshold 0.001, daily re-checks.

    Args:
        reps: replicates.
        seed: random seed.

    Returns:
        The check: rate ≤ 0.1 % + 4 MCSE.

    References:
        Lindon & Malek (2022), arXiv:2011.03567 (multinomial test).
    """
    return srm_sequential_daily(reps, seed, threshold=0.001)


ALL_CHECKS: tuple[Callable[[int], CalibrationCheck], ...] = (
    fixed_aa_final_look,
    fixed_aa_peeking,
    mixture_aa_peeking,
    group_aa_peeking,
    fixed_power,
    group_power,
    coverage_conversion,
    coverage_revenue,
    coverage_ratio,
    coverage_nps,
    srm_chi2_final_look,
    srm_chi2_daily,
    srm_sequential_daily,
    srm_sequential_daily_strict,
)
