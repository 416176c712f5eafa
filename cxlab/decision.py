"""The one place that decides: levels, intervals, significance, verdicts, words.

Every surface (the JSON, CSV and table of the CLI, every page, the portfolio, the
config preview, the exports) reads what this module decides and recomputes none
of it. Per result and per method (fixed, sequential, Bayesian) a :class:`Call`
holds:

* the level ``alpha``: the experiment's alpha after its ``correction`` across the
  result's family (treatments × non-guardrail metrics; a metric with one result
  per category corrects across them, see :class:`Entry`). With raw p-value p
  and adjusted p̃, the per-result level α·p/p̃ rejects exactly when p̃ ≤ α
  (CONTRACT §4, "One set of numbers"); guardrails are outside the family and
  keep α;
* the intervals at 1 − that level, computed by the method's own test, so the
  intervals exclude 0 exactly when the result is significant (abs and rel agree:
  :func:`cxlab.stats.delta.agreeing_rel_ci`);
* ``significant`` and the ``verdict`` in the metric's good direction.

The result's ``significant``, ``verdict`` and ``summary`` are the call of the
experiment's ``decision`` method; the recommendation reads those verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from cxlab.config import Experiment, MetricDef, Role
from cxlab.metrics import metric_type
from cxlab.stats.aggregates import ArmStats
from cxlab.stats.bayesian import BayesianResult, bayesian_test
from cxlab.stats.corrections import adjust_p_values
from cxlab.stats.fixed import FixedResult, fixed_test
from cxlab.stats.noninferiority import (
    NonInferiority,
    bayesian_non_inferiority,
    fixed_non_inferiority,
    sequential_non_inferiority,
)
from cxlab.stats.sequential import (
    SequentialResult,
    group_sequential_test,
    sequential_test,
)

Method = Literal["sequential", "fixed", "bayesian"]
METHODS: tuple[Method, ...] = ("sequential", "fixed", "bayesian")
Verdict = Literal["win", "loss", "inconclusive"]
Action = Literal["ship", "roll_back", "review", "keep_running"]
Scale = Literal["rel", "abs"]


@dataclass(frozen=True, slots=True)
class Call:
    """How one method reads one result, at the level the correction leaves it.

    Attributes:
        method: ``fixed``, ``sequential`` or ``bayesian``.
        alpha: the per-result level: α·p/p̃ in the family, α for a guardrail.
        p_value: the raw statistic corrected across the family: the fixed
            p-value, the always-valid p-value, or the posterior two-sided tail
            2·min(P(L > 0), P(L < 0)).
        adjusted_p_value: p̃, after the experiment's correction.
        abs_delta: the estimate the intervals are built around (CUPED-adjusted
            where CUPED applied; the posterior mean for the Bayesian call).
        rel_delta: the same on the relative scale.
        abs_ci: the 1 − alpha interval of abs_delta.
        rel_ci: the 1 − alpha interval of rel_delta.
        significant: p̃ ≤ α, exactly when both intervals exclude 0.
        verdict: win or loss in the metric's good direction when significant.
    """

    method: Method
    alpha: float
    p_value: float
    adjusted_p_value: float
    abs_delta: float
    rel_delta: float
    abs_ci: tuple[float, float]
    rel_ci: tuple[float, float]
    significant: bool
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class Tests:
    """One look's tests of one result at the experiment's own alpha (raw).

    Attributes:
        control: the control arm as tested (CUPED-adjusted where it applied).
        treatment: the treatment arm as tested.
        fixed: the fixed-horizon test.
        sequential: the sequential test (mixture or group).
        bayesian: the Bayesian test.
        group_looks: the tested arms of every look so far (group test only).
    """

    control: ArmStats
    treatment: ArmStats
    fixed: FixedResult
    sequential: SequentialResult
    bayesian: BayesianResult
    group_looks: tuple[tuple[ArmStats, ArmStats], ...] = ()


EXPERIMENT_FAMILY = "experiment"


@dataclass(frozen=True, slots=True)
class Entry:
    """One result to decide: its metric, treatment, role and raw tests.

    ``family`` names the results its correction spans: by default every
    non-guardrail result of the experiment (:data:`EXPERIMENT_FAMILY`); None for
    a result outside any family (a guardrail); a metric with several results
    per treatment (one per category) may name its own family.
    """

    metric: MetricDef
    variant: str
    role: Role
    tests: Tests
    family: str | None = EXPERIMENT_FAMILY


@dataclass(frozen=True, slots=True)
class Decided:
    """One result decided: each method's test at its level, calls and words.

    Attributes:
        fixed: the fixed test at the fixed call's level.
        sequential: the sequential test at the sequential call's level.
        bayesian: the Bayesian test at the Bayesian call's level.
        calls: the three calls, by method.
        method: the experiment's decision method.
        summary: one sentence quoting the decision call's estimate and interval.
        non_inferiority: a guardrail's non-inferiority test under the decision
            method, with the experiment's ``guardrail_margin`` (else None).
    """

    fixed: FixedResult
    sequential: SequentialResult
    bayesian: BayesianResult
    calls: Mapping[Method, Call]
    method: Method
    summary: str
    non_inferiority: NonInferiority | None = None

    @property
    def call(self) -> Call:
        """The call of the method in force."""
        return self.calls[self.method]


@dataclass(frozen=True, slots=True)
class Recommendation:
    """What to do with the experiment, and why, in one sentence."""

    action: Action
    reason: str


def decide(exp: Experiment, entries: Sequence[Entry]) -> list[Decided]:
    """Levels, intervals, calls and sentences of one look's results.

    Args:
        exp: the experiment (alpha, correction, decision method, tuning).
        entries: every (metric, treatment) result of the look.

    Returns:
        One :class:`Decided` per entry, in order.
    """
    families: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        if entry.family is not None and entry.role != "guardrail":
            families.setdefault(entry.family, []).append(i)
    levels: dict[Method, list[tuple[float, float, float]]] = {}
    for method in METHODS:
        raw = [getattr(e.tests, method).p_value for e in entries]
        adjusted: dict[int, float] = {}
        size: dict[int, int] = {}
        for members in families.values():
            ps = adjust_p_values([raw[i] for i in members], exp.correction)
            adjusted |= dict(zip(members, ps, strict=True))
            size |= dict.fromkeys(members, len(members))
        levels[method] = [
            _level(exp.alpha, p, adjusted.get(i, p), size.get(i, 1))
            for i, p in enumerate(raw)
        ]
    out = []
    for i, entry in enumerate(entries):
        tests = entry.tests
        fixed = _fixed_at(tests, levels["fixed"][i][0], exp)
        sequential = _sequential_at(tests, levels["sequential"][i][0], exp)
        bayesian = _bayesian_at(tests, levels["bayesian"][i][0], exp, entry.metric)
        calls: dict[Method, Call] = {
            method: _call(method, entry, levels[method][i], result, exp.alpha)
            for method, result in (
                ("fixed", fixed),
                ("sequential", sequential),
                ("bayesian", bayesian),
            )
        }
        call = calls[exp.decision]
        out.append(
            Decided(
                fixed=fixed,
                sequential=sequential,
                bayesian=bayesian,
                calls=calls,
                method=exp.decision,
                summary=sentence(entry.metric, entry.variant, call),
                non_inferiority=_non_inferiority(exp, entry),
            )
        )
    return out


def _non_inferiority(exp: Experiment, entry: Entry) -> NonInferiority | None:
    """A guardrail's non-inferiority test at alpha, under the decision method."""
    margin = exp.guardrail_margin
    if margin is None or entry.role != "guardrail":
        return None
    tests, direction = entry.tests, entry.metric.direction
    if exp.decision == "bayesian":
        return bayesian_non_inferiority(
            tests.bayesian.posterior_mean,
            tests.bayesian.posterior_sd,
            margin=margin,
            direction=direction,
            alpha=exp.alpha,
        )
    if exp.decision == "sequential":
        return sequential_non_inferiority(
            tests.control,
            tests.treatment,
            margin=margin,
            direction=direction,
            alpha=exp.alpha,
            tuning=exp.sequential_tuning,
        )
    return fixed_non_inferiority(
        tests.control,
        tests.treatment,
        margin=margin,
        direction=direction,
        alpha=exp.alpha,
    )


