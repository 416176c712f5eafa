"""An experiment's results from its summaries: scorecard rows and health.

Everything here works on the small daily summary tables; the statistics come from
``stats/`` and every level, interval, verdict and sentence from
:mod:`cxlab.decision`. For each metric and treatment the day-by-day timeline of
raw tests is computed once; each day's results are then decided together (the
correction spans the day's family), and the experiment as of the as-of day is the
timeline's last entry, so ``analyze`` and the last object of ``analyze --history``
always agree.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from cxlab import metrics
from cxlab.config import Catalog, Experiment, MetricDef, Role
from cxlab.decision import (
    Call,
    Decided,
    Entry,
    Method,
    Recommendation,
    Tests,
    Verdict,
    decide,
    recommend,
)
from cxlab.novelty import NoveltyCheck, novelty_checks
from cxlab.stats.aggregates import ArmStats, ProportionStats
from cxlab.stats.bayesian import (
    BayesianResult,
    bayesian_test,
    beta_binomial_prob_better,
)
from cxlab.stats.contingency import homogeneity_test
from cxlab.stats.cuped import cuped_adjust
from cxlab.stats.fixed import FixedResult, fixed_test
from cxlab.stats.noninferiority import NonInferiority
from cxlab.stats.sequential import (
    SequentialResult,
    group_sequential_test,
    sequential_tests,
)
from cxlab.stats.srm import SrmResult, sequential_srm, srm_test
from cxlab.stats.survival import SurvivalStats, logrank_p_value, survival_stats
from cxlab.summaries import ExperimentHealth, Summaries, voice

MULTIPLE_EXPOSURE_WARN_SHARE = 0.01
MIN_USERS_PER_ARM = 100


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm of one metric: the metric's own value and its population."""

    n: int
    value: float
    stats: ArmStats


@dataclass(frozen=True, slots=True)
class CupedInfo:
    """What CUPED did to one result (None fields when it could not apply)."""

    variance_reduction: float
    theta: float
    abs_delta: float
    rel_delta: float
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Cap:
    """A capped mean's cap at the look's day (:mod:`cxlab.summaries.cap`).

    ``value`` is the pooled ``percentile`` of the users' values that day; NaN
    before any user entered.
    """

    percentile: float
    value: float


@dataclass(frozen=True, slots=True)
class ResponseCheck:
    """Whether a treatment changed who answers a survey (NPS).

    Attributes:
        control_rate: responders per exposed user in control.
        treatment_rate: the same in the treatment.
        p_value: two-sided z test of the two rates.
        ok: no significant difference at the experiment's alpha.
    """

    control_rate: float
    treatment_rate: float
    p_value: float
    ok: bool


@dataclass(frozen=True, slots=True)
class MetricResult:
    """One row of the scorecard: a metric, a treatment, all three tests.

    ``fixed``, ``sequential`` and ``bayesian`` are each test at the level its
    call works at (:mod:`cxlab.decision`); ``calls`` holds the three calls and
    ``significant``, ``verdict`` and ``summary`` are those of the decision method.
    ``abs_delta`` and ``rel_delta`` are the raw differences of the arms' values.
    """

    metric: MetricDef
    variant: str
    role: Role
    control: Arm
    treatment: Arm
    abs_delta: float
    rel_delta: float
    fixed: FixedResult
    adjusted_p_value: float
    sequential: SequentialResult
    bayesian: BayesianResult
    calls: dict[Method, Call]
    method: Method
    significant: bool
    verdict: Verdict
    summary: str
    cuped: CupedInfo | None = None
    reason: str | None = None
    beta_binomial: tuple[float, float] | None = None  # (P(better), expected loss)
    non_inferiority: NonInferiority | None = None
    response: ResponseCheck | None = None
    category: str | None = None  # categorical: the category this row is about
    logrank_p_value: float | None = None  # time_to_event: the log-rank test
    cap: Cap | None = None  # a capped mean: its percentile and value that day

    @property
    def call(self) -> Call:
        """The call of the experiment's decision method."""
        return self.calls[self.method]

    @property
    def answers_suspect(self) -> bool:
        """Whether the treatment changed who answers (its response check failed)."""
        return self.response is not None and not self.response.ok


