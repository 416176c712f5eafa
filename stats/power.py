"""Power and planning: users needed, detectable effects, duration."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special

from cxlab.stats.sequential import DEFAULT_TUNING, mixture_multiplier

SQRT_2PI = math.sqrt(2 * math.pi)


@dataclass(frozen=True, slots=True)
class SampleSizePlan:
    """Users needed for a fixed-horizon test.

    Attributes:
        users_per_arm: users in each arm (rounded up).
        total_users: users over all arms.
        relative_mde: the relative effect to detect.
        alpha: per-comparison level after Bonferroni over treatment arms.
        power: probability to detect the effect.
        variants: arms including control.
    """

    users_per_arm: int
    total_users: int
    relative_mde: float
    alpha: float
    power: float
    variants: int


@dataclass(frozen=True, slots=True)
class SequentialPlan:
    """Users the mixture sequential test needs for the fixed test's power.

    Attributes:
        fixed_users_per_arm: users per arm of the fixed-horizon test.
        sequential_users_per_arm: users per arm at which the mixture sequential
            test, analysed then, has the same power.
        inflation: sequential_users_per_arm / fixed_users_per_arm.
        tuning: N* of the sequential test.
    """

    fixed_users_per_arm: int
    sequential_users_per_arm: int
    inflation: float
    tuning: float


@dataclass(frozen=True, slots=True)
class WeeklyMde:
    """Relative MDE reachable after a number of weeks.

    Attributes:
        week: weeks since start.
        users_per_arm: users per arm by then.
        relative_mde: smallest relative effect detectable with the given power.
    """

    week: int
    users_per_arm: int
    relative_mde: float


def _check(baseline_mean: float, baseline_var: float, variants: int) -> None:
    if not baseline_mean or not math.isfinite(baseline_mean):
        raise ValueError("baseline_mean must be finite and non-zero")
    if not baseline_var > 0 or not math.isfinite(baseline_var):
        raise ValueError("baseline_var must be positive and finite")
    if variants < 2:
        raise ValueError("variants must be at least 2 (control and one treatment)")


def comparison_alpha(alpha: float, variants: int) -> float:
    """Bonferroni level per treatment-vs-control comparison.

    Args:
        alpha: family-wise level.
        variants: arms including control.

    Returns:
        alpha / (variants − 1).

    References:
        Dunn, O. J. (1961). Multiple comparisons among means. JASA 56(293), 52-64.
        DOI:10.1080/01621459.1961.10482090.
    """
    return alpha / (variants - 1)  # Bonferroni: α / m, m = treatment arms


def noncentrality(alpha: float, power: float) -> float:
    """The λ at which the two-sided z test at level ``alpha`` has ``power``.

    Solves Φ(λ − z) + Φ(−λ − z) = power, z = z_{1−α/2}, where λ = (δ/σ)·sqrt(n/2)
    for two arms of n units: both tails, as statsmodels ``NormalIndPower`` does,
    solved by Newton's method from the one-tail solution z + z_power (the far
    tail's power puts the root just below it).

    Args:
        alpha: two-sided level.
        power: target power, above ``alpha``.

    Returns:
        λ, to about 1e-12 relative.

    References:
        Chow, Shao & Wang (2008), ch. 3 (power of the two-sample z test).
    """
    if not 0 < alpha < power < 1:
        raise ValueError("power must lie between alpha and 1")
    z = float(special.ndtri(1 - alpha / 2))
    lam = z + float(special.ndtri(power))
    for _ in range(100):
        gap = float(special.ndtr(lam - z) + special.ndtr(-lam - z)) - power
        # the derivative: φ(λ − z) − φ(λ + z), φ the normal density
        slope = (math.exp(-0.5 * (lam - z) ** 2) - math.exp(-0.5 * (lam + z) ** 2)) / (
            SQRT_2PI
        )
        step = gap / slope
        lam -= step
        if abs(step) <= 1e-13 * lam:
            break
    return lam


def required_users(
    baseline_mean: float,
    baseline_var: float,
    relative_mde: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    variants: int = 2,
) -> SampleSizePlan:
    """Users per arm for a two-sided z test to detect a relative effect.

    Args:
        baseline_mean: control mean of the metric.
        baseline_var: per-unit variance of the metric (p(1 − p) for a rate).
        relative_mde: relative effect to detect (0.05 = 5 %).
        alpha: family-wise two-sided level (Bonferroni over treatment arms).
        power: probability to detect the effect.
        variants: arms including control.

    Returns:
        The plan; n = (z_{1−α/2} + z_{power})² · 2σ² / δ² per arm, δ = mde · mean.

    References:
        Chow, S.-C., Shao, J. & Wang, H. (2008). Sample Size Calculations in
        Clinical Research, 2nd ed., ch. 3 (two-sample z test for means); both
        tails kept, as statsmodels ``NormalIndPower`` solves it.
    """
    _check(baseline_mean, baseline_var, variants)
    if not relative_mde > 0:
        raise ValueError("relative_mde must be positive")
    a = comparison_alpha(alpha, variants)
    effect = relative_mde * abs(baseline_mean) / math.sqrt(baseline_var)  # δ / σ
    n = 2.0 * (noncentrality(a, power) / effect) ** 2  # λ = (δ/σ) sqrt(n/2)
    users = math.ceil(float(n) - 1e-9)
    return SampleSizePlan(users, users * variants, relative_mde, a, power, variants)


def minimum_detectable_effect(
    baseline_mean: float,
    baseline_var: float,
    users_per_arm: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    variants: int = 2,
) -> float:
    """Smallest relative effect a fixed-horizon test detects with the given power.

    Args:
        baseline_mean: control mean of the metric.
        baseline_var: per-unit variance of the metric.
        users_per_arm: users in each arm.
        alpha: family-wise two-sided level (Bonferroni over treatment arms).
        power: probability to detect the effect.
        variants: arms including control.

    Returns:
        Relative MDE ≈ (z_{1−α/2} + z_{power}) · sqrt(2σ²/n) / |mean|.

    References:
        Chow, Shao & Wang (2008), ch. 3, the sample-size formula solved for δ;
        both tails kept, as statsmodels ``NormalIndPower`` solves it.
    """
    _check(baseline_mean, baseline_var, variants)
    if not users_per_arm >= 2:
        return math.nan
    a = comparison_alpha(alpha, variants)
    effect = noncentrality(a, power) / math.sqrt(users_per_arm / 2.0)  # δ / σ
    # δ = effect · σ, relative to |mean|
    return effect * math.sqrt(baseline_var) / abs(baseline_mean)


def sequential_power(
    effect_size: float, users_per_arm: float, *, alpha: float, tuning: float
) -> float:
    """Power of the mixture sequential test analysed at ``users_per_arm``.

    Args:
        effect_size: δ / σ.
        users_per_arm: users per arm at the analysis (t = 2n in total).
        alpha: two-sided level.
        tuning: N* of the sequence.

    Returns:
        Φ(λ − c(t)) + Φ(−λ − c(t)), λ = (δ/σ) sqrt(n/2), c(t) the half-width
        multiplier of the normal-mixture confidence sequence.

    References:
        Waudby-Smith et al. (2023), arXiv:2103.06476, eq. 9 (half-width c(t)).
    """
    lam = effect_size * math.sqrt(users_per_arm / 2.0)  # noncentrality of z
    c = float(mixture_multiplier(2.0 * users_per_arm, alpha=alpha, tuning=tuning))
    return float(special.ndtr(lam - c) + special.ndtr(-lam - c))  # P(|Z| > c(t))


def sequential_inflation(
    baseline_mean: float,
    baseline_var: float,
    relative_mde: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    tuning: float = DEFAULT_TUNING,
    variants: int = 2,
) -> SequentialPlan:
    """Users the mixture sequential test needs, relative to the fixed test.

    The sequential test's confidence sequence is wider than the fixed interval
    (multiplier c(t) ≥ z_{1−α/2}); this solves for the users per arm at which the
    sequential test, analysed then, reaches the fixed test's power.

    Args:
        baseline_mean: control mean of the metric.
        baseline_var: per-unit variance of the metric.
        relative_mde: relative effect to detect.
        alpha: family-wise two-sided level (Bonferroni over treatment arms).
        power: target power.
        tuning: N* of the sequential test.
        variants: arms including control.

    Returns:
        Fixed and sequential users per arm and their ratio.

    References:
        Waudby-Smith et al. (2023), arXiv:2103.06476, eqs. 9 and 161.
    """
    plan = required_users(
        baseline_mean,
        baseline_var,
        relative_mde,
        alpha=alpha,
        power=power,
        variants=variants,
    )
    effect = relative_mde * abs(baseline_mean) / math.sqrt(baseline_var)
    a = plan.alpha

    def gap(n: float) -> float:
        return sequential_power(effect, n, alpha=a, tuning=tuning) - power

    hi = float(plan.users_per_arm)
    while gap(hi) < 0:
        hi *= 2.0
    from scipy import optimize  # 0.5 s to import; the planner's path only

    n_seq = optimize.brentq(gap, max(1.0, plan.users_per_arm / 2), hi, xtol=1e-6)
    users = math.ceil(n_seq - 1e-9)
    return SequentialPlan(plan.users_per_arm, users, users / plan.users_per_arm, tuning)


def days_needed(users_per_arm: int, daily_users: float, *, variants: int = 2) -> int:
    """Days of traffic to reach ``users_per_arm`` in every arm (equal split).

    Args:
        users_per_arm: users needed in each arm.
        daily_users: new users entering the experiment per day, all arms.
        variants: arms including control.

    Returns:
        ceil(users_per_arm · variants / daily_users).

    References:
        Kohavi, R., Tang, D. & Xu, Y. (2020). Trustworthy Online Controlled
        Experiments, ch. 17 (duration from the required sample size).
    """
    if not daily_users > 0:
        raise ValueError("daily_users must be positive")
    return math.ceil(users_per_arm * variants / daily_users - 1e-9)  # ⌈n k / rate⌉


def mde_by_week(
    baseline_mean: float,
    baseline_var: float,
    daily_users: float,
    *,
    weeks: int = 4,
    alpha: float = 0.05,
    power: float = 0.8,
    variants: int = 2,
) -> list[WeeklyMde]:
    """Relative MDE of the fixed test after each week of traffic.

    Args:
        baseline_mean: control mean of the metric.
        baseline_var: per-unit variance of the metric.
        daily_users: new users per day, all arms (split equally).
        weeks: how many weeks to list.
        alpha: family-wise two-sided level (Bonferroni over treatment arms).
        power: probability to detect the effect.
        variants: arms including control.

    Returns:
        One :class:`WeeklyMde` per week 1..weeks.

    References:
        Chow, Shao & Wang (2008), ch. 3, the sample-size formula solved for δ.
    """
    out = []
    for week in range(1, weeks + 1):
        n = math.floor(7 * week * daily_users / variants)  # users per arm by then
        mde = minimum_detectable_effect(
            baseline_mean, baseline_var, n, alpha=alpha, power=power, variants=variants
        )
        out.append(WeeklyMde(week, n, mde))
    return out
