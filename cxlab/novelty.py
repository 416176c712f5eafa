"""The novelty check: does a treatment's effect fade with days since first exposure?

Per metric and treatment, the lift on the events of each exposure-age bucket
(:data:`cxlab.summaries.novelty.BUCKETS`: day 1, days 2–7, 8–14, 15+, counted
from each user's first exposure), each with its fixed-horizon interval from
:func:`cxlab.stats.fixed.fixed_test` at the experiment's alpha. There is no
multiplicity correction: the check is a diagnostic beside the decision, never a
decision. The sums come from the same scan as every other result
(:mod:`cxlab.summaries.novelty`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from cxlab import metrics
from cxlab.config import Catalog, Experiment, MetricDef
from cxlab.decision import format_delta, in_points
from cxlab.stats.fixed import FixedResult, fixed_test
from cxlab.summaries import Summaries
from cxlab.summaries.novelty import BUCKET, BUCKETS, NOVELTY_SUMS, splits

# The analysis' too-few-users line (cxlab.analysis.MIN_USERS_PER_ARM): a smaller
# bucket is drawn but not quoted.
MIN_USERS_PER_BUCKET = 100
Pattern = Literal[
    "fades", "grows", "reverses", "steady", "too little data", "not applicable"
]


@dataclass(frozen=True, slots=True)
class AgeLift:
    """One exposure-age bucket: the arms on its events and their comparison.

    Attributes:
        label: the bucket's name ("day 1", "days 2–7", …).
        control_n: control's population in the bucket (users who reached it, or
            the responders in it for an NPS).
        treatment_n: the same in the treatment.
        control_value: control's metric value on the bucket's events.
        treatment_value: the same in the treatment.
        fixed: the fixed-horizon test at the experiment's alpha, uncorrected.
    """

    label: str
    control_n: int
    treatment_n: int
    control_value: float
    treatment_value: float
    fixed: FixedResult


@dataclass(frozen=True, slots=True)
class NoveltyCheck:
    """Whether one metric's effect for one treatment changes with exposure age.

    Attributes:
        metric: the metric.
        variant: the treatment.
        alpha: the level of each bucket's interval (the experiment's, uncorrected).
        buckets: the buckets the metric has events in, youngest first (empty
            when the check does not apply).
        pattern: fades, grows, reverses, steady, too little data or not
            applicable
            (see :func:`novelty_pattern`).
        sentence: the pattern in words, quoting the first and last buckets.
    """

    metric: MetricDef
    variant: str
    alpha: float
    buckets: tuple[AgeLift, ...]
    pattern: Pattern
    sentence: str


def novelty_checks(
    exp: Experiment, catalog: Catalog, summaries: Summaries, day: dt.date
) -> tuple[NoveltyCheck, ...]:
    """Every metric's and treatment's novelty check as of the end of ``day``.

    Args:
        exp: the experiment.
        catalog: the metric catalog.
        summaries: the log's summaries; their ``novelty`` table holds the
            buckets' daily changes.
        day: the as-of day.

    Returns:
        One check per (metric, treatment), in the experiment's metric order.
    """
    table = summaries.novelty
    upto = (
        None
        if table is None
        else table.filter((pl.col("experiment_id") == exp.id) & (pl.col("day") <= day))
        .group_by("metric", "variant", BUCKET)
        .agg(pl.col("users", metrics.RESPONDERS, *NOVELTY_SUMS).sum())
    )
    # One row per (metric, variant, bucket): looked up, not filtered, per lift.
    cells = {
        (row["metric"], row["variant"], row[BUCKET]): row
        for row in ([] if upto is None else upto.iter_rows(named=True))
    }
    out = []
    for metric_id, _ in exp.metric_roles:
        metric = catalog[metric_id]
        for variant in exp.treatments:
            reason = _not_applicable(metric, upto is None)
            if reason is not None or upto is None:
                out.append(
                    NoveltyCheck(
                        metric, variant, exp.alpha, (), "not applicable", reason or ""
                    )
                )
                continue
            buckets = sorted({b for m, _, b in cells if m == metric_id})
            lifts = tuple(
                _lift(metric, cells, b, exp.control, variant, exp.alpha)
                for b in buckets
            )
            pattern, sentence = novelty_pattern(metric, lifts)
            out.append(
                NoveltyCheck(metric, variant, exp.alpha, lifts, pattern, sentence)
            )
    return tuple(out)


def _not_applicable(metric: MetricDef, no_table: bool) -> str | None:
    """Why a metric has no novelty check, or None when it has one."""
    if metric.cap is not None:
        return (
            "The novelty check does not apply to a capped mean: its cap is pooled "
            "over the whole period, not per day since exposure."
        )
    if not splits(metric):
        return (
            f"The novelty check does not apply to {metric.type.replace('_', '-')} "
            "metrics: it compares one lift per exposure age, and these results "
            "are per category or a time to an event."
        )
    if no_table:
        return "The novelty check needs the Polars engine's summaries."
    return None


def _lift(
    metric: MetricDef,
    cells: Mapping[tuple[str, str, int], Mapping[str, Any]],
    bucket: int,
    control: str,
    variant: str,
    alpha: float,
) -> AgeLift:
    """One bucket's arms and their fixed test.

    ``cells`` hold the summed changes by (metric, variant, bucket); a missing one
    counts as zero.
    """
    arms = []
    for name in (control, variant):
        found = cells.get((metric.id, name, bucket), {})
        sums = {
            c: float(found.get(c) or 0.0) for c in (metrics.RESPONDERS, *NOVELTY_SUMS)
        }
        kind = metrics.metric_type(metric)
        n = sums[metrics.RESPONDERS] if kind.population == "responders" else None
        users = int(found.get("users") or 0) if n is None else round(n)
        arms.append(metrics.arm_stats(metric, {"n": users, **sums}))
    c, t = arms
    return AgeLift(
        label=BUCKETS[bucket][0],
        control_n=c.n,
        treatment_n=t.n,
        control_value=c.mean,
        treatment_value=t.mean,
        fixed=fixed_test(c, t, alpha=alpha),
    )


def shown(metric: MetricDef, fixed: FixedResult) -> tuple[float, tuple[float, float]]:
    """A bucket's estimate and interval as the check reads them (NPS in points)."""
    if in_points(metric):
        return fixed.abs_delta, fixed.abs_ci
    return fixed.rel_delta, fixed.rel_ci