@dataclass(frozen=True, slots=True)
class SequentialSrm:
    """The always-valid SRM check over the daily looks so far."""

    p_value: float
    ok: bool


@dataclass(frozen=True, slots=True)
class Composition:
    """Whether a treatment changes the mix of a categorical metric's first categories.

    The counts are each arm's users by their first category (``categories``
    order); the test is :func:`cxlab.stats.contingency.homogeneity_test`.
    """

    metric: MetricDef
    variant: str
    categories: tuple[str, ...]
    control: tuple[int, ...]
    treatment: tuple[int, ...]
    chi2: float
    df: int
    p_value: float


@dataclass(frozen=True)
class ExperimentResult:
    """An experiment analysed as of one day."""

    experiment: Experiment
    as_of: dt.date
    users: dict[str, int]
    multiple_exposures: int
    srm: SrmResult
    sequential_srm: SequentialSrm
    results: tuple[MetricResult, ...]
    recommendation: Recommendation
    health: ExperimentHealth
    warnings: tuple[str, ...]
    finished: bool
    provenance: dict[str, str] = field(default_factory=dict)
    compositions: tuple[Composition, ...] = ()
    novelty: tuple[NoveltyCheck, ...] = ()  # the as-of day's details (with_details)

    def result(self, metric_id: str, variant: str | None = None) -> MetricResult:
        """The scorecard row of a metric (and treatment, default the first)."""
        for row in self.results:
            if row.metric.id == metric_id and variant in (None, row.variant):
                return row
        raise KeyError((metric_id, variant))

    def novelty_check(self, metric_id: str, variant: str) -> NoveltyCheck | None:
        """A metric's and treatment's novelty check (None without the details)."""
        found = [
            c for c in self.novelty if c.metric.id == metric_id and c.variant == variant
        ]
        return found[0] if found else None


# --- the timeline of one metric and treatment ----------------------------------------


@dataclass(frozen=True, slots=True)
class Look:
    """One day's look at one metric and treatment: the arms and the raw tests."""

    control: Arm
    treatment: Arm
    tests: Tests
    cuped: CupedInfo | None


def _cuped_arms(
    metric: MetricDef, control: dict[str, float], treatment: dict[str, float]
) -> tuple[ArmStats, ArmStats, CupedInfo]:
    adjusted = cuped_adjust(
        metrics.covariate_stats(metric, control),
        metrics.covariate_stats(metric, treatment),
    )
    c, t = adjusted.control, adjusted.treatment
    rel = t.mean / c.mean - 1 if c.mean else math.nan
    info = CupedInfo(
        variance_reduction=adjusted.variance_reduction,
        theta=adjusted.theta,
        abs_delta=t.mean - c.mean,
        rel_delta=rel,
        reason=getattr(adjusted, "reason", None),
    )
    return c, t, info