def _level(
    alpha: float, p: float, adjusted: float, family_size: int
) -> tuple[float, float, float]:
    """(level, raw p, adjusted p): the level α·p/p̃ that rejects iff p̃ ≤ α.

    A p-value of 0 (an underflow) has no ratio; it is significant at any level,
    and its intervals are drawn at the strictest family level α/m.
    """
    if math.isnan(p) or math.isnan(adjusted) or adjusted == p:
        return alpha, p, adjusted  # outside the family, or not raised by it
    if adjusted == 0:
        return alpha / max(family_size, 1), p, adjusted
    return alpha * p / adjusted, p, adjusted


def _fixed_at(tests: Tests, level: float, exp: Experiment) -> FixedResult:
    if level == exp.alpha:
        return tests.fixed
    return fixed_test(tests.control, tests.treatment, alpha=level)


def _sequential_at(tests: Tests, level: float, exp: Experiment) -> SequentialResult:
    if level == exp.alpha:
        return tests.sequential
    if tests.sequential.method == "group":
        result = group_sequential_test(
            tests.group_looks,
            alpha=level,
            planned_users=exp.planned_users or exp.sequential_tuning,
        )
        # The repeated p-value does not depend on the level; keep the one the
        # correction used (the search is bracketed at the level it runs at).
        return replace(result, p_value=tests.sequential.p_value)
    return sequential_test(
        tests.control,
        tests.treatment,
        alpha=level,
        tuning=exp.sequential_tuning,
        tuned_alpha=exp.alpha,
    )


