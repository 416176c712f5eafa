"""An experiment's results from its summaries: scorecard rows, health, verdicts.

Everything here works on the small daily summary tables; the statistics come from
``stats/``. For each metric and treatment the day-by-day timeline is computed once:
the sequential test is reported as of each day with its running minimum p-value and
running intersection of intervals (valid for confidence sequences), and the
experiment as of the as-of day is the timeline's last entry, so ``analyze`` and the
last object of ``analyze --history`` always agree.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

from cxlab import metrics
from cxlab.config import Catalog, Experiment, MetricDef, Role
from cxlab.summaries import ExperimentHealth, Summaries
from stats.aggregates import ArmStats, CovariateStats, ProportionStats
from stats.bayesian import (
    BayesianResult,
    bayesian_test,
    beta_binomial_prob_better,
)
from stats.corrections import adjust_p_values
from stats.cuped import cuped_adjust
from stats.fixed import FixedResult, fixed_test
from stats.sequential import (
    SequentialResult,
    group_sequential_test,
    running_sequential,
    sequential_tests,
)
from stats.srm import SrmResult, sequential_srm, srm_test

Verdict = Literal["win", "loss", "inconclusive"]
Action = Literal["ship", "roll_back", "review", "keep_running"]

MULTIPLE_EXPOSURE_WARN_SHARE = 0.01
MIN_USERS_PER_ARM = 100
NAN_PAIR = (math.nan, math.nan)
SKIPPED = FixedResult(
    math.nan, math.nan, math.nan, NAN_PAIR, NAN_PAIR, math.nan, math.nan, "not computed"
)
SKIPPED_BAYESIAN = BayesianResult(
    math.nan, math.nan, NAN_PAIR, math.nan, math.nan, "not computed"
)
NOT_COMPUTED = SequentialResult(
    math.nan, (math.nan, math.nan), (math.nan, math.nan), "group", reason="not computed"
)
MAX_MEAN_CV = 0.05


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
class MetricResult:
    """One row of the scorecard: a metric, a treatment, all three tests."""

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
    significant: bool
    verdict: Verdict
    summary: str
    cuped: CupedInfo | None = None
    reason: str | None = None
    beta_binomial: tuple[float, float] | None = None  # (P(better), expected loss)


@dataclass(frozen=True, slots=True)
class Recommendation:
    """What to do with the experiment, and why, in one sentence."""

    action: Action
    reason: str


@dataclass(frozen=True, slots=True)
class SequentialSrm:
    """The always-valid SRM check over the daily looks so far."""

    p_value: float
    ok: bool


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

    def result(self, metric_id: str, variant: str | None = None) -> MetricResult:
        """The scorecard row of a metric (and treatment, default the first)."""
        for row in self.results:
            if row.metric.id == metric_id and variant in (None, row.variant):
                return row
        raise KeyError((metric_id, variant))


# --- from summary rows to arm statistics -----------------------------------------


def arm_stats(metric: MetricDef, row: dict[str, float]) -> ArmStats:
    """The sufficient statistics of one arm from a summary row."""
    return metrics.arm_stats(metric, row)


def covariate_stats(row: dict[str, float]) -> CovariateStats:
    """Outcome y and pre-period covariate x of one arm, for CUPED."""
    return metrics.cuped_covariates(row)


# --- verdicts and words ------------------------------------------------------------


def _good(metric: MetricDef, delta: float) -> bool:
    return delta > 0 if metric.direction == "increase" else delta < 0


def verdict_of(metric: MetricDef, significant: bool, delta: float) -> Verdict:
    """Win or loss in the metric's good direction when significant."""
    if not significant or math.isnan(delta) or delta == 0:
        return "inconclusive"
    return "win" if _good(metric, delta) else "loss"


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%".replace("-", "−")


def _points(x: float) -> str:
    return f"{x:+.1f}".replace("-", "−")


