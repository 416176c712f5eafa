"""Calibration simulations: false-positive rates, power and coverage of the tests.

Each check simulates replicate experiments as arrays of per-arm sufficient
statistics and runs the package's own test functions on them elementwise (the
arms' fields are numpy arrays; see :mod:`cxlab.stats.aggregates`), so what is
validated is the code the app runs, not a copy. Used by ``tests/stats`` (with
fewer replicates) and ``bench/calibrate.py`` (which writes ``docs/calibration.md``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from cxlab.stats.aggregates import (
    Estimate,
    NpsStats,
    ProportionStats,
    RatioStats,
    SampleStats,
)
from cxlab.stats.contingency import homogeneity_test
from cxlab.stats.fixed import fixed_test
from cxlab.stats.power import sequential_power
from cxlab.stats.sequential import (
    DEFAULT_TUNING,
    group_sequential_boundaries,
    sequential_test,
)
from cxlab.stats.srm import srm_log_bayes_factor, srm_p_values
from cxlab.stats.survival import survival_stats

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
    rng: np.random.Generator,
    reps: int,
    rate_c: float,
    rate_t: float | np.ndarray,
    daily_users: int = DAILY_USERS_PER_ARM,
) -> tuple[ProportionStats, ProportionStats]:
    """Cumulative conversion arms, shape (reps, LOOKS).

    ``rate_t`` is one rate, or one per day (the users entering that day).
    """
    n = np.arange(1, LOOKS + 1) * daily_users
    n = np.broadcast_to(n, (reps, LOOKS))
    c = rng.binomial(daily_users, rate_c, (reps, LOOKS)).cumsum(axis=1)
    t = rng.binomial(daily_users, rate_t, (reps, LOOKS)).cumsum(axis=1)
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


def _capped_mean(value_mean: float, value_sd: float, cap: float) -> float:
    """E[min(Y, c)] for Y lognormal(μ, σ): the partial expectation plus c·P(Y > c).

    E[Y; Y ≤ c] = exp(μ + σ²/2) Φ((ln c − μ − σ²)/σ) (Johnson, Kotz &
    Balakrishnan 1994, Continuous Univariate Distributions 1, ch. 14).
    """
    z = (math.log(cap) - value_mean) / value_sd
    partial = math.exp(value_mean + value_sd**2 / 2) * sps.norm.cdf(z - value_sd)
    return float(partial + cap * sps.norm.sf(z))


def coverage_capped_revenue(
    reps: int, seed: int = 12, percentile: float = 0.999
) -> CalibrationCheck:
    """Coverage of the fixed abs_ci of capped revenue, for the capped mean itself.

    Each replicate caps every user's revenue at the pooled sample percentile
    (linear interpolation, as :mod:`cxlab.summaries.cap` does) of both arms'
    values, then tests the capped sums. The parameter is the difference of the
    arms' means capped at the pooled population percentile c*: with buyers'
    share r̄ over both arms and values lognormal(3, 1), P(X > c*) = 1 − p gives
    ln c* = 3 + Φ⁻¹(1 − (1 − p)/r̄). The interval ignores that the cap is
    estimated; the row measures what that costs.

    Args:
        reps: replicates.
        seed: random seed.
        percentile: the cap's percentile p.

    Returns:
        The check: coverage 95 % ± 1 pp.

    References:
        Kohavi, R., Tang, D. & Xu, Y. (2020), Trustworthy Online Controlled
        Experiments, ch. 22 (capping outliers).
    """
    rng = np.random.default_rng(seed)
    n, p_c, p_t = 5_000, 0.10, 0.105
    pooled_rate = (p_c + p_t) / 2
    cap = math.exp(3.0 + sps.norm.ppf(1 - (1 - percentile) / pooled_rate))
    truth = (p_t - p_c) * _capped_mean(3.0, 1.0, cap)
    sums = np.zeros((4, reps))
    chunk = max(1, 2_000_000 // (2 * n))
    for start in range(0, reps, chunk):
        size = min(chunk, reps - start)
        values = rng.lognormal(3.0, 1.0, (size, 2 * n))
        rates = np.repeat([p_c, p_t], n)
        values *= rng.random((size, 2 * n)) < rates  # non-buyers count 0
        caps = np.quantile(values, percentile, axis=1, keepdims=True)
        capped = np.minimum(values, caps)
        c, t = capped[:, :n], capped[:, n:]
        sums[:, start : start + size] = [
            c.sum(axis=1),
            (c * c).sum(axis=1),
            t.sum(axis=1),
            (t * t).sum(axis=1),
        ]
    res = fixed_test(
        SampleStats(np.full(reps, n), sums[0], sums[1]),
        SampleStats(np.full(reps, n), sums[2], sums[3]),
        alpha=ALPHA,
    )
    return _coverage(
        f"95 % CI coverage, revenue capped at the pooled {100 * percentile:g}th "
        "percentile (for the capped mean)",
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


# --- the sequential interval under a drifting effect -------------------------

DRIFT_DAILY_USERS_PER_ARM = 2_000
LONG_RUN_EFFECT = 0.005  # conversion 10 % -> 10.5 % once the novelty has faded
NOVELTY_EFFECT = 0.02  # extra effect on the users entering on day 1
NOVELTY_HALF_LIFE_DAYS = 3.0


def drift_daily_effects() -> np.ndarray:
    """Treatment effect on the users entering each day: a fading novelty effect.

    Returns:
        δ_d = LONG_RUN_EFFECT + NOVELTY_EFFECT · 2^(−d / NOVELTY_HALF_LIFE_DAYS)
        for days d = 0, ..., LOOKS − 1 (absolute, on conversion).
    """
    day = np.arange(LOOKS)
    return LONG_RUN_EFFECT + NOVELTY_EFFECT * 0.5 ** (day / NOVELTY_HALF_LIFE_DAYS)


def drift_cumulative_effects() -> np.ndarray:
    """The parameter each look's estimate targets under the drifting effect.

    Returns:
        θ_k = (δ_1 + ... + δ_k) / k: with equal daily users, the population mean
        difference of the users seen by look k, which is E[abs_delta] at look k.
    """
    return np.cumsum(drift_daily_effects()) / np.arange(1, LOOKS + 1)


def _drift_looks(reps: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Current-look sequence (lower, upper) and abs_delta, shape (reps, LOOKS)."""
    rng = np.random.default_rng(seed)
    rate_t = BASE_RATE + drift_daily_effects()
    c, t = _daily_proportions(rng, reps, BASE_RATE, rate_t, DRIFT_DAILY_USERS_PER_ARM)
    res = sequential_test(c, t, alpha=ALPHA)
    lower, upper = (np.asarray(v) for v in res.abs_ci)
    return lower, upper, np.asarray(res.abs_delta)