def _bayesian_at(
    tests: Tests, level: float, exp: Experiment, metric: MetricDef
) -> BayesianResult:
    if level == exp.alpha:
        return tests.bayesian
    prior = exp.bayes_prior
    return bayesian_test(
        tests.control,
        tests.treatment,
        alpha=level,
        direction=metric.direction,
        prior_mean=prior.mean if prior else 0.0,
        prior_sd=prior.sd if prior else None,
    )


def _call(
    method: Method,
    entry: Entry,
    level: tuple[float, float, float],
    result: FixedResult | SequentialResult | BayesianResult,
    alpha: float,
) -> Call:
    per_result, p, adjusted = level
    if isinstance(result, BayesianResult):
        rel_delta = result.posterior_mean
        abs_delta = rel_delta * entry.tests.control.mean  # as its abs_ci
    else:
        abs_delta, rel_delta = result.abs_delta, result.rel_delta
    significant = bool(adjusted <= alpha)
    return Call(
        method=method,
        alpha=per_result,
        p_value=p,
        adjusted_p_value=adjusted,
        abs_delta=abs_delta,
        rel_delta=rel_delta,
        abs_ci=result.abs_ci,
        rel_ci=result.rel_ci,
        significant=significant,
        verdict=verdict_of(entry.metric, significant, abs_delta),
    )


def verdict_of(metric: MetricDef, significant: bool, delta: float) -> Verdict:
    """Win or loss in the metric's good direction when significant."""
    if not significant or math.isnan(delta) or delta == 0:
        return "inconclusive"
    good = delta > 0 if metric.direction == "increase" else delta < 0
    return "win" if good else "loss"


# --- words ------------------------------------------------------------------------


def level_text(call: Call) -> str:
    """``95% CI`` / ``98.75% credible interval``: the interval's name and level."""
    kind = "credible interval" if call.method == "bayesian" else "CI"
    return f"{_percent_level(1 - call.alpha)} {kind}"


def _percent_level(share: float) -> str:
    text = f"{share * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def signed_points(x: float) -> str:
    """Signed points with one decimal: ``+4.4``."""
    return f"{x:+.1f}".replace("-", "−")


def sentence(metric: MetricDef, variant: str, call: Call) -> str:
    """One plain sentence: what the treatment did, with the call's own interval.

    NPS (and any type whose deltas read in points) is quoted in points, every
    other metric as a relative change, or in its own unit when the relative change
    is undefined (a zero control value).
    """
    scale: Scale = "rel" if _all_finite(call.rel_ci) else "abs"
    scale = shown_scale(metric, scale)
    delta = call.rel_delta if scale == "rel" else call.abs_delta
    lo, hi = call.rel_ci if scale == "rel" else call.abs_ci
    if not _all_finite((delta, lo, hi)):
        return f"{variant}: not enough data to compare {metric.label} yet."
    if in_points(metric):
        verb = "raised" if delta > 0 else "lowered"
        size, ends = f"{abs(delta):.1f} points", (signed_points(lo), signed_points(hi))
    else:
        verb = "raised" if delta > 0 else "cut"
        size = format_delta(metric, abs(delta), scale).lstrip("+")
        ends = (format_delta(metric, lo, scale), format_delta(metric, hi, scale))
    tail = {
        "win": " — a win.",
        "loss": " — a loss.",
        "inconclusive": "; not significant.",
    }[call.verdict]
    return (
        f"{variant} {verb} {metric.label} by {size} "
        f"({level_text(call)} {ends[0]} to {ends[1]}){tail}"
    )


def _all_finite(values: Sequence[float]) -> bool:
    return all(math.isfinite(v) for v in values)


def in_points(metric: MetricDef) -> bool:
    """Whether the metric's deltas are read in points (NPS), not as a relative %."""
    return metric_type(metric).delta_in_points


def effect_text(metric: MetricDef, call: Call) -> str:
    """The call's estimate as the sentence quotes it: ``+4.4 points`` or ``−4.8%``."""
    if in_points(metric):
        return f"{signed_points(call.abs_delta)} points"
    return format_delta(metric, call.rel_delta, "rel")


# --- the recommendation -----------------------------------------------------------