def summarize_result(
    metric: MetricDef,
    variant: str,
    rel_delta: float,
    abs_delta: float,
    rel_ci: tuple[float, float],
    abs_ci: tuple[float, float],
    verdict: Verdict,
    alpha: float,
) -> str:
    """One plain sentence: what the treatment did to the metric, with its interval."""
    level = f"{(1 - alpha) * 100:g}% CI"
    if metric.type == "nps":
        if math.isnan(abs_delta):
            return f"{variant}: not enough NPS responses to compare yet."
        verb = "raised" if abs_delta > 0 else "lowered"
        text = (
            f"{variant} {verb} {metric.label} by {abs(abs_delta):.1f} points "
            f"({level} {_points(abs_ci[0])} to {_points(abs_ci[1])})"
        )
    else:
        if math.isnan(rel_delta):
            return f"{variant}: not enough data to compare {metric.label} yet."
        verb = "raised" if rel_delta > 0 else "cut"
        text = (
            f"{variant} {verb} {metric.label} by {abs(rel_delta) * 100:.1f}% "
            f"({level} {_pct(rel_ci[0])} to {_pct(rel_ci[1])})"
        )
    tail = {
        "win": " — a win.",
        "loss": " — a loss.",
        "inconclusive": "; not significant yet.",
    }[verdict]
    return text + tail


# --- the timeline of one metric and treatment ----------------------------------------


@dataclass(frozen=True, slots=True)
class Look:
    """One day's look at one metric and treatment: arms and all three tests."""

    control: Arm
    treatment: Arm
    fixed: FixedResult
    sequential: SequentialResult
    bayesian: BayesianResult
    cuped: CupedInfo | None


def _cuped_arms(
    control: dict[str, float], treatment: dict[str, float]
) -> tuple[ArmStats, ArmStats, CupedInfo]:
    adjusted = cuped_adjust(covariate_stats(control), covariate_stats(treatment))
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
    *,
    last_only: bool = False,
) -> list[Look]:
    """Every day's look for one metric and treatment (sequential tests running).

    With ``last_only`` only the last look is reported, so the fixed, Bayesian
    and group-sequential tests (which depend only on the looks up to theirs) are
    computed there alone; the mixture test runs on every look for its running
    minimum and intersection.
    """
    use_cuped = exp.cuped_days > 0 and metrics.metric_type(metric).cuped
    prior_mean = exp.bayes_prior.mean if exp.bayes_prior else 0.0
    prior_sd = exp.bayes_prior.sd if exp.bayes_prior else None
    looks: list[Look] = []
    mixture_looks: list[tuple[ArmStats, ArmStats]] = []
    group_history: list[tuple[ArmStats, ArmStats]] = []
    last = len(control_rows) - 1
    for k, (c_row, t_row) in enumerate(zip(control_rows, treatment_rows, strict=True)):
        c_stats, t_stats = arm_stats(metric, c_row), arm_stats(metric, t_row)
        control = Arm(c_stats.n, c_stats.mean, c_stats)
        treatment = Arm(t_stats.n, t_stats.mean, t_stats)
        cuped = None
        test_c, test_t = c_stats, t_stats
        if use_cuped:
            test_c, test_t, cuped = _cuped_arms(c_row, t_row)
        elif exp.cuped_days > 0:
            cuped = CupedInfo(
                math.nan,
                math.nan,
                math.nan,
                math.nan,
                reason="CUPED applies to proportion and mean metrics, "
                f"not to {metric.type} metrics",
            )
        reported = k == last or not last_only
        fixed = fixed_test(test_c, test_t, alpha=exp.alpha) if reported else SKIPPED
        if exp.sequential_method == "group":
            group_history.append((test_c, test_t))
            planned = exp.planned_users or exp.sequential_tuning
            sequential = (
                group_sequential_test(
                    group_history, alpha=exp.alpha, planned_users=planned
                )
                if reported
                else NOT_COMPUTED
            )
        else:  # the mixture test runs on every look, below, in one call
            mixture_looks.append((test_c, test_t))
            sequential = NOT_COMPUTED
        bayesian = (
            bayesian_test(
                test_c,
                test_t,
                alpha=exp.alpha,
                direction=metric.direction,
                prior_mean=prior_mean,
                prior_sd=prior_sd,
            )
            if reported
            else SKIPPED_BAYESIAN
        )
        looks.append(Look(control, treatment, fixed, sequential, bayesian, cuped))
    if exp.sequential_method == "mixture":
        raw_sequential = sequential_tests(
            mixture_looks, alpha=exp.alpha, tuning=exp.sequential_tuning
        )
        # The intervals are asymptotic: carry them only from the first look where
        # the normal approximation holds, so a noisy first day cannot pin them.
        burn_in = next(
            (i for i, lk in enumerate(looks) if _normal_enough(lk)), len(looks)
        )
        running = raw_sequential[:burn_in] + running_sequential(
            raw_sequential[burn_in:]
        )
        looks = [
            Look(lk.control, lk.treatment, lk.fixed, seq, lk.bayesian, lk.cuped)
            for lk, seq in zip(looks, running, strict=True)
        ]
    return looks