def novelty_pattern(
    metric: MetricDef, lifts: tuple[AgeLift, ...]
) -> tuple[Pattern, str]:
    """How the effect moves from day 1 to the oldest bucket that can be read.

    The rule: a bucket can be read when its interval is finite and each arm has
    at least :data:`MIN_USERS_PER_BUCKET` users (NPS: responders), the analysis'
    own too-few-users line, so that one small, noisy bucket cannot make the
    sentence. The day-1 bucket is compared with the oldest readable one
    (relative lift; NPS in points). When their intervals do not overlap the
    effect changed with exposure age: it *fades* when the later estimate is
    smaller in size, *grows* when it is larger with the same sign, *reverses*
    when it is larger with the other sign. Overlapping intervals are *steady*
    ("no sign of novelty"). Without a readable day 1 and a later readable bucket
    it is *too little data*. Non-overlap of two 1 − α intervals is a conservative test
    of their difference (Schenker & Gentleman 2001, "On judging the significance
    of differences by examining the overlap between confidence intervals", The
    American Statistician 55(3), DOI:10.1198/000313001317097960); the buckets
    share users, so an exact test of the difference would need their covariance,
    which the summaries do not keep. No correction for the many buckets, metrics
    and treatments: a diagnostic, not a decision.

    Args:
        metric: the metric (its delta scale).
        lifts: the buckets, youngest first.

    Returns:
        The pattern and a sentence quoting the two buckets' estimates.
    """
    usable = [
        lift
        for lift in lifts
        if all(math.isfinite(v) for v in shown(metric, lift.fixed)[1])
        and min(lift.control_n, lift.treatment_n) >= MIN_USERS_PER_BUCKET
    ]
    if not usable or usable[0].label != BUCKETS[0][0] or len(usable) < 2:
        return "too little data", (
            "Too little data to tell whether the effect fades: day 1 and a later "
            f"bucket each need {MIN_USERS_PER_BUCKET} users per arm (NPS: "
            "responders) and an interval."
        )
    first, last = usable[0], usable[-1]
    (a, (a_lo, a_hi)), (b, (b_lo, b_hi)) = (
        shown(metric, first.fixed),
        shown(metric, last.fixed),
    )
    quoted = (
        f"{format_delta(metric, a, 'rel')} on {first.label}, "
        f"{format_delta(metric, b, 'rel')} {_when(last.label)}"
    )
    if a_hi >= b_lo and b_hi >= a_lo:
        return "steady", f"No sign of novelty: {quoted}; the intervals overlap."
    if abs(b) < abs(a):
        return "fades", f"The effect fades: {quoted}."
    if (a > 0) == (b > 0):
        return "grows", f"The effect grows: {quoted}."
    return "reverses", f"The effect reverses: {quoted}."


def _when(label: str) -> str:
    """The bucket in a sentence: "from day 15" (the open one), "on days 8–14"."""
    open_from = BUCKETS[-1][1] // 24 + 1
    return f"from day {open_from}" if label == BUCKETS[-1][0] else f"on {label}"
