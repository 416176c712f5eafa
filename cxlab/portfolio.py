"""The portfolio of experiments: one row each, headline tiles, shipped impact.

Pure functions over analysed experiments (:class:`cxlab.analysis.ExperimentResult`);
no Streamlit. The combined effect of shipped experiments is never a raw sum of lifts:
each shipped lift is first shrunk toward zero by empirical Bayes (winners are
selected for looking good, so their raw estimates are biased upward), then the
shrunk lifts are combined multiplicatively with a delta-method interval.

Every verdict, effect and interval here is the decision method's call
(``MetricResult.call``), the same the experiment's results page shows. This module
does not import the charts, so that the home page draws without them.

A/A tests (an experiment whose treatments are copies of control, run to check the
assignment and the metrics) carry the tag ``aa-test`` (or ``aa``) in their config;
they are listed but never counted in the win and learning rates.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from urllib.parse import quote

import polars as pl

from cxlab.analysis import ExperimentResult, MetricResult
from cxlab.config import Experiment
from cxlab.decision import (
    Call,
    effect_text,
    format_delta,
    format_lift,
    in_points,
    level_text,
    shown_scale,
    signed_points,
)
from cxlab.markdown import coloured, escaped, pipe_table
from cxlab.stats.shrinkage import (
    combine_additive,
    combine_multiplicative,
    shrink,
    tau2_moments,
)
from cxlab.summaries import Summaries

DECIDED = ("shipped", "rolled_back", "stopped")
IMPACT_METRICS = ("conversion", "nps", "contacts_per_order")
AA_TAGS = frozenset({"aa-test", "aa"})
TRAFFIC_DAYS = 7  # the ETA extrapolates the mean daily new users of the last week
VERDICTS = {"win": "● win", "loss": "● loss", "inconclusive": "○ inconclusive"}
# The engine action a decided status implies; "stopped" implies none.
IMPLIED_ACTION = {"shipped": "ship", "rolled_back": "roll_back"}


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


def is_aa_test(experiment: Experiment) -> bool:
    """Whether the config marks the experiment as an A/A test (tag ``aa-test``/``aa``).

    An A/A test gives every arm the same experience, to check the assignment and
    the metrics; its "wins" are false positives by construction, so it never
    counts in the win or learning rate.
    """
    return bool(AA_TAGS & {t.lower() for t in experiment.tags})


# --- progress and ETA -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Progress:
    """How far an experiment is toward its ``planned_users``, and when it gets there.

    Attributes:
        users: analysed users so far.
        planned: the config's ``planned_users`` (None: no plan).
        daily: mean new users per day over the last :data:`TRAFFIC_DAYS` days.
        share: users / planned (None without a plan).
        eta: the day the plan is reached at ``daily`` (running and short of it).
        text: the ETA in words: a day (``"12 Nov 2026"``), ``"reached"``,
            ``"no plan"``, ``"no traffic"``, ``"starts 14 Nov 2026"`` (planned)
            or ``"ended"``.
    """

    users: int
    planned: int | None
    daily: float
    share: float | None
    eta: dt.date | None
    text: str


def daily_new_users(
    exposures: pl.DataFrame,
    experiment: Experiment,
    as_of: dt.date,
    days: int = TRAFFIC_DAYS,
) -> float:
    """Mean new analysed users per day over the last ``days`` days up to ``as_of``.

    Days without exposures count as zero; an experiment younger than ``days``
    averages over the days since its start.

    Args:
        exposures: ``Summaries.exposures`` (``experiment_id``, ``day``, ``d_users``).
        experiment: the experiment.
        as_of: the last day counted.
        days: the window length.

    Returns:
        New users per day (0.0 before the start).
    """
    first = max(experiment.start, as_of - dt.timedelta(days=days - 1))
    span = (as_of - first).days + 1
    if span <= 0:
        return 0.0
    mine = pl.col("experiment_id") == experiment.id
    total = exposures.filter(mine & pl.col("day").is_between(first, as_of))["d_users"]
    return float(total.sum() or 0) / span


def progress_of(result: ExperimentResult, daily: float) -> Progress:
    """Progress to ``planned_users`` and the ETA of a running experiment.

    The ETA is the as-of day plus the days the missing users take at the observed
    daily rate, rounded up: ``as_of + ceil((planned - users) / daily)``.

    Args:
        result: the analysed experiment.
        daily: its recent new users per day (:func:`daily_new_users`).

    Returns:
        The :class:`Progress`.
    """
    users = sum(result.users.values())
    planned = result.experiment.planned_users
    share = users / planned if planned else None
    eta = None
    status = status_of(result)
    if status == "planned":
        text = f"starts {result.experiment.start:%d %b %Y}"
    elif status != "running":
        text = "ended"
    elif planned is None:
        text = "no plan"
    elif users >= planned:
        text = "reached"
    elif daily <= 0:
        text = "no traffic"
    else:
        eta = result.as_of + dt.timedelta(days=math.ceil((planned - users) / daily))
        text = f"{eta:%d %b %Y}"
    return Progress(users, planned, daily, share, eta, text)


# --- does the status agree with the engine? -------------------------------------------


def engine_reason(result: ExperimentResult) -> str:
    """The engine's call in two or three words, e.g. ``"not significant"``."""
    if not result.srm.ok:
        return "sample-ratio mismatch"
    if any(r.role == "guardrail" and r.verdict == "loss" for r in result.results):
        return "guardrail harmed"
    row = headline_row(result)
    if row is None:
        return "no primary metric"
    return {
        "win": "primary metric won",
        "loss": "primary metric worse",
        "inconclusive": "not significant",
    }[row.verdict]