def _normal_enough(look: Look) -> bool:
    """Both arms large enough for the delta method: CV of each mean ≤ 5%.

    The first-order (delta-method) relative interval is reliable only when the
    coefficient of variation of the denominator mean is small (Kohavi, Tang & Xu
    2020, *Trustworthy Online Controlled Experiments*, ch. 18).
    """
    for arm in (look.control, look.treatment):
        stats = arm.stats
        if arm.n < MIN_USERS_PER_ARM or not stats.mean or math.isnan(stats.var):
            return False
        if math.sqrt(stats.var / arm.n) / abs(stats.mean) > MAX_MEAN_CV:
            return False
    return True


# --- the experiment -----------------------------------------------------------------


def is_significant(
    exp: Experiment, look: Look, adjusted_p: float, family_size: int, role: Role
) -> bool:
    """Significance under the experiment's decision method (family-corrected)."""
    alpha = exp.alpha
    if exp.decision == "fixed":
        return adjusted_p < alpha
    if exp.decision == "sequential":
        # Bonferroni across the family for always-valid p-values.
        split = alpha if role == "guardrail" else alpha / max(family_size, 1)
        return look.sequential.p_value < split
    prob = look.bayesian.prob_beat_control
    if math.isnan(prob):
        return False
    return prob >= 1 - alpha / 2 or prob <= alpha / 2


def _effective_delta(exp: Experiment, look: Look) -> tuple[float, float]:
    """The (abs, rel) delta the tests used: CUPED-adjusted when it applied."""
    if look.cuped is not None and not math.isnan(look.cuped.abs_delta):
        return look.cuped.abs_delta, look.cuped.rel_delta
    return look.fixed.abs_delta, look.fixed.rel_delta


def _method_cis(
    exp: Experiment, look: Look
) -> tuple[tuple[float, float], tuple[float, float]]:
    if exp.decision == "sequential":
        return look.sequential.rel_ci, look.sequential.abs_ci
    if exp.decision == "bayesian":
        return look.bayesian.rel_ci, look.fixed.abs_ci
    return look.fixed.rel_ci, look.fixed.abs_ci


def _finished(
    exp: Experiment, as_of: dt.date, total_users: int, last_data: dt.date | None
) -> bool:
    """Past its end (with data through the end day) or at its planned size."""
    seen_until = min(as_of, last_data) if last_data is not None else as_of
    if exp.end is not None and seen_until >= exp.end:
        return True
    return exp.planned_users is not None and total_users >= exp.planned_users


def recommend(
    exp: Experiment,
    results: Sequence[MetricResult],
    srm_ok: bool,
    finished: bool,
) -> Recommendation:
    """Ship, roll back, review or keep running, from primaries and guardrails."""
    if not srm_ok:
        return Recommendation(
            "review",
            "The traffic split does not match the configured weights (sample-ratio "
            "mismatch), so no result can be trusted until the assignment is fixed.",
        )
    if exp.decision == "fixed" and not finished:
        return Recommendation(
            "keep_running",
            "A fixed-horizon test is read once, at its planned end; "
            "keep it running until then.",
        )
    by_arm = {v: [r for r in results if r.variant == v] for v in exp.treatments}
    losses = [
        r for r in results if r.verdict == "loss" and r.role in ("primary", "guardrail")
    ]
    shippable = [
        v
        for v, rows in by_arm.items()
        if all(r.verdict == "win" for r in rows if r.role == "primary")
        and not any(r.verdict == "loss" for r in rows if r.role == "guardrail")
        and any(r.role == "primary" for r in rows)
    ]
    if shippable:
        best = shippable[0]
        wins = ", ".join(r.metric.label for r in by_arm[best] if r.role == "primary")
        return Recommendation(
            "ship",
            f"{best} wins on {wins} with no guardrail harmed.",
        )
    if losses:
        worst = losses[0]
        kind = "guardrail" if worst.role == "guardrail" else "primary metric"
        return Recommendation(
            "roll_back",
            f"{worst.variant} significantly hurts the {kind} "
            f"{worst.metric.label}; roll it back.",
        )
    if not finished:
        return Recommendation(
            "keep_running",
            "No primary metric has reached significance yet; "
            "the test can still decide, keep it running.",
        )
    harmed = [r for r in results if r.verdict == "loss"]
    if harmed:
        worst = harmed[0]
        return Recommendation(
            "review",
            f"No primary metric moved significantly, but {worst.variant} worsens "
            f"{worst.metric.label} ({worst.rel_delta:+.1%}); review before deciding.",
        )
    return Recommendation(
        "review",
        "The test ran its course without a significant change in the primary "
        "metric; review whether to ship on other grounds.",
    )