class Scored(Protocol):
    """A decided result as the recommendation reads it."""

    metric: MetricDef
    variant: str
    role: Role
    verdict: Verdict
    non_inferiority: NonInferiority | None

    @property
    def call(self) -> Call: ...  # noqa: D102

    @property
    def answers_suspect(self) -> bool: ...  # noqa: D102


def recommend(
    exp: Experiment, results: Sequence[Scored], srm_ok: bool, finished: bool
) -> Recommendation:
    """Ship, roll back, review or keep running, from primaries and guardrails.

    With a ``guardrail_margin`` a winner ships only once every guardrail is shown
    non-inferior; until then the call is "not yet shown safe". When a treatment
    changed who answers a survey (NPS), the reason says the comparison is suspect.

    Args:
        exp: the experiment.
        results: its decided results (verdicts of the decision method).
        srm_ok: whether the traffic split matches the weights.
        finished: past its end, or at its planned size.

    Returns:
        The :class:`Recommendation`.
    """
    rec = _recommend(exp, results, srm_ok, finished)
    return Recommendation(rec.action, rec.reason + _suspect_answers(results))


def _recommend(
    exp: Experiment, results: Sequence[Scored], srm_ok: bool, finished: bool
) -> Recommendation:
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
    winners = [
        v
        for v, rows in by_arm.items()
        if all(r.verdict == "win" for r in rows if r.role == "primary")
        and not any(r.verdict == "loss" for r in rows if r.role == "guardrail")
        and any(r.role == "primary" for r in rows)
    ]
    for best in winners:
        wins = ", ".join(r.metric.label for r in by_arm[best] if r.role == "primary")
        unproven = [
            r.metric.label
            for r in by_arm[best]
            if r.non_inferiority is not None and not r.non_inferiority.passed
        ]
        if not unproven:
            safe = (
                f"every guardrail shown safe within {exp.guardrail_margin:.0%}"
                if exp.guardrail_margin is not None
                else "no guardrail harmed"
            )
            return Recommendation("ship", f"{best} wins on {wins} with {safe}.")
        if best == winners[-1]:
            margin = f"{exp.guardrail_margin:.0%}"
            return Recommendation(
                "review" if finished else "keep_running",
                f"{best} wins on {wins}, but {', '.join(unproven)} "
                f"{'is' if len(unproven) == 1 else 'are'} not yet shown safe "
                f"(within {margin}); "
                + ("review before shipping." if finished else "keep it running."),
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
            f"{worst.metric.label} ({effect_text(worst.metric, worst.call)}); "
            "review before deciding.",
        )
    return Recommendation(
        "review",
        "The test ran its course without a significant change in the primary "
        "metric; review whether to ship on other grounds.",
    )


def _suspect_answers(results: Sequence[Scored]) -> str:
    """A sentence when a treatment changed who answers a survey, else ''."""
    suspect = sorted({r.metric.label for r in results if r.answers_suspect})
    if not suspect:
        return ""
    return (
        f" Beware: the treatment changed who answers ({', '.join(suspect)}), so "
        "that comparison is suspect."
    )


def format_value(metric: MetricDef, value: float) -> str:
    """A metric value on its own scale: 12.01%, €4.52, 31.5 (NPS), 0.1234."""
    if value is None or math.isnan(value):
        return "—"
    if in_points(metric):
        return f"{value:.1f}"
    fmt = metric.value_format
    if fmt == "percent":
        return f"{value * 100:.2f}%"
    if fmt == "currency":
        return f"€{value:,.2f}"
    return f"{value:.4g}"


def shown_scale(metric: MetricDef, scale: Scale) -> Scale:
    """The scale a metric's deltas are shown on: NPS always in points (absolute)."""
    return "abs" if in_points(metric) else scale


def format_lift(value: float | None) -> str:
    """A relative delta in % with its sign: ``+1.2%``, ``−0.4%``, ``—`` when missing.

    How :func:`format_delta` shows every relative delta; also for a chart that
    has lifts but no metric (the segment forest).
    """
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value * 100:+.1f}%".replace("-", "−")


def format_delta(metric: MetricDef, value: float, scale: Scale) -> str:
    """A signed delta: relative in %, absolute in the metric's unit (NPS in points)."""
    if shown_scale(metric, scale) == "rel":
        return format_lift(value)
    if value is None or not math.isfinite(value):
        return "—"
    if in_points(metric):
        text = f"{value:+.1f} pts"
    elif metric.value_format == "percent":
        text = f"{value * 100:+.2f} pp"
    elif metric.value_format == "currency":
        text = f"{'+' if value >= 0 else '-'}€{abs(value):,.2f}"
    else:
        text = f"{value:+.4g}"
    return text.replace("-", "−")