def _timeline(
    exp: Experiment,
    metric: MetricDef,
    control_rows: list[dict[str, float]],
    treatment_rows: list[dict[str, float]],
    stats: tuple[list[ArmStats], list[ArmStats]],
    *,
    last_only: bool = False,
) -> list[Look | None]:
    """Every day's look for one metric and treatment, at the experiment's alpha.

    ``stats`` are the arms' statistics by day (:func:`_arms`); the summary rows
    also give CUPED its pre-period sums. With ``last_only`` only the last look
    is tested (None for the others): each look's tests depend only on the looks
    up to it.
    """
    use_cuped = exp.cuped_days > 0 and metrics.metric_type(metric).cuped
    prior_mean = exp.bayes_prior.mean if exp.bayes_prior else 0.0
    prior_sd = exp.bayes_prior.sd if exp.bayes_prior else None
    arms: list[tuple[Arm, Arm, ArmStats, ArmStats, CupedInfo | None]] = []
    for k, (c_row, t_row) in enumerate(zip(control_rows, treatment_rows, strict=True)):
        c_stats, t_stats = stats[0][k], stats[1][k]
        cuped = None
        test_c, test_t = c_stats, t_stats
        if use_cuped:
            test_c, test_t, cuped = _cuped_arms(metric, c_row, t_row)
        elif exp.cuped_days > 0:
            cuped = CupedInfo(
                math.nan,
                math.nan,
                math.nan,
                math.nan,
                reason=f"CUPED does not apply to {metric.type} metrics",
            )
        control = Arm(c_stats.n, c_stats.mean, c_stats)
        treatment = Arm(t_stats.n, t_stats.mean, t_stats)
        arms.append((control, treatment, test_c, test_t, cuped))
    tested = [(c, t) for _, _, c, t, _ in arms]
    reported = [len(arms) - 1] if last_only else range(len(arms))
    mixture = (
        sequential_tests(
            [tested[k] for k in reported],
            alpha=exp.alpha,
            tuning=exp.sequential_tuning,
        )
        if exp.sequential_method == "mixture"
        else None
    )
    looks: list[Look | None] = [None] * len(arms)
    for j, k in enumerate(reported):
        control, treatment, test_c, test_t, cuped = arms[k]
        group_looks = tuple(tested[: k + 1]) if mixture is None else ()
        sequential = (
            mixture[j]
            if mixture is not None
            else group_sequential_test(
                group_looks,
                alpha=exp.alpha,
                planned_users=exp.planned_users or exp.sequential_tuning,
            )
        )
        tests = Tests(
            control=test_c,
            treatment=test_t,
            fixed=fixed_test(test_c, test_t, alpha=exp.alpha),
            sequential=sequential,
            bayesian=bayesian_test(
                test_c,
                test_t,
                alpha=exp.alpha,
                direction=metric.direction,
                prior_mean=prior_mean,
                prior_sd=prior_sd,
            ),
            group_looks=group_looks,
        )
        looks[k] = Look(control, treatment, tests, cuped)
    return looks


# --- the experiment -----------------------------------------------------------------


def _finished(
    exp: Experiment, as_of: dt.date, total_users: int, last_data: dt.date | None
) -> bool:
    """Past its end (with data through the end day) or at its planned size."""
    seen_until = min(as_of, last_data) if last_data is not None else as_of
    if exp.end is not None and seen_until >= exp.end:
        return True
    return exp.planned_users is not None and total_users >= exp.planned_users


def _warnings(
    exp: Experiment,
    users: dict[str, int],
    multiple: int,
    srm: SrmResult,
    results: Sequence[MetricResult],
) -> tuple[str, ...]:
    out = []
    if not srm.ok:
        out.append(
            f"Sample-ratio mismatch: p = {srm.p_value:.2g} < 0.001 "
            f"(observed {', '.join(f'{k} {v:,}' for k, v in users.items())})."
        )
    exposed = sum(users.values()) + multiple
    if exposed and multiple / exposed >= MULTIPLE_EXPOSURE_WARN_SHARE:
        out.append(
            f"{multiple:,} users ({multiple / exposed:.1%}) saw more than one variant "
            "and were excluded."
        )
    small = [v for v, n in users.items() if n < MIN_USERS_PER_ARM]
    if small:
        out.append(
            f"Too few users so far in {', '.join(small)} "
            f"(fewer than {MIN_USERS_PER_ARM} per arm)."
        )
    if any(r.sequential.planned_size_exceeded for r in results):
        out.append("The group-sequential test has passed its planned sample size.")
    out.extend(
        f"{r.variant} changed who answers {r.metric.label}: response rate "
        f"{r.response.treatment_rate:.1%} vs {r.response.control_rate:.1%} "
        f"in control (p = {r.response.p_value:.2g}), so the "
        f"{r.metric.label} comparison is suspect."
        for r in results
        if r.response is not None and not r.response.ok
    )
    return tuple(out)


def _rows_by_arm(daily: pl.DataFrame) -> dict[tuple[str, str], list[dict]]:
    """Daily summary rows of each (metric, variant), oldest first."""
    rows = daily.sort("metric", "variant", "day").to_dicts()
    return {
        key: list(group)
        for key, group in itertools.groupby(rows, lambda r: (r["metric"], r["variant"]))
    }