def _running_intersection(
    lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """[max of the lower ends so far, min of the upper ends so far] at each look.

    The report's former interval, rebuilt here only to show why it was dropped;
    an empty intersection has lower > upper and so covers nothing.

    References:
        Howard, S. R., Ramdas, A., McAuliffe, J. & Sekhon, J. (2021). Time-uniform,
        nonparametric, nonasymptotic confidence sequences. Annals of Statistics
        49(2). arXiv:1810.08240, section 2 (a confidence sequence for a fixed
        parameter may be intersected over time).
    """
    return np.maximum.accumulate(lower, axis=1), np.minimum.accumulate(upper, axis=1)


def _covers_at_every_look(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    theta = drift_cumulative_effects()
    return np.all((lower <= theta) & (theta <= upper), axis=1)


def mixture_drift_coverage(reps: int, seed: int = 14) -> CalibrationCheck:
    """Time-uniform coverage of the current look's sequence under a drifting effect.

    Each replicate has LOOKS daily looks of DRIFT_DAILY_USERS_PER_ARM new users
    per arm; the effect on each day's users fades (:func:`drift_daily_effects`).
    A replicate is covered when every look's abs_ci contains that look's θ_k
    (:func:`drift_cumulative_effects`).

    Args:
        reps: replicates.
        seed: random seed.

    Returns:
        The check: coverage ≥ 95 % − 4 MCSE.

    References:
        Waudby-Smith et al. (2023), arXiv:2103.06476, eq. 9 (the sequence) and its
        extension to time-varying means under martingale dependence, whose target
        is the running average of the conditional means (here θ_k).
    """
    lower, upper, _ = _drift_looks(reps, seed)
    return _check(
        "mixture sequential CI of the current look, drifting effect: covers "
        "θ_k at all 28 looks",
        reps,
        float(np.mean(_covers_at_every_look(lower, upper))),
        "≥ 95 %",
        1 - ALPHA - mc_tolerance(1 - ALPHA, reps),
        1.0,
    )


def running_intersection_drift_coverage(reps: int, seed: int = 14) -> CalibrationCheck:
    """Time-uniform coverage of the running intersection under the drifting effect.

    The same replicates as :func:`mixture_drift_coverage`; the interval at look k
    is the intersection of the looks' sequences up to k. With a fixed parameter
    it covers exactly when the sequence does; under drift it is pinned by the
    early looks, whose θ is larger, and misses the later θ_k.

    Args:
        reps: replicates.
        seed: random seed.

    Returns:
        The check: coverage below 95 % − 4 MCSE (expected; why it was dropped).

    References:
        Howard et al. (2021), arXiv:1810.08240, section 2.
    """
    lower, upper, _ = _drift_looks(reps, seed)
    covered = _covers_at_every_look(*_running_intersection(lower, upper))
    return _check(
        "running intersection (dropped), drifting effect: covers θ_k at all 28 looks",
        reps,
        float(np.mean(covered)),
        "< 95 % (why it was dropped)",
        0.0,
        1 - ALPHA - mc_tolerance(1 - ALPHA, reps),
    )


def running_intersection_drift_excludes_estimate(
    reps: int, seed: int = 14
) -> CalibrationCheck:
    """Share of runs where the running intersection excluded the current estimate.

    The same replicates as :func:`mixture_drift_coverage`: the share in which, at
    some look, abs_delta lay outside the running intersection (or it was empty).
    The current look's sequence always contains its own estimate.

    Args:
        reps: replicates.
        seed: random seed.

    Returns:
        The check: share above 10 % (informational).

    References:
        Howard et al. (2021), arXiv:1810.08240, section 2.
    """
    lower, upper, estimate = _drift_looks(reps, seed)
    lo, hi = _running_intersection(lower, upper)
    excluded = np.any((estimate < lo) | (estimate > hi), axis=1)
    return _check(
        "running intersection (dropped), drifting effect: excludes the current "
        "estimate at some look",
        reps,
        float(np.mean(excluded)),
        "> 10 % (informational)",
        0.10,
        1.0,
    )


# --- power of the mixture test where the fixed test has 80 % -----------------

PLANNED_POWER = 0.8
PLANNED_RELATIVE_MDE = 0.05  # the planner's default (cxlab.planning.DEFAULT_MDE)
PLANNED_RATE_T = BASE_RATE * (1 + PLANNED_RELATIVE_MDE)


def fixed_users_per_arm(rate_c: float, rate_t: float, power: float) -> float:
    """Users per arm at which the two-sided z test (unpooled) has ``power``.

    Args:
        rate_c: control conversion rate.
        rate_t: treatment conversion rate.
        power: target power.

    Returns:
        n = (z_{1−α/2} + z_power)² (p_c q_c + p_t q_t) / (p_t − p_c)², α = ALPHA.

    References:
        Chow, S.-C., Shao, J. & Wang, H. (2008). Sample Size Calculations in
        Clinical Research, 2nd ed., ch. 4 (two-sample test for proportions).
    """
    z = sps.norm.isf(ALPHA / 2) + sps.norm.ppf(power)
    var = rate_c * (1 - rate_c) + rate_t * (1 - rate_t)
    return z**2 * var / (rate_t - rate_c) ** 2  # Chow et al. (2008) ch. 4


PLANNED_DAILY_USERS_PER_ARM = math.ceil(
    fixed_users_per_arm(BASE_RATE, PLANNED_RATE_T, PLANNED_POWER) / LOOKS
)
PLANNED_TOTAL_USERS = 2 * LOOKS * PLANNED_DAILY_USERS_PER_ARM  # N, both arms


def _planned_p_values(reps: int, seed: int, tuning: float | None) -> np.ndarray:
    """p-values at the daily looks up to N: fixed test (tuning None) or mixture."""
    rng = np.random.default_rng(seed)
    c, t = _daily_proportions(
        rng, reps, BASE_RATE, PLANNED_RATE_T, PLANNED_DAILY_USERS_PER_ARM
    )
    if tuning is None:
        return np.asarray(fixed_test(c, t, alpha=ALPHA).p_value)
    return np.asarray(sequential_test(c, t, alpha=ALPHA, tuning=tuning).p_value)


def mixture_power_theory(tuning: float) -> float:
    """Normal-theory power of the mixture test read once at N (the planner's formula).

    Args:
        tuning: N*.

    Returns:
        :func:`cxlab.stats.power.sequential_power` at N/2 users per arm, with effect
        size δ / σ̄, σ̄² = (p_c q_c + p_t q_t) / 2 (so λ = δ / se of the z test).

    References:
        Waudby-Smith et al. (2023), arXiv:2103.06476, eqs. 9 and 161.
    """
    var = BASE_RATE * (1 - BASE_RATE) + PLANNED_RATE_T * (1 - PLANNED_RATE_T)
    effect = (PLANNED_RATE_T - BASE_RATE) / math.sqrt(var / 2)
    n = PLANNED_TOTAL_USERS / 2
    return sequential_power(effect, n, alpha=ALPHA, tuning=tuning)


def fixed_power_planned(reps: int, seed: int = 15) -> CalibrationCheck:
    """Power of the fixed test at N for a 5 % lift on 10 % conversion.

    N = PLANNED_TOTAL_USERS (:func:`fixed_users_per_arm` at 80 %, rounded up to
    whole days of LOOKS), read once at N.

    Args:
        reps: replicates.
        seed: random seed (the same replicates as the mixture power rows).

    Returns:
        The check: power 80 % ± max(2 pp, 4 MCSE).

    References:
        Chow, Shao & Wang (2008), ch. 4.
    """
    rate = float(np.mean(_planned_p_values(reps, seed, None)[:, -1] < ALPHA))
    tol = mc_tolerance(PLANNED_POWER, reps, 0.02)
    return _check(
        f"fixed test power at N = {PLANNED_TOTAL_USERS:,} (10 % → 10.5 %)",
        reps,
        rate,
        "80 %",
        PLANNED_POWER - tol,
        PLANNED_POWER + tol,
    )


def mixture_power_read_once(
    reps: int, seed: int = 15, tuning: float = PLANNED_TOTAL_USERS
) -> CalibrationCheck:
    """Power of the mixture sequential test read only at N, where the fixed has 80 %.

    Args:
        reps: replicates.
        seed: random seed.
        tuning: N* (default N, the planner's tuning: the planned total users).

    Returns:
        The check: the normal-theory power :func:`mixture_power_theory` ±
        max(1 pp, 4 MCSE).

    References:
        Waudby-Smith et al. (2023), arXiv:2103.06476, eqs. 9, 155 and 161.
    """
    rate = float(np.mean(_planned_p_values(reps, seed, tuning)[:, -1] < ALPHA))
    expected = mixture_power_theory(tuning)
    tol = mc_tolerance(expected, reps, 0.01)
    return _check(
        f"mixture sequential power, N* = {tuning:,.0f}, read once at N",
        reps,
        rate,
        f"{100 * expected:.1f} % (normal theory)",
        expected - tol,
        expected + tol,
    )


def mixture_power_peeking(
    reps: int, seed: int = 15, tuning: float = PLANNED_TOTAL_USERS
) -> CalibrationCheck:
    """Power of the mixture sequential test peeked at daily, where the fixed has 80 %.

    A replicate rejects when the always-valid p-value is below alpha at any of
    the LOOKS daily looks up to N.

    Args:
        reps: replicates.
        seed: random seed.
        tuning: N* (default N, the planner's tuning: the planned total users).

    Returns:
        The check: between the read-once power (normal theory, less 4 MCSE) and
        the fixed test's 80 % (informational).

    References:
        Waudby-Smith et al. (2023), arXiv:2103.06476, eqs. 155 and 161.
    """
    rate = _any_look(_planned_p_values(reps, seed, tuning))
    once = mixture_power_theory(tuning)
    return _check(
        f"mixture sequential power, N* = {tuning:,.0f}, 28 daily looks up to N",
        reps,
        rate,
        "≥ read once, < 80 %",
        once - mc_tolerance(once, reps),
        PLANNED_POWER,
    )


def mixture_power_read_once_default_tuning(
    reps: int, seed: int = 15
) -> CalibrationCheck:
    """:func:`mixture_power_read_once` at the default N* = 5000.

    Args:
        reps: replicates.
        seed: random seed.

    Returns:
        The check, as in :func:`mixture_power_read_once`.
    """
    return mixture_power_read_once(reps, seed, DEFAULT_TUNING)


def mixture_power_peeking_default_tuning(reps: int, seed: int = 15) -> CalibrationCheck:
    """:func:`mixture_power_peeking` at the default N* = 5000.

    Args:
        reps: replicates.
        seed: random seed.

    Returns:
        The check, as in :func:`mixture_power_peeking`.
    """
    return mixture_power_peeking(reps, seed, DEFAULT_TUNING)


RMST_HORIZON = 72.0  # hours
RMST_USERS = 400  # per arm, each with a contact
RMST_MEAN_HOURS = (20.0, 16.0)  # exponential times to resolution, control / treatment
RMST_FOLLOW_UP = 150.0  # hours: follow-up uniform on (0, this), then still open


def _exponential_rmst(mean: float, horizon: float) -> float:
    """∫₀^τ exp(−t/m) dt = m (1 − exp(−τ/m))."""
    return mean * (1 - math.exp(-horizon / mean))


def coverage_rmst(reps: int, seed: int = 16) -> CalibrationCheck:
    """Coverage of the fixed abs_ci of the RMST difference under censoring.

    Times to resolution are exponential (means 20 h and 16 h); each contact is
    followed for a Uniform(0, 150 h) time, after which it is still open
    (censored: about a third of the contacts within the 72 h horizon). Each
    arm's :func:`cxlab.stats.survival.survival_stats` (Kaplan–Meier, RMST up to 72 h,
    Greenwood-type variance) feeds :func:`cxlab.stats.fixed.fixed_test`.

    Args:
        reps: replicates (one Kaplan–Meier fit per arm each).
        seed: random seed.

    Returns:
        The check: coverage 95 % ± 1 pp.

    References:
        Royston, P. & Parmar, M. K. B. (2013). BMC Med Res Methodol 13, 152
        (RMST); Klein & Moeschberger (2003), eq. 4.5.2 (its variance).
    """
    rng = np.random.default_rng(seed)
    arms = []
    for mean in RMST_MEAN_HOURS:
        times = rng.exponential(mean, (reps, RMST_USERS))
        follow = rng.uniform(0, RMST_FOLLOW_UP, (reps, RMST_USERS))
        observed = np.minimum(np.minimum(times, follow), RMST_HORIZON)
        resolved = (times <= follow) & (times <= RMST_HORIZON)
        fits = [
            survival_stats(
                observed[k],
                resolved[k].astype(float),
                (~resolved[k]).astype(float),
                horizon=RMST_HORIZON,
                still_open=0,
            )
            for k in range(reps)
        ]
        arms.append(
            Estimate(
                np.array([f.n for f in fits]),
                np.array([f.mean for f in fits]),
                np.array([f.var for f in fits]),
            )
        )
    res = fixed_test(arms[0], arms[1], alpha=ALPHA)
    truth = _exponential_rmst(RMST_MEAN_HOURS[1], RMST_HORIZON) - _exponential_rmst(
        RMST_MEAN_HOURS[0], RMST_HORIZON
    )
    return _coverage(
        "95 % CI coverage, RMST up to 72 h (Kaplan–Meier, censored)",
        reps,
        _covers(res.abs_ci, truth),
    )


CATEGORY_USERS = 5_000  # exposed users per arm
CATEGORY_RATES = (0.030, 0.024)  # events of one category per user, Poisson


def _poisson_counts(rng: np.random.Generator, reps: int, rate: float) -> SampleStats:
    """Users with Poisson counts, as (n, Σx, Σx²); counts above 8 are negligible."""
    k = np.arange(9)
    pmf = sps.poisson.pmf(k, rate)
    pmf[-1] += 1 - pmf.sum()
    users = rng.multinomial(CATEGORY_USERS, pmf, reps)
    return SampleStats(np.full(reps, CATEGORY_USERS), users @ k, users @ (k * k))


def coverage_category_rate(reps: int, seed: int = 17) -> CalibrationCheck:
    """Coverage of the fixed abs_ci of one category's rate per exposed user.

    Each user's count of one contact reason is Poisson (0.030 vs 0.024 per
    user, most users with none), a mean of per-user counts as the engine's
    ``categorical`` type reports it.

    Args:
        reps: replicates.
        seed: random seed.

    Returns:
        The check: coverage 95 % ± 1 pp.
    """
    rng = np.random.default_rng(seed)
    c = _poisson_counts(rng, reps, CATEGORY_RATES[0])
    t = _poisson_counts(rng, reps, CATEGORY_RATES[1])
    res = fixed_test(c, t, alpha=ALPHA)
    return _coverage(
        "95 % CI coverage, one contact reason's rate per user (Poisson counts)",
        reps,
        _covers(res.abs_ci, CATEGORY_RATES[1] - CATEGORY_RATES[0]),
    )


COMPOSITION_MIX = (0.30, 0.20, 0.20, 0.15, 0.15)
COMPOSITION_USERS = 600  # users with a contact per arm


def composition_aa(reps: int, seed: int = 18) -> CalibrationCheck:
    """False-positive rate of the composition χ² test when the mix is the same.

    Both arms' users' first categories are multinomial over five reasons with
    the same shares; :func:`cxlab.stats.contingency.homogeneity_test` at alpha 0.05.

    Args:
        reps: replicates.
        seed: random seed.

    Returns:
        The check: 5 % ± 1 pp.
    """
    rng = np.random.default_rng(seed)
    c = rng.multinomial(COMPOSITION_USERS, COMPOSITION_MIX, reps)
    t = rng.multinomial(COMPOSITION_USERS, COMPOSITION_MIX, reps)
    p = np.array([homogeneity_test(c[k], t[k]).p_value for k in range(reps)])
    rate = float(np.mean(p < ALPHA))
    tol = mc_tolerance(ALPHA, reps, 0.01)
    return _check(
        "composition χ² test (5 reasons), A/A, one look",
        reps,
        rate,
        "5 % ± 1 pp",
        ALPHA - tol,
        ALPHA + tol,
    )


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
    mixture_drift_coverage,
    running_intersection_drift_coverage,
    running_intersection_drift_excludes_estimate,
    fixed_power_planned,
    mixture_power_read_once,
    mixture_power_peeking,
    mixture_power_read_once_default_tuning,
    mixture_power_peeking_default_tuning,
    coverage_rmst,
    coverage_category_rate,
    composition_aa,
    coverage_capped_revenue,
)