def agrees(result: ExperimentResult) -> bool:
    """Whether a shipped or rolled-back status matches the engine's recommendation."""
    implied = IMPLIED_ACTION.get(status_of(result))
    return implied is None or implied == result.recommendation.action


def status_text(result: ExperimentResult) -> str:
    """The status in words, with the engine's call when the two disagree.

    E.g. ``"shipped — engine: review (not significant)"``: a decision taken
    against the engine is never shown silently.
    """
    status = status_of(result).replace("_", " ")
    if agrees(result):
        return status
    action = result.recommendation.action.replace("_", " ")
    return f"{status} — engine: {action} ({engine_reason(result)})"


# --- the table ------------------------------------------------------------------------


def results_link(experiment_id: str, as_of: dt.date | None = None) -> str:
    """The results page of an experiment (as of a day, when one is chosen)."""
    link = f"results?experiment={experiment_id}"
    return link if as_of is None else f"{link}&as_of={as_of.isoformat()}"


def _ci_text(row: MetricResult, call: Call) -> str:
    """The call's interval as the scorecard shows it (relative; NPS in points)."""
    lo, hi = call.rel_ci if shown_scale(row.metric, "rel") == "rel" else call.abs_ci
    m = row.metric
    return f"[{format_delta(m, lo, 'rel')}, {format_delta(m, hi, 'rel')}]"


def portfolio_rows(
    results: Sequence[ExperimentResult],
    summaries: Mapping[str, Summaries] | None = None,
    as_of: dt.date | None = None,
) -> list[dict[str, object]]:
    """One display row per experiment (plain values, ready for a table).

    Args:
        results: the analysed experiments.
        summaries: the summaries by experiment id, whose exposures give the
            recent daily traffic for the ETA (:func:`daily_new_users`); an
            experiment without them has no traffic.
        as_of: the chosen as-of day, carried by the results links.

    Returns:
        Rows with the experiment's id, name, status (with the engine's call when
        they disagree), owner, tags, days run, users, progress and ETA, primary
        metric with its relative delta and the decision method's interval,
        verdict, guardrail state, health dot, recommendation and results link.
    """
    rows = []
    for result in results:
        exp = result.experiment
        row = headline_row(result)
        call = row.call if row else None
        verdict = VERDICTS[row.verdict if row else "inconclusive"]
        if not result.srm.ok:
            verdict = "invalid (SRM)"
        primary = "—"
        if row is not None:
            primary = row.metric.label
            if len(exp.treatments) > 1:
                primary += f" ({row.variant})"
        lift = effect_text(row.metric, call) if row and call else "—"
        ci = _ci_text(row, call) if row and call else "—"
        daily = 0.0
        if summaries is not None and exp.id in summaries:
            exposures = summaries[exp.id].exposures
            daily = daily_new_users(exposures, exp, result.as_of)
        progress = progress_of(result, daily)
        rows.append(
            {
                "health": health_dot(result),
                "experiment": exp.label,
                "id": exp.id,
                "name": f"{results_link(exp.id, as_of)}#{quote(exp.label)}",
                "status": status_of(result),
                "status_text": status_text(result),
                "agrees": agrees(result),
                "aa_test": is_aa_test(exp),
                "owner": exp.owner,
                "tags": ", ".join(exp.tags),
                "days": days_run(result),
                "users": progress.users,
                "progress": progress.share,
                "eta": progress.text,
                "primary metric": primary,
                "rel_delta": call.rel_delta if call else math.nan,
                "lift": lift,
                "ci_low": call.rel_ci[0] if call else math.nan,
                "ci_high": call.rel_ci[1] if call else math.nan,
                "ci": ci,
                "effect": "—" if lift == "—" else f"{primary}: {lift} {ci}",
                "level": level_text(call) if call else "—",
                "method": exp.decision,
                "verdict": verdict,
                "guardrails": guardrail_state(result),
                "recommendation": result.recommendation.action.replace("_", " "),
                "reason": result.recommendation.reason,
                "decision note": exp.decision_note,
                "link": results_link(exp.id, as_of),
            }
        )
    return rows


COLOURS = {"win": "green", "loss": "red", "ship": "green", "roll back": "red"}
HEALTH_COLOURS = {"● ok": "green", "● check": "orange", "● SRM": "red"}