def analyze_history(
    exp: Experiment,
    catalog: Catalog,
    summaries: Summaries,
    *,
    last_only: bool = False,
    details: bool = True,
) -> list[ExperimentResult]:
    """The experiment as it stood at the end of each day from its start to as-of.

    Args:
        exp: the experiment config.
        catalog: the metric catalog.
        summaries: the log's summaries (must include this experiment).
        last_only: build only the as-of day's result (the timelines are computed
            in full either way, for the running sequential tests).
        details: give the as-of day's result its details (:func:`with_details`).

    Returns:
        One result per day, oldest first (empty when as-of is before the start).
    """
    daily = summaries.daily.filter(pl.col("experiment_id") == exp.id)
    days = sorted(set(daily["day"].to_list()))
    if not days:
        return []
    srm_counts, multiple_by_day = _exposure_counts(summaries, exp, days)
    last_event = summaries.log.last_event
    last_data = last_event.date() if last_event is not None else None
    weights = [v.weight for v in exp.variants]
    roles = dict(exp.metric_roles)
    timelines: dict[tuple[str, str, str | None], list[Look | None]] = {}
    compositions: dict[tuple[str, str], list[Composition]] = {}
    rows = _rows_by_arm(daily)
    for metric_id, _ in exp.metric_roles:
        metric = catalog[metric_id]
        if metrics.metric_type(metric).detail == "categories":
            by_category, firsts = _category_rows(exp, metric, summaries, rows, days)
            by_category_arms = {
                category: _arms(exp, metric, summaries, arm_rows, days)
                for category, arm_rows in by_category.items()
            }
            for variant in exp.treatments:
                for category, arm_rows in by_category.items():
                    arms = by_category_arms[category]
                    timelines[metric_id, variant, category] = _timeline(
                        exp,
                        metric,
                        arm_rows[exp.control],
                        arm_rows[variant],
                        (arms[exp.control], arms[variant]),
                        last_only=last_only,
                    )
                compositions[metric_id, variant] = _compositions(
                    exp, metric, variant, firsts
                )
            continue
        arm_rows = {v: rows[metric_id, v] for v in exp.variant_ids}
        arms = _arms(exp, metric, summaries, arm_rows, days)
        for variant in exp.treatments:
            timelines[metric_id, variant, None] = _timeline(
                exp,
                metric,
                arm_rows[exp.control],
                arm_rows[variant],
                (arms[exp.control], arms[variant]),
                last_only=last_only,
            )
    health = summaries.health[exp.id]
    provenance = {
        "config_hash": exp.content_hash,
        "log_fingerprint": _fingerprint_text(summaries.fingerprint),
    }
    indices = [len(days) - 1] if last_only else range(len(days))
    out = []
    for k in indices:
        day = days[k]
        users = dict(zip(exp.variant_ids, srm_counts[k], strict=True))
        srm = srm_test(srm_counts[k], weights)
        seq_srm = sequential_srm(srm_counts[: k + 1], weights)
        keyed = [(key, look) for key, looks in timelines.items() if (look := looks[k])]
        entries = [
            _entry(catalog[m], v, roles[m], c, look) for (m, v, c), look in keyed
        ]
        results = [
            _result(
                exp,
                entry,
                look,
                decided,
                users,
                category=category,
                cap=_cap(summaries, exp.id, entry.metric, day),
            )
            for entry, ((_, _, category), look), decided in zip(
                entries, keyed, decide(exp, entries), strict=True
            )
        ]
        finished = _finished(exp, day, sum(users.values()), last_data)
        multiple = multiple_by_day[k]
        out.append(
            ExperimentResult(
                experiment=exp,
                as_of=day,
                users=users,
                multiple_exposures=multiple,
                srm=srm,
                sequential_srm=SequentialSrm(seq_srm.p_value, seq_srm.ok),
                results=tuple(results),
                recommendation=recommend(exp, results, srm.ok, finished),
                health=health,
                warnings=_warnings(exp, users, multiple, srm, results),
                finished=finished,
                provenance=provenance,
                compositions=tuple(c[k] for c in compositions.values()),
            )
        )
    if details:
        out[-1] = with_details(out[-1], catalog, summaries)
    return out


def with_details(
    result: ExperimentResult, catalog: Catalog, summaries: Summaries
) -> ExperimentResult:
    """The as-of result with the details only the results page and reports show.

    The exact Beta-binomial probability and expected loss of each proportion
    (:func:`cxlab.stats.bayesian.beta_binomial_prob_better`) and the novelty checks
    (:func:`cxlab.novelty.novelty_checks`). No verdict, recommendation or headline
    number depends on them, so the portfolio's rows go without (about a third of
    an as-of day's analysis on the sample). ``summaries`` are those the result was
    analysed from.
    """
    return replace(
        result,
        results=tuple(
            replace(r, beta_binomial=_beta_binomial(r.metric, r.control, r.treatment))
            for r in result.results
        ),
        novelty=novelty_checks(result.experiment, catalog, summaries, result.as_of),
    )


