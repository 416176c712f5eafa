"""Power and planning for a catalog metric: users, days and detectable effects.

The engine side of the Planner page and of ``python -m cxlab plan``. The statistics
come from :mod:`cxlab.stats.power` (the two-sided z test's power solved exactly for
the fixed-horizon test, the normal-mixture confidence sequence for the sequential
inflation); this module adds what needs the engine: the baseline mean and variance
taken from the control arm of the latest experiment that used the metric, the observed
daily traffic, the weekly MDE table and a plain sentence. The chart lives in
:mod:`cxlab.charts`, the JSON and text output in :mod:`cxlab.report`, the
command line in :mod:`cxlab.cli`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from cxlab.analysis import arm_stats_as_of
from cxlab.config import MAX_COUNT, Experiment, MetricDef
from cxlab.errors import InputError
from cxlab.metrics import metric_type
from cxlab.stats.power import (
    comparison_alpha,
    days_needed,
    mde_by_week,
    required_users,
    sequential_inflation,
    sequential_power,
)
from cxlab.stats.sequential import DEFAULT_TUNING
from cxlab.stats.srm import srm_test
from cxlab.summaries import Summaries

DEFAULT_MDE = 0.05
DEFAULT_POWER = 0.8
DEFAULT_ALPHA = 0.05
MIN_WEEKS = 4
MAX_WEEKS = 12
MAX_YEARS = 2  # a plan that needs longer is reported as not feasible
MAX_DAYS = 365 * MAX_YEARS


@dataclass(frozen=True, slots=True)
class Baseline:
    """A metric's control-arm mean and per-unit variance, taken from a log.

    Attributes:
        metric_id: the catalog metric.
        mean: control mean (a share, a mean, a ratio or an NPS).
        var: per-unit variance (delta method for ratios, multinomial for NPS).
        n: units in the control arm (NPS: responders).
        experiment_id: the experiment whose control arm supplied the numbers.
        as_of: the day the numbers stand at.
        daily_users: analysed users entering that experiment per day, all arms.
        population_share: metric units per exposed user (NPS: the response
            rate; 1 for every other type).
    """

    metric_id: str
    mean: float
    var: float
    n: int
    experiment_id: str | None = None
    as_of: dt.date | None = None
    daily_users: float | None = None
    population_share: float = 1.0

    @property
    def sd(self) -> float:
        """Per-unit standard deviation."""
        return math.sqrt(self.var)

    @property
    def source(self) -> str:
        """Where the numbers come from, in words."""
        if self.experiment_id is None:
            return "given"
        return (
            f"control arm of {self.experiment_id} as of {self.as_of} ({self.n:,} units)"
        )


@dataclass(frozen=True, slots=True)
class WeekRow:
    """What the experiment can detect after a number of weeks.

    Attributes:
        week: weeks since the start.
        users_per_arm: metric units per arm by then.
        relative_mde: fixed-horizon relative MDE at that point.
        sequential_mde: the mixture sequential test's relative MDE, analysed then.
    """

    week: int
    users_per_arm: int
    relative_mde: float
    sequential_mde: float


@dataclass(frozen=True, slots=True)
class Plan:
    """Sample size, duration and detectable effects for one metric.

    Attributes:
        metric: the catalog metric.
        baseline_mean: control mean.
        baseline_var: per-unit variance.
        relative_mde: relative effect to detect (0.05 = 5 %).
        alpha: family-wise two-sided level (Bonferroni over treatment arms).
        power: probability to detect the effect.
        variants: arms including control.
        sequential: whether the sequential test drives the decision.
        tuning: N* of the sequential test.
        users_per_arm: fixed-horizon units per arm.
        sequential_users_per_arm: units per arm for the sequential test's power.
        inflation: sequential_users_per_arm / users_per_arm.
        daily_users: users entering per day, all arms (None: duration unknown).
        population_share: metric units per user (NPS: response rate).
        fixed_days: days for the fixed-horizon test.
        sequential_days: days for the sequential test.
        weeks: the MDE reached after each week.
        baseline_source: where the baseline comes from.
    """

    metric: MetricDef
    baseline_mean: float
    baseline_var: float
    relative_mde: float
    alpha: float
    power: float
    variants: int
    sequential: bool
    tuning: int
    users_per_arm: int
    sequential_users_per_arm: int
    inflation: float
    daily_users: float | None
    population_share: float
    fixed_days: int | None
    sequential_days: int | None
    weeks: tuple[WeekRow, ...]
    baseline_source: str = "given"

    @property
    def total_users(self) -> int:
        """Fixed-horizon units over all arms."""
        return self.users_per_arm * self.variants

    @property
    def sequential_total_users(self) -> int:
        """Sequential-test units over all arms."""
        return self.sequential_users_per_arm * self.variants

    @property
    def planned_users_per_arm(self) -> int:
        """Units per arm for the method in force."""
        return self.sequential_users_per_arm if self.sequential else self.users_per_arm

    @property
    def days(self) -> int | None:
        """Days needed with the method in force."""
        return self.sequential_days if self.sequential else self.fixed_days

    @property
    def feasible(self) -> bool:
        """False when the method in force needs more than ``MAX_DAYS`` days."""
        return self.days is None or self.days <= MAX_DAYS


def days_text(days: int | None) -> str:
    """Days for display: ``—`` when unknown, capped at ``MAX_YEARS`` years."""
    if days is None:
        return "—"
    if days > MAX_DAYS:
        return f"more than {MAX_YEARS} years"
    return f"{days:,}"


# --- baselines from the log ------------------------------------------------------


def experiments_using(
    metric_id: str, experiments: Sequence[Experiment]
) -> list[Experiment]:
    """Experiments that use a metric in any role, latest start first."""
    users = [e for e in experiments if metric_id in dict(e.metric_roles)]
    return sorted(users, key=lambda e: (e.start, e.id), reverse=True)


def has_srm(experiment: Experiment, summaries: Summaries) -> bool:
    """Whether an experiment's analysed users break its traffic split (χ² SRM).

    Args:
        experiment: the experiment.
        summaries: summaries that hold it.

    Returns:
        True when the users per variant as of the summaries' day mismatch the
        configured weights (:func:`cxlab.stats.srm.srm_test`, p below 0.001).
    """
    day = summaries.as_of[experiment.id]
    flow = summaries.exposures.filter(
        (pl.col("experiment_id") == experiment.id) & (pl.col("day") <= day)
    )
    users = dict(flow.group_by("variant").agg(pl.col("d_users").sum()).iter_rows())
    counts = [int(users.get(v, 0) or 0) for v in experiment.variant_ids]
    return not srm_test(counts, [v.weight for v in experiment.variants]).ok


def healthy_experiments_using(
    metric_id: str,
    experiments: Sequence[Experiment],
    summaries: Mapping[str, Summaries],
) -> list[Experiment]:
    """Experiments that use a metric without a sample-ratio mismatch, latest first.

    An experiment whose split is broken never supplies a baseline: its arms are
    not the populations they claim to be.
    """
    return [
        e
        for e in experiments_using(metric_id, experiments)
        if not has_srm(e, summaries[e.id])
    ]


def pick_experiment(
    metric_id: str,
    experiments: Sequence[Experiment],
    experiment_id: str | None = None,
    *,
    summaries: Mapping[str, Summaries] | None = None,
) -> Experiment:
    """The experiment whose control arm supplies a metric's baseline.

    Args:
        metric_id: the catalog metric.
        experiments: candidate experiments.
        experiment_id: a specific experiment, or None for the latest that uses
            the metric.
        summaries: when given, the latest is the latest without a sample-ratio
            mismatch (:func:`healthy_experiments_using`).

    Returns:
        The experiment.

    Raises:
        InputError: no (such) experiment uses the metric, or (with ``summaries``)
            every one that does has a sample-ratio mismatch.
    """
    candidates = experiments_using(metric_id, experiments)
    if experiment_id is None and summaries is not None and candidates:
        candidates = healthy_experiments_using(metric_id, experiments, summaries)
        if not candidates:
            raise InputError(
                f"every experiment that uses metric '{metric_id}' has a sample-ratio "
                "mismatch, so the log gives no trustworthy baseline: give --baseline "
                "and --sd, or --experiment"
            )
    if experiment_id is not None:
        named = [e for e in experiments if e.id == experiment_id]
        if not named:
            raise InputError(f"no experiment with id '{experiment_id}'")
        if named[0] not in candidates:
            raise InputError(
                f"experiment '{experiment_id}' does not use metric '{metric_id}'"
            )
        return named[0]
    if not candidates:
        raise InputError(
            f"no experiment uses metric '{metric_id}', so the log gives no baseline: "
            "give --baseline and --sd"
        )
    return candidates[0]


def baseline_from_summaries(
    metric: MetricDef, experiment: Experiment, summaries: Summaries
) -> Baseline:
    """Baseline mean, variance and daily traffic from an experiment's control arm.

    Args:
        metric: the catalog metric.
        experiment: an experiment that uses the metric.
        summaries: summaries that hold the experiment.

    Returns:
        The control arm's mean and per-unit variance as of the summaries' as-of
        day, and the analysed users per day over all arms.

    Raises:
        InputError: the control arm has fewer than two units or no variance.
    """
    day = summaries.as_of[experiment.id]
    stats = arm_stats_as_of(experiment, metric, summaries, day, experiment.control)
    if stats is None or not stats.n >= 2 or not stats.var > 0 or not stats.mean:
        raise InputError(
            f"no baseline for '{metric.id}': the control arm of {experiment.id} "
            f"has too few units or no variance as of {day}"
        )
    flow = summaries.exposures.filter(
        (pl.col("experiment_id") == experiment.id) & (pl.col("day") <= day)
    )
    users = int(flow["d_users"].sum() or 0)
    n_days = flow["day"].n_unique()
    control_users = int(
        flow.filter(pl.col("variant") == experiment.control)["d_users"].sum() or 0
    )
    share = 1.0
    if metric_type(metric).population == "responders" and control_users:
        share = min(1.0, stats.n / control_users)  # responders per exposed user
    return Baseline(
        metric_id=metric.id,
        mean=float(stats.mean),
        var=float(stats.var),
        n=int(stats.n),
        experiment_id=experiment.id,
        as_of=day,
        daily_users=users / n_days if n_days and users else None,
        population_share=share,
    )


# --- the plan ----------------------------------------------------------------------


def _check_inputs(
    relative_mde: float, alpha: float, power: float, variants: int, tuning: int
) -> None:
    if not 0 < relative_mde <= 1:
        raise InputError(
            "the relative MDE must be more than 0% and at most 100% "
            f"(0 < MDE <= 1), got {relative_mde * 100:g}%"
        )
    if not 0 < alpha < 0.5:
        raise InputError(f"alpha must be between 0 and 0.5, got {alpha:g}")
    if not 0 < power < 1:
        raise InputError(f"power must be between 0 and 1, got {power:g}")
    if not power > alpha:
        raise InputError(f"power must be above alpha ({alpha:g}), got {power:g}")
    if variants < 2:
        raise InputError(f"variants must be at least 2, got {variants}")
    if tuning < 2:
        raise InputError(f"the sequential tuning N* must be at least 2, got {tuning}")


def sequential_mde(
    baseline_mean: float,
    baseline_var: float,
    users_per_arm: float,
    *,
    alpha: float,
    power: float,
    variants: int,
    tuning: float,
) -> float:
    """Relative MDE of the mixture sequential test analysed at ``users_per_arm``.

    Solves :func:`cxlab.stats.power.sequential_power` (δ/σ) = power for δ/σ.

    Args:
        baseline_mean: control mean.
        baseline_var: per-unit variance.
        users_per_arm: units per arm at the analysis.
        alpha: family-wise level (Bonferroni over treatment arms).
        power: target power.
        variants: arms including control.
        tuning: N* of the sequential test.

    Returns:
        The relative MDE, NaN below two units per arm.

    References:
        Waudby-Smith et al. (2023), arXiv:2103.06476, eq. 9 (half-width c(t)).
    """
    if not users_per_arm >= 2:
        return math.nan
    a = comparison_alpha(alpha, variants)

    def gap(effect: float) -> float:
        return sequential_power(effect, users_per_arm, alpha=a, tuning=tuning) - power

    hi = 1.0
    while gap(hi) < 0:
        hi *= 2.0
    from scipy import optimize  # 0.5 s to import; the planner's path only

    effect = optimize.brentq(gap, 1e-12, hi, xtol=1e-12)
    return effect * math.sqrt(baseline_var) / abs(baseline_mean)  # δ = effect · σ


def make_plan(
    metric: MetricDef,
    baseline_mean: float,
    baseline_var: float,
    *,
    relative_mde: float = DEFAULT_MDE,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    variants: int = 2,
    daily_users: float | None = None,
    sequential: bool = False,
    tuning: int = DEFAULT_TUNING,
    population_share: float = 1.0,
    weeks: int | None = None,
    baseline_source: str = "given",
) -> Plan:
    """Users per arm, days and the weekly MDE for one metric.

    Args:
        metric: the catalog metric.
        baseline_mean: control mean.
        baseline_var: per-unit variance.
        relative_mde: relative effect to detect.
        alpha: family-wise two-sided level.
        power: probability to detect the effect.
        variants: arms including control.
        daily_users: users entering per day over all arms; None leaves the
            duration open.
        sequential: whether the mixture sequential test drives the decision.
        tuning: N* of the sequential test.
        population_share: metric units per user (NPS: the response rate).
        weeks: rows of the weekly MDE table (default: enough to cover the plan,
            4 to 12).
        baseline_source: where the baseline comes from, for the output.

    Returns:
        The plan.

    Raises:
        InputError: an input out of range or a baseline without variance.
    """
    _check_inputs(relative_mde, alpha, power, variants, tuning)
    if not baseline_mean or not math.isfinite(baseline_mean):
        raise InputError("the baseline must be a non-zero number")
    if not baseline_var > 0 or not math.isfinite(baseline_var):
        raise InputError("the standard deviation must be positive")
    if daily_users is not None and not 0 < daily_users <= MAX_COUNT:
        raise InputError(
            f"daily users must be positive and at most {MAX_COUNT:,}, "
            f"got {daily_users:g}"
        )
    fixed = required_users(
        baseline_mean,
        baseline_var,
        relative_mde,
        alpha=alpha,
        power=power,
        variants=variants,
    )
    seq = sequential_inflation(
        baseline_mean,
        baseline_var,
        relative_mde,
        alpha=alpha,
        power=power,
        tuning=tuning,
        variants=variants,
    )
    units_per_day = daily_users * population_share if daily_users else None
    fixed_days = seq_days = None
    if units_per_day:
        fixed_days = days_needed(fixed.users_per_arm, units_per_day, variants=variants)
        seq_days = days_needed(
            seq.sequential_users_per_arm, units_per_day, variants=variants
        )
    rows: tuple[WeekRow, ...] = ()
    if units_per_day:
        longest = seq_days if sequential else fixed_days
        n_weeks = weeks or min(MAX_WEEKS, max(MIN_WEEKS, math.ceil(longest / 7) + 1))
        rows = tuple(
            WeekRow(
                w.week,
                w.users_per_arm,
                w.relative_mde,
                sequential_mde(
                    baseline_mean,
                    baseline_var,
                    w.users_per_arm,
                    alpha=alpha,
                    power=power,
                    variants=variants,
                    tuning=tuning,
                ),
            )
            for w in mde_by_week(
                baseline_mean,
                baseline_var,
                units_per_day,
                weeks=n_weeks,
                alpha=alpha,
                power=power,
                variants=variants,
            )
        )
    return Plan(
        metric=metric,
        baseline_mean=baseline_mean,
        baseline_var=baseline_var,
        relative_mde=relative_mde,
        alpha=alpha,
        power=power,
        variants=variants,
        sequential=sequential,
        tuning=tuning,
        users_per_arm=fixed.users_per_arm,
        sequential_users_per_arm=seq.sequential_users_per_arm,
        inflation=seq.inflation,
        daily_users=daily_users,
        population_share=population_share,
        fixed_days=fixed_days,
        sequential_days=seq_days,
        weeks=rows,
        baseline_source=baseline_source,
    )


# --- words and tables ---------------------------------------------------------


def percent_text(x: float) -> str:
    """A share as a short percentage: 0.05 → ``5%``."""
    return f"{x * 100:.3g}%"


def _metric_words(metric: MetricDef) -> str:
    label = metric.label
    if len(label) > 1 and label[:2].isupper():
        return label  # an acronym such as NPS
    return label[:1].lower() + label[1:]


def plan_sentence(plan: Plan) -> str:
    """The plan in one plain sentence.

    Args:
        plan: the plan.

    Returns:
        E.g. "With 9,000 users a day you need 21 days to detect a 5% drop in
        contacts per order with 80% power."
    """
    change = "drop" if plan.metric.direction == "decrease" else "rise"
    effect = (
        f"a {percent_text(plan.relative_mde)} {change} in {_metric_words(plan.metric)} "
        f"with {percent_text(plan.power)} power"
    )
    arms = f" split over {plan.variants} variants" if plan.variants > 2 else ""
    method = " using the sequential test" if plan.sequential else ""
    if plan.days is None or plan.daily_users is None:
        return (
            f"You need {plan.planned_users_per_arm:,} users per arm "
            f"({plan.planned_users_per_arm * plan.variants:,} in total) to detect "
            f"{effect}{method}."
        )
    who = ""
    if plan.population_share < 1:
        share = percent_text(plan.population_share)
        who = f" (about {share} of whom count for this metric)"
    if not plan.feasible:
        return (
            f"With {plan.daily_users:,.0f} users a day{arms}{who} you would need more "
            f"than {MAX_YEARS} years to detect {effect}{method}: not feasible. Aim "
            "for a larger effect, more traffic or fewer variants."
        )
    days = f"{plan.days:,} day{'s' if plan.days != 1 else ''}"
    text = (
        f"With {plan.daily_users:,.0f} users a day{arms}{who} you need {days} "
        f"to detect {effect}{method}."
    )
    if plan.sequential and plan.fixed_days is not None:
        fixed = days_text(plan.fixed_days)
        text = text[:-1] + f" ({fixed} with a fixed-horizon test)."
    return text


def weeks_table(plan: Plan) -> pl.DataFrame:
    """The MDE reached after each week, one row per week.

    Args:
        plan: the plan.

    Returns:
        Columns week, day, users_per_arm, fixed_mde, sequential_mde (relative).
    """
    return pl.DataFrame(
        {
            "week": [w.week for w in plan.weeks],
            "day": [7 * w.week for w in plan.weeks],
            "users_per_arm": [w.users_per_arm for w in plan.weeks],
            "fixed_mde": [w.relative_mde for w in plan.weeks],
            "sequential_mde": [w.sequential_mde for w in plan.weeks],
        },
        schema={
            "week": pl.Int64,
            "day": pl.Int64,
            "users_per_arm": pl.Int64,
            "fixed_mde": pl.Float64,
            "sequential_mde": pl.Float64,
        },
    )
