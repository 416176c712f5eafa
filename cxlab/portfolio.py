"""The portfolio of experiments: one row each, headline tiles, shipped impact.

Pure functions over analysed experiments (:class:`cxlab.analysis.ExperimentResult`);
no Streamlit. The combined effect of shipped experiments is never a raw sum of lifts:
each shipped lift is first shrunk toward zero by empirical Bayes (winners are
selected for looking good, so their raw estimates are biased upward), then the
shrunk lifts are combined multiplicatively with a delta-method interval.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as sps

from cxlab.analysis import ExperimentResult, MetricResult
from cxlab.charts import BADGES, ci_text
from cxlab.decision import effect_text, in_points, level_text
from stats.shrinkage import (
    combine_additive,
    combine_multiplicative,
    shrink,
    tau2_moments,
)

DECIDED = ("shipped", "rolled_back", "stopped")
IMPACT_METRICS = ("conversion", "nps", "contacts_per_order")


# --- one row per experiment -----------------------------------------------------------


def status_of(result: ExperimentResult) -> str:
    """The status as of the result's day.

    Before its start an experiment is ``planned`` and before its end ``running``,
    whatever its config says (the config's ``status`` describes the present, not
    an earlier as-of day); after that, the configured status, else ``stopped``
    once finished and ``running`` until then.
    """
    exp = result.experiment
    if result.as_of < exp.start:
        return "planned"
    if exp.end is not None and result.as_of < exp.end:
        return "running"
    if exp.status is not None:
        return exp.status
    return "stopped" if result.finished else "running"


def headline_row(result: ExperimentResult) -> MetricResult | None:
    """The primary-metric row that speaks for the experiment.

    With several treatments: the recommended one when the engine says ship, else
    the first primary row with a win, then with a loss, else the one most likely
    to beat control.
    """
    primaries = [r for r in result.results if r.role == "primary"]
    if not primaries:
        return None
    for verdict in ("win", "loss"):
        for row in primaries:
            if row.verdict == verdict:
                return row
    return max(primaries, key=lambda r: _prob(r))


def _prob(row: MetricResult) -> float:
    prob = row.bayesian.prob_beat_control
    return -1.0 if math.isnan(prob) else prob


def shipped_variant(result: ExperimentResult) -> str:
    """Which treatment a shipped experiment shipped.

    The treatment the engine recommends shipping when there is one, else the one
    most likely to beat control on the primary metric (configs do not name it).
    """
    row = headline_row(result)
    if row is not None and row.verdict == "win":
        return row.variant
    primaries = [r for r in result.results if r.role == "primary"]
    if primaries:
        return max(primaries, key=_prob).variant
    return result.experiment.treatments[0]


def guardrail_state(result: ExperimentResult) -> str:
    """The guardrails: "harmed: <metrics>", "ok", or "none" when there are none."""
    guards = [r for r in result.results if r.role == "guardrail"]
    if not guards:
        return "none"
    harmed = sorted({r.metric.label for r in guards if r.verdict == "loss"})
    return f"harmed: {', '.join(harmed)}" if harmed else "ok"


def health_dot(result: ExperimentResult) -> str:
    """A health badge: SRM (sample-ratio mismatch), check (other warnings) or ok."""
    if not result.srm.ok:
        return "● SRM"
    return "● check" if result.warnings else "● ok"


def days_run(result: ExperimentResult) -> int:
    """Days from the start to the as-of day (or the end, if earlier), inclusive."""
    exp = result.experiment
    last = min(result.as_of, exp.end) if exp.end is not None else result.as_of
    return max((last - exp.start).days + 1, 0)


def portfolio_rows(results: Sequence[ExperimentResult]) -> list[dict[str, object]]:
    """One display row per experiment (plain values, ready for a table).

    Args:
        results: the analysed experiments.

    Returns:
        Rows with the experiment's id, name, status, owner, tags, days run, users,
        primary metric with its relative delta and the decision method's interval,
        verdict, guardrail state, health dot, recommendation and results link.
    """
    rows = []
    for result in results:
        exp = result.experiment
        row = headline_row(result)
        call = row.call if row else None
        verdict = BADGES[row.verdict if row else "inconclusive"]
        if not result.srm.ok:
            verdict = "invalid (SRM)"
        primary = "—"
        if row is not None:
            primary = row.metric.label
            if len(exp.treatments) > 1:
                primary += f" ({row.variant})"
        rows.append(
            {
                "health": health_dot(result),
                "experiment": exp.label,
                "id": exp.id,
                "status": status_of(result),
                "owner": exp.owner,
                "tags": ", ".join(exp.tags),
                "days": days_run(result),
                "users": sum(result.users.values()),
                "primary metric": primary,
                "rel_delta": call.rel_delta if call else math.nan,
                "lift": effect_text(row.metric, call) if row and call else "—",
                "ci_low": call.rel_ci[0] if call else math.nan,
                "ci_high": call.rel_ci[1] if call else math.nan,
                "ci": ci_text(row, call, "rel") if row and call else "—",
                "level": level_text(call) if call else "—",
                "method": exp.decision,
                "verdict": verdict,
                "guardrails": guardrail_state(result),
                "recommendation": result.recommendation.action.replace("_", " "),
                "reason": result.recommendation.reason,
                "link": f"results?experiment={exp.id}",
            }
        )
    return rows


# --- headline tiles -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Headline:
    """The portfolio's headline numbers.

    Attributes:
        running: experiments running now.
        decided: experiments decided (shipped, rolled back, stopped) in the quarter.
        wins: decided experiments where a treatment won on a primary metric.
        learnings: decided experiments that were valid (no sample-ratio mismatch)
            and conclusive either way (a primary metric significant, or a
            guardrail significantly harmed).
        quarter: the quarter's label, e.g. ``"Q4 2026"``.
    """

    running: int
    decided: int
    wins: int
    learnings: int
    quarter: str

    @property
    def win_rate(self) -> float:
        """Wins per decided experiment (NaN when none was decided)."""
        return self.wins / self.decided if self.decided else math.nan

    @property
    def learning_rate(self) -> float:
        """Valid and conclusive experiments per decided one (NaN when none)."""
        return self.learnings / self.decided if self.decided else math.nan


def quarter_of(day: dt.date) -> tuple[int, int]:
    """(year, quarter 1-4) of a day."""
    return day.year, (day.month - 1) // 3 + 1


def is_win(result: ExperimentResult) -> bool:
    """A valid experiment where some treatment won on a primary metric."""
    return result.srm.ok and any(
        r.role == "primary" and r.verdict == "win" for r in result.results
    )


def is_conclusive(result: ExperimentResult) -> bool:
    """Valid, and a primary metric moved significantly or a guardrail was harmed."""
    return result.srm.ok and any(
        (r.role == "primary" and r.verdict in ("win", "loss"))
        or (r.role == "guardrail" and r.verdict == "loss")
        for r in result.results
    )


def headline(results: Sequence[ExperimentResult], today: dt.date) -> Headline:
    """Running now, decided this quarter, and the quarter's win and learning rates.

    An experiment counts as decided in the quarter of its end date (its as-of day
    when it has none). ``today`` is the reference day, normally the latest as-of
    day of the data, so that a historical log reads the same on any wall-clock day.

    Args:
        results: the analysed experiments.
        today: the reference day whose quarter counts.

    Returns:
        The :class:`Headline`.
    """
    quarter = quarter_of(today)
    decided = [
        r
        for r in results
        if status_of(r) in DECIDED
        and quarter_of(r.experiment.end or r.as_of) == quarter
    ]
    return Headline(
        running=sum(status_of(r) == "running" for r in results),
        decided=len(decided),
        wins=sum(is_win(r) for r in decided),
        learnings=sum(is_conclusive(r) for r in decided),
        quarter=f"Q{quarter[1]} {quarter[0]}",
    )


# --- empirical-Bayes shrinkage and the combined effect of shipped experiments ---------


@dataclass(frozen=True, slots=True)
class CombinedEffect:
    """The estimated joint effect of the shipped experiments on one metric.

    Attributes:
        metric: the metric id.
        label: its display name.
        scale: ``"relative"`` (a lift, combined multiplicatively) or ``"points"``
            (NPS points, combined additively).
        estimate: the combined effect.
        ci: its (lower, upper) interval at ``1 − alpha``.
        raw_sum: the naive sum of the raw shipped effects, for comparison only.
        tau2: the estimated variance of true effects used for shrinkage.
        contributions: (experiment id, variant, raw effect, shrunk effect) of each
            shipped experiment that measured the metric.
        n_experiments: how many valid experiments informed τ².
    """

    metric: str
    label: str
    scale: str
    estimate: float
    ci: tuple[float, float]
    raw_sum: float
    tau2: float
    contributions: tuple[tuple[str, str, float, float], ...]
    n_experiments: int


def _effect(row: MetricResult, scale: str) -> tuple[float, float]:
    if scale == "points":
        return row.fixed.abs_delta, row.fixed.se
    return row.fixed.rel_delta, row.fixed.rel_se


def _usable(effect: float, se: float) -> bool:
    return math.isfinite(effect) and math.isfinite(se) and se > 0


def shipped_impact(
    results: Sequence[ExperimentResult], metric_id: str, *, alpha: float = 0.05
) -> CombinedEffect | None:
    """Combined, shrunk effect of every shipped experiment on one metric.

    τ² is estimated from every valid experiment (no sample-ratio mismatch) that
    measured the metric, each treatment's fixed-horizon estimate once, so that it
    describes the spread of true effects in general and not only of the winners.
    Each shipped experiment's effect of its shipped treatment is then shrunk toward
    zero (:func:`stats.shrinkage.shrink`) and the shrunk effects are combined:
    multiplicatively for lifts (:func:`stats.shrinkage.combine_multiplicative`),
    additively in points for NPS (:func:`stats.shrinkage.combine_additive`). The
    experiments are assumed to act independently on the same population.

    Args:
        results: the analysed experiments.
        metric_id: the metric to combine.
        alpha: one minus the interval's coverage.

    Returns:
        The :class:`CombinedEffect`, or None when no shipped experiment measured
        the metric.
    """
    measured = [r.metric for res in results for r in res.results]
    points = any(m.id == metric_id and in_points(m) for m in measured)
    scale = "points" if points else "relative"  # NPS adds up in points
    pool = [
        _effect(r, scale)
        for res in results
        if res.srm.ok
        for r in res.results
        if r.metric.id == metric_id
    ]
    pool = [(y, s) for y, s in pool if _usable(y, s)]
    tau2 = tau2_moments([y for y, _ in pool], [s for _, s in pool])
    shipped: list[tuple[str, str, float, float]] = []
    label = metric_id
    for res in results:
        if status_of(res) != "shipped":
            continue
        variant = shipped_variant(res)
        for r in res.results:
            if r.metric.id == metric_id and r.variant == variant:
                y, s = _effect(r, scale)
                if _usable(y, s):
                    shipped.append((res.experiment.id, variant, y, s))
                    label = r.metric.label
    if not shipped:
        return None
    shrunk = shrink([y for *_, y, _ in shipped], [s for *_, s in shipped], tau2)
    combine = combine_additive if scale == "points" else combine_multiplicative
    estimate, se = combine(shrunk.estimates, shrunk.variances)
    z = float(sps.norm.ppf(1 - alpha / 2))
    return CombinedEffect(
        metric=metric_id,
        label=label,
        scale=scale,
        estimate=estimate,
        ci=(estimate - z * se, estimate + z * se),
        raw_sum=sum(y for *_, y, _ in shipped),
        tau2=tau2,
        contributions=tuple(
            (exp_id, variant, y, m)
            for (exp_id, variant, y, _), m in zip(
                shipped, shrunk.estimates, strict=True
            )
        ),
        n_experiments=len(pool),
    )


def filter_rows(
    rows: Sequence[dict[str, object]],
    *,
    statuses: Sequence[str] = (),
    owners: Sequence[str] = (),
    tags: Sequence[str] = (),
) -> list[dict[str, object]]:
    """Rows matching every non-empty filter (a row matches a tag filter by any tag)."""

    def keep(row: dict[str, object]) -> bool:
        row_tags = {t.strip() for t in str(row["tags"]).split(",") if t.strip()}
        return (
            (not statuses or row["status"] in statuses)
            and (not owners or row["owner"] in owners)
            and (not tags or bool(row_tags & set(tags)))
        )

    return [row for row in rows if keep(row)]


def describe_impact(effect: CombinedEffect, *, alpha: float = 0.05) -> tuple[str, str]:
    """The combined effect as a headline value and a one-sentence caption.

    Args:
        effect: the combined effect of the shipped experiments on one metric.
        alpha: one minus the interval's coverage (for the caption).

    Returns:
        (value, caption), e.g. ``("−15.2%", "95% CI −19.1% to −11.3% …")``.
    """

    def fmt(x: float) -> str:
        text = f"{x:+.1f} pts" if effect.scale == "points" else f"{x * 100:+.1f}%"
        return text.replace("-", "−")

    names = ", ".join(f"{e} ({v})" for e, v, _, _ in effect.contributions)
    level = f"{(1 - alpha) * 100:g}%"
    how = (
        "added up in NPS points"
        if effect.scale == "points"
        else "combined multiplicatively, Π(1 + lift) − 1"
    )
    caption = (
        f"{level} CI {fmt(effect.ci[0])} to {fmt(effect.ci[1])}. From "
        f"{len(effect.contributions)} shipped experiment(s): {names}. Each effect "
        f"is shrunk toward zero (empirical Bayes, τ = {_tau_text(effect)} estimated "
        f"from {effect.n_experiments} valid experiments), then {how}; the raw sum "
        f"of the unshrunk effects would claim {fmt(effect.raw_sum)}."
    )
    return fmt(effect.estimate), caption


def _tau_text(effect: CombinedEffect) -> str:
    tau = math.sqrt(effect.tau2)
    return f"{tau:.1f} pts" if effect.scale == "points" else f"{tau * 100:.1f}%"