def day_of_history(
    history: Sequence[ExperimentResult], catalog: Catalog, summaries: Summaries
) -> ExperimentResult | None:
    """The as-of result without details, read off a history that runs through it.

    ``summaries`` are the history's cut at the as-of day
    (:func:`cxlab.summaries.at_day`). Equal to :func:`analyze_history` on them with
    ``last_only`` and no ``details`` (tested on every day of the sample and on random
    experiments): each day's looks depend only on the days up to it
    (:func:`_timeline`), and the health counts are taken from ``summaries``. A day
    after the end of an experiment whose history runs to its end is that last day,
    dated as of the later day: no row counts after the end (CONTRACT §1,
    ``after_window``) and no time to an event is censored later
    (:mod:`cxlab.summaries.voice`). None when the history has no such day, or when a
    categorical metric has met fewer categories by then than in the whole history:
    its rows and its correction family are those of the categories met
    (:func:`_entry`).
    """
    if not history:
        return None
    exp = history[0].experiment
    day = summaries.as_of.get(exp.id)
    if day is not None and _after_its_end(history, day):
        found = [replace(history[-1], as_of=day)]
    else:
        found = [r for r in history if r.as_of == day]
    if not found:
        return None
    result = found[0]
    for metric_id, _ in exp.metric_roles:
        metric = catalog[metric_id]
        if metrics.metric_type(metric).detail != "categories":
            continue
        shown = {r.category for r in result.results if r.metric.id == metric_id}
        if set(_categories(_category_changes(exp, metric, summaries))) != shown:
            return None
    return replace(_without_details(result), health=summaries.health[exp.id])


def _after_its_end(history: Sequence[ExperimentResult], day: dt.date) -> bool:
    """Whether ``day`` is after the end of an experiment whose history reaches it."""
    end = history[-1].experiment.end
    return end is not None and day > history[-1].as_of >= end


def _without_details(result: ExperimentResult) -> ExperimentResult:
    """A result as a day of a history that is not its as-of day carries it."""
    return replace(
        result,
        results=tuple(replace(r, beta_binomial=None) for r in result.results),
        novelty=(),
    )


def history_until(
    later: Sequence[ExperimentResult], last: ExperimentResult
) -> list[ExperimentResult]:
    """The history as of ``last``'s day, from a history that runs through it.

    Equal to :func:`analyze_history` on the summaries cut at that day when that
    day's row can be read off ``later`` (:func:`day_of_history`; tested): each
    day's looks depend only on the days up to it (:func:`_timeline`), so the
    earlier days are ``later``'s. Only the as-of day's own result (``last``, with
    its details) and the health counts, which every day of a history carries as
    of its as-of day, differ. A day after the end of the experiment ``later``
    reaches follows its last day, and so does every day in between: each is that
    last day, without its details, dated as of itself.

    Raises:
        ValueError: ``later`` has no result of ``last``'s day.
    """
    earlier = [r for r in later if r.as_of < last.as_of]
    if later and _after_its_end(later, last.as_of):
        quiet = _without_details(later[-1])
        days = range(1, (last.as_of - quiet.as_of).days)
        earlier[-1:] = [quiet] + [
            replace(quiet, as_of=quiet.as_of + dt.timedelta(days=k)) for k in days
        ]
    elif all(r.as_of != last.as_of for r in later):
        raise ValueError(f"the history does not run through {last.as_of}")
    return [replace(r, health=last.health) for r in earlier] + [last]


def _entry(
    metric: MetricDef, variant: str, role: Role, category: str | None, look: Look
) -> Entry:
    """A result to decide; a category's is named after it and corrected with its kin.

    The correction of a categorical metric's results spans its categories (its
    own family, the metric's id), not the experiment's other metrics.
    """
    if category is None:
        return Entry(metric, variant, role, look.tests)
    named = replace(metric, name=f"{metric.label}: {category}")
    return Entry(named, variant, role, look.tests, family=metric.id)