def executive_rows(rows: Sequence[dict[str, object]]) -> list[dict[str, str]]:
    """The table for executives: the essential columns, in Markdown, per row.

    The name links to the results page; verdict, engine call and health are
    coloured (green good, red bad, orange a check); a status that disagrees with
    the engine is flagged ⚠, an A/A test named as such.

    Args:
        rows: rows of :func:`portfolio_rows`.

    Returns:
        One mapping per row from column title to a Markdown cell.
    """
    cells = []
    for row in rows:
        verdict = str(row["verdict"]).split()[-1]
        action = str(row["recommendation"])
        status = escaped(row["status_text"])
        if row["aa_test"]:
            status += " (A/A test)"
        if not row["agrees"]:
            status = f":orange[⚠ {status}]"
        share = row["progress"]
        planned = "no plan" if share is None else f"{share:.0%} of plan"
        cells.append(
            {
                "experiment": f"[{escaped(row['experiment'])}]({row['link']})",
                "status": status,
                "primary effect [interval]": escaped(row["effect"]),
                "verdict": coloured(str(row["verdict"]), COLOURS.get(verdict)),
                "engine says": coloured(action, COLOURS.get(action)),
                "guardrails": coloured(
                    str(row["guardrails"]),
                    "red" if str(row["guardrails"]).startswith("harmed") else None,
                ),
                "health": coloured(
                    str(row["health"]), HEALTH_COLOURS.get(str(row["health"]))
                ),
                "progress": escaped(f"{planned} ({row['users']:,} users)"),
                "ETA": escaped(row["eta"]),
            }
        )
    return cells


def executive_table(rows: Sequence[dict[str, object]]) -> str:
    """:func:`executive_rows` as one Markdown pipe table (GitHub Flavored Markdown).

    Every cell is already Markdown with its pipes escaped, so the page draws the
    table with ``st.markdown``: ``st.table`` would convert it through pandas, whose
    import cost the first page half a second of server CPU (bench/RESULTS.md).

    Args:
        rows: rows of :func:`portfolio_rows` (at least one).

    Returns:
        The table's Markdown: a header row, its delimiter row, one row per input.
    """
    return pipe_table(executive_rows(rows))


# --- headline tiles -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Headline:
    """The portfolio's headline numbers.

    Attributes:
        running: experiments running now.
        decided: experiments decided (shipped, rolled back, stopped) in the
            quarter, A/A tests left out.
        wins: decided experiments where a treatment won on a primary metric.
        learnings: decided experiments that were valid (no sample-ratio mismatch)
            and conclusive either way (a primary metric significant, or a
            guardrail significantly harmed).
        quarter: the quarter's label, e.g. ``"Q4 2026"``.
        aa_tests: A/A tests decided in the quarter (not counted above).
    """

    running: int
    decided: int
    wins: int
    learnings: int
    quarter: str
    aa_tests: int = 0

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
    A/A tests (:func:`is_aa_test`) are left out of the decided experiments, the
    wins and the learnings: they only check the set-up.

    Args:
        results: the analysed experiments.
        today: the reference day whose quarter counts.

    Returns:
        The :class:`Headline`.
    """
    quarter = quarter_of(today)
    in_quarter = [
        r
        for r in results
        if status_of(r) in DECIDED
        and quarter_of(r.experiment.end or r.as_of) == quarter
    ]
    decided = [r for r in in_quarter if not is_aa_test(r.experiment)]
    return Headline(
        running=sum(status_of(r) == "running" for r in results),
        decided=len(decided),
        wins=sum(is_win(r) for r in decided),
        learnings=sum(is_conclusive(r) for r in decided),
        quarter=f"Q{quarter[1]} {quarter[0]}",
        aa_tests=len(in_quarter) - len(decided),
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
    zero (:func:`cxlab.stats.shrinkage.shrink`) and the shrunk effects are combined:
    multiplicatively for lifts (:func:`cxlab.stats.shrinkage.combine_multiplicative`),
    additively in points for NPS (:func:`cxlab.stats.shrinkage.combine_additive`). The
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
    z = NormalDist().inv_cdf(1 - alpha / 2)
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


SEARCHED = ("experiment", "id", "owner", "tags", "primary metric", "status_text")


def filter_rows(
    rows: Sequence[dict[str, object]],
    *,
    statuses: Sequence[str] = (),
    owners: Sequence[str] = (),
    tags: Sequence[str] = (),
    text: str = "",
) -> list[dict[str, object]]:
    """Rows matching every non-empty filter.

    A row matches a tag filter by any of its tags, and the search ``text`` when
    every word of it occurs (case-insensitively) in its name, id, owner, tags,
    primary metric or status.
    """
    words = text.lower().split()

    def keep(row: dict[str, object]) -> bool:
        row_tags = {t.strip() for t in str(row["tags"]).split(",") if t.strip()}
        haystack = " ".join(str(row.get(c, "")) for c in SEARCHED).lower()
        return (
            (not statuses or row["status"] in statuses)
            and (not owners or row["owner"] in owners)
            and (not tags or bool(row_tags & set(tags)))
            and all(w in haystack for w in words)
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
        return f"{signed_points(x)} pts" if effect.scale == "points" else format_lift(x)

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