def _warnings(
    exp: Experiment,
    users: dict[str, int],
    multiple: int,
    health: ExperimentHealth,
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
    return tuple(out)


def _rows_by_arm(daily: pl.DataFrame) -> dict[tuple[str, str], list[dict]]:
    """Daily summary rows of each (metric, variant), oldest first."""
    rows = daily.sort("metric", "variant", "day").to_dicts()
    return {
        key: list(group)
        for key, group in itertools.groupby(rows, lambda r: (r["metric"], r["variant"]))
    }


def analyze_history(
    exp: Experiment, catalog: Catalog, summaries: Summaries, *, last_only: bool = False
) -> list[ExperimentResult]:
    """The experiment as it stood at the end of each day from its start to as-of.

    Args:
        exp: the experiment config.
        catalog: the metric catalog.
        summaries: the log's summaries (must include this experiment).
        last_only: build only the as-of day's result (the timelines are computed
            in full either way, for the running sequential tests).

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
    timelines: dict[tuple[str, str], list[Look]] = {}
    rows = _rows_by_arm(daily)
    for metric_id, _ in exp.metric_roles:
        metric = catalog[metric_id]
        control_rows = rows[metric_id, exp.control]
        for variant in exp.treatments:
            timelines[metric_id, variant] = _timeline(
                exp,
                metric,
                control_rows,
                rows[metric_id, variant],
                last_only=last_only,
            )
    family = [key for key in timelines if roles[key[0]] != "guardrail"]
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
        raw_p = [timelines[key][k].fixed.p_value for key in family]
        adjusted = dict(
            zip(family, adjust_p_values(raw_p, exp.correction), strict=True)
        )
        results = []
        for (metric_id, variant), looks in timelines.items():
            look = looks[k]
            metric = catalog[metric_id]
            role = roles[metric_id]
            adj_p = adjusted.get((metric_id, variant), look.fixed.p_value)
            significant = is_significant(exp, look, adj_p, len(family), role)
            abs_d, rel_d = _effective_delta(exp, look)
            verdict = verdict_of(
                metric, significant, rel_d if not math.isnan(rel_d) else abs_d
            )
            rel_ci, abs_ci = _method_cis(exp, look)
            results.append(
                MetricResult(
                    metric=metric,
                    variant=variant,
                    role=role,
                    control=look.control,
                    treatment=look.treatment,
                    abs_delta=look.treatment.value - look.control.value,
                    rel_delta=_rel(look.control.value, look.treatment.value),
                    fixed=look.fixed,
                    adjusted_p_value=adj_p,
                    sequential=look.sequential,
                    bayesian=look.bayesian,
                    significant=significant,
                    verdict=verdict,
                    summary=summarize_result(
                        metric,
                        variant,
                        rel_d,
                        abs_d,
                        rel_ci,
                        abs_ci,
                        verdict,
                        exp.alpha,
                    ),
                    cuped=look.cuped,
                    reason=look.fixed.reason,
                    beta_binomial=_beta_binomial(metric, look)
                    if k == len(days) - 1
                    else None,
                )
            )
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
                warnings=_warnings(exp, users, multiple, health, srm, results),
                finished=finished,
                provenance=provenance,
            )
        )
    return out


def _beta_binomial(metric: MetricDef, look: Look) -> tuple[float, float] | None:
    """Exact Beta(1,1)-binomial P(better) and expected loss, for proportions."""
    c, t = look.control.stats, look.treatment.stats
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