def _category_rows(
    exp: Experiment,
    metric: MetricDef,
    summaries: Summaries,
    rows: dict[tuple[str, str], list[dict]],
    days: Sequence[dt.date],
) -> tuple[dict[str, dict[str, list[dict]]], pl.DataFrame]:
    """Per category and variant, the summary rows (n, Σx, Σx²) of every day.

    ``n`` is the arm's exposed users (the metric's own summary row); the sums
    cumulate the category's daily changes. Also each day's count of users by
    their first category, per variant (columns: variant, category, day, first).
    """
    changes = _category_changes(exp, metric, summaries)
    categories = _categories(changes)
    grid = (
        pl.DataFrame({"day": list(days)}, schema={"day": pl.Date})
        .join(pl.DataFrame({"variant": list(exp.variant_ids)}), how="cross")
        .join(
            pl.DataFrame({"category": categories}, schema={"category": pl.String}),
            how="cross",
        )
    )
    cumulative = (
        grid.join(changes, on=["variant", "category", "day"], how="left")
        .with_columns(pl.col("sum_x", "sum_xx", "first").fill_null(0.0))
        .sort("variant", "category", "day")
        .with_columns(
            pl.col("sum_x", "sum_xx", "first").cum_sum().over("variant", "category")
        )
    )
    by_category: dict[str, dict[str, list[dict]]] = {c: {} for c in categories}
    for (variant, category), group in cumulative.group_by(
        "variant", "category", maintain_order=True
    ):
        users = rows[metric.id, str(variant)]
        by_category[str(category)][str(variant)] = [
            {"n": user_row["n"], "sum_x": x, "sum_xx": xx}
            for user_row, x, xx in zip(
                users, group["sum_x"], group["sum_xx"], strict=True
            )
        ]
    return by_category, cumulative.select("variant", "category", "day", "first")


def _category_changes(
    exp: Experiment, metric: MetricDef, summaries: Summaries
) -> pl.DataFrame:
    """A categorical metric's daily changes per category and variant."""
    return _detail_rows(summaries.categories, voice.CATEGORY_SCHEMA, exp, metric)


def _categories(changes: pl.DataFrame) -> list[str]:
    """The categories met in a categorical metric's changes, sorted."""
    return sorted(set(changes["category"].to_list()))


def _compositions(
    exp: Experiment, metric: MetricDef, variant: str, firsts: pl.DataFrame
) -> list[Composition]:
    """Each day's composition test of the users' first categories (control vs arm)."""
    categories = tuple(sorted(set(firsts["category"].to_list())))
    counts = {
        v: firsts.filter(pl.col("variant") == v)
        .pivot("category", index="day", values="first")
        .sort("day")
        for v in (exp.control, variant)
    }
    out = []
    for k in range(counts[variant].height if categories else 0):
        control = tuple(int(counts[exp.control][c][k]) for c in categories)
        treatment = tuple(int(counts[variant][c][k]) for c in categories)
        test = homogeneity_test(control, treatment)
        out.append(
            Composition(
                metric,
                variant,
                categories,
                control,
                treatment,
                test.chi2,
                test.df,
                test.p_value,
            )
        )
    return out


def _detail_rows(
    table: pl.DataFrame | None,
    schema: Mapping[str, pl.DataType],
    exp: Experiment,
    metric: MetricDef,
) -> pl.DataFrame:
    """One experiment's and metric's rows of a detail table (empty without one)."""
    if table is None:
        return pl.DataFrame(schema=schema)
    return table.filter(
        (pl.col("experiment_id") == exp.id) & (pl.col("metric") == metric.id)
    )


def arm_stats_as_of(
    exp: Experiment,
    metric: MetricDef,
    summaries: Summaries,
    day: dt.date,
    variant: str,
) -> ArmStats | None:
    """One arm's statistics of a metric as of ``day``, as the results compute them.

    For the planner's baseline: the same :func:`_arms` the experiment's results
    use, on the one day.

    Args:
        exp: an experiment that uses the metric.
        metric: the catalog metric.
        summaries: summaries that hold the experiment.
        day: the as-of day.
        variant: the arm.

    Returns:
        The arm's statistics, or None when the summaries have no row of it that day.
    """
    rows = summaries.daily.filter(
        (pl.col("experiment_id") == exp.id)
        & (pl.col("metric") == metric.id)
        & (pl.col("variant") == variant)
        & (pl.col("day") == day)
    ).to_dicts()
    if not rows:
        return None
    (stats,) = _arms(exp, metric, summaries, {variant: rows}, [day])[variant]
    return stats


def _arms(
    exp: Experiment,
    metric: MetricDef,
    summaries: Summaries,
    rows: Mapping[str, Sequence[metrics.Row]],
    days: Sequence[dt.date],
) -> dict[str, list[ArmStats]]:
    """Per variant, each day's statistics of a metric, from where its type keeps them.

    A time to an event's are Kaplan–Meier estimates from the survival summaries
    (:func:`_survival_arms`); every other type's come from its summary rows, one
    per day (``rows``, by variant), through the metric registry.
    """
    if metrics.metric_type(metric).detail == "survival":
        return _survival_arms(exp, metric, summaries, days)
    return {
        variant: [metrics.arm_stats(metric, row) for row in arm_rows]
        for variant, arm_rows in rows.items()
    }


def _survival_arms(
    exp: Experiment, metric: MetricDef, summaries: Summaries, days: Sequence[dt.date]
) -> dict[str, list[ArmStats]]:
    """Per variant, each day's Kaplan–Meier statistics of the time to the end event.

    The states' counts as of a day are the sum of their daily changes up to it
    (:mod:`cxlab.summaries.voice`), kept running from one day to the next; times
    are in hours, a time at the horizon without the event (still open, or
    resolved after the horizon) is censored.
    """
    changes = _detail_rows(summaries.survival, voice.SURVIVAL_SCHEMA, exp, metric)
    horizon = float(metric.horizon_hours or math.nan)
    day_ends = np.array(days, dtype="datetime64[D]")
    out: dict[str, list[ArmStats]] = {}
    for variant in exp.variant_ids:
        of_arm = changes.filter(pl.col("variant") == variant).sort("day")
        minutes, at = np.unique(of_arm["minutes"].to_numpy(), return_inverse=True)
        kind, users = of_arm["kind"].to_numpy(), of_arm["users"].to_numpy()
        resolved = np.where(kind == voice.RESOLVED, users, 0)
        still_open = np.where(kind == voice.OPEN, users, 0)
        counts = np.zeros((2, len(minutes)), dtype=np.int64)  # events, censorings
        ends = np.searchsorted(of_arm["day"].to_numpy(), day_ends, side="right")
        out[variant], done, open_users = [], 0, 0
        for end in ends:
            np.add.at(counts[0], at[done:end], resolved[done:end])
            np.add.at(counts[1], at[done:end], users[done:end] - resolved[done:end])
            open_users += int(still_open[done:end].sum())
            done = end
            out[variant].append(
                survival_stats(
                    minutes / 60,
                    counts[0],
                    counts[1],
                    horizon=horizon,
                    still_open=open_users,
                )
            )
    return out


def _result(
    exp: Experiment,
    entry: Entry,
    look: Look,
    decided: Decided,
    users: dict[str, int],
    *,
    category: str | None = None,
    cap: Cap | None = None,
) -> MetricResult:
    """One scorecard row from its look and its decision."""
    response = None
    if metrics.metric_type(entry.metric).survey:
        response = response_check(
            (look.control.n, users[exp.control]),
            (look.treatment.n, users[entry.variant]),
            alpha=exp.alpha,
        )
    c, t = look.control.stats, look.treatment.stats
    logrank = (
        logrank_p_value(c.km, t.km)
        if isinstance(c, SurvivalStats) and isinstance(t, SurvivalStats)
        else None
    )
    return MetricResult(
        metric=entry.metric,
        variant=entry.variant,
        role=entry.role,
        control=look.control,
        treatment=look.treatment,
        abs_delta=look.treatment.value - look.control.value,
        rel_delta=_rel(look.control.value, look.treatment.value),
        fixed=decided.fixed,
        adjusted_p_value=decided.calls["fixed"].adjusted_p_value,
        sequential=decided.sequential,
        bayesian=decided.bayesian,
        calls=dict(decided.calls),
        method=decided.method,
        significant=decided.call.significant,
        verdict=decided.call.verdict,
        summary=decided.summary,
        cuped=look.cuped,
        reason=look.tests.fixed.reason,
        non_inferiority=decided.non_inferiority,
        response=response,
        category=category,
        logrank_p_value=logrank,
        cap=cap,
    )


def _cap(
    summaries: Summaries, exp_id: str, metric: MetricDef, day: dt.date
) -> Cap | None:
    """A capped mean's cap at the end of ``day``: the last one found by then."""
    if metric.cap is None:
        return None
    caps = summaries.caps
    found = (
        caps.filter(
            (pl.col("experiment_id") == exp_id)
            & (pl.col("metric") == metric.id)
            & (pl.col("day") <= day)
        ).sort("day")["cap"]
        if caps is not None
        else pl.Series([], dtype=pl.Float64)
    )
    value = found[-1] if found.len() else None
    return Cap(metric.cap, math.nan if value is None else value)


def response_check(
    control: tuple[int, int], treatment: tuple[int, int], *, alpha: float
) -> ResponseCheck:
    """Did the treatment change who answers? Response rates compared by a z test.

    Args:
        control: (responders, exposed users) of the control arm.
        treatment: the same for the treatment arm.
        alpha: flag the difference when the two-sided p-value is below this.

    Returns:
        The :class:`ResponseCheck` (``ok`` False when the rates differ).
    """
    (resp_c, users_c), (resp_t, users_t) = control, treatment
    test = fixed_test(
        ProportionStats(users_c, resp_c), ProportionStats(users_t, resp_t), alpha=alpha
    )
    return ResponseCheck(
        control_rate=resp_c / users_c if users_c else math.nan,
        treatment_rate=resp_t / users_t if users_t else math.nan,
        p_value=test.p_value,
        ok=not test.p_value < alpha,
    )


def _beta_binomial(
    metric: MetricDef, control: Arm, treatment: Arm
) -> tuple[float, float] | None:
    """Exact Beta(1,1)-binomial P(better) and expected loss, for proportions."""
    c, t = control.stats, treatment.stats
    if not isinstance(c, ProportionStats) or not isinstance(t, ProportionStats):
        return None
    if c.n == 0 or t.n == 0:
        return None
    return beta_binomial_prob_better(c, t, direction=metric.direction)


def _rel(control: float, treatment: float) -> float:
    if math.isnan(control) or control == 0:
        return math.nan
    return treatment / control - 1


def _exposure_counts(
    summaries: Summaries, exp: Experiment, days: Sequence[dt.date]
) -> tuple[list[list[int]], list[int]]:
    """Analysed users per variant, and excluded users, as of every day.

    Counted from the exposures themselves (not a metric's population), so SRM is
    computed on the analysed users whatever the metrics are.
    """
    flow = summaries.exposures.filter(pl.col("experiment_id") == exp.id)
    grid = pl.DataFrame({"day": list(days)}, schema={"day": pl.Date}).join(
        pl.DataFrame({"variant": list(exp.variant_ids)}), how="cross"
    )
    table = (
        grid.join(flow, on=["variant", "day"], how="left")
        .with_columns(pl.col("d_users", "d_conflicts").fill_null(0))
        .sort("variant", "day")
        .with_columns(pl.col("d_users", "d_conflicts").cum_sum().over("variant"))
    )
    users = {
        v: table.filter(pl.col("variant") == v)["d_users"].to_list()
        for v in exp.variant_ids
    }
    per_day = table.group_by("day").agg(pl.col("d_conflicts").sum()).sort("day")
    counts = [[int(users[v][k]) for v in exp.variant_ids] for k in range(len(days))]
    return counts, [int(c) for c in per_day["d_conflicts"]]


def _fingerprint_text(fingerprint: tuple) -> str:
    import hashlib

    return hashlib.sha256(repr(fingerprint).encode()).hexdigest()[:16]


def analyze(
    exp: Experiment, catalog: Catalog, summaries: Summaries
) -> ExperimentResult | None:
    """The experiment as of its as-of day (None when as-of is before its start)."""
    history = analyze_history(exp, catalog, summaries, last_only=True)
    return history[-1] if history else None
