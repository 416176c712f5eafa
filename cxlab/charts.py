"""Pure builders of what the pages show: Plotly figures and display tables.

Every function takes engine results (:mod:`cxlab.analysis`, :mod:`cxlab.summaries`
tables) and returns a ``go.Figure`` or a small Polars frame; nothing here imports
Streamlit, so tests assert on ``fig.data`` directly. Colours follow the metric's good
direction: a significant change in the good direction is green, in the bad direction
red, anything else grey (and everything grey when the experiment's traffic split is
broken, because then no result can be trusted).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
from plotly.subplots import make_subplots

from cxlab.analysis import ExperimentResult, MetricResult
from cxlab.config import MetricDef
from cxlab.decision import (
    Call,
    Method,
    Scale,
    format_delta,
    format_value,
    in_points,
    level_text,
    shown_scale,
)
from cxlab.novelty import NoveltyCheck
from cxlab.planning import Plan, percent_text
from cxlab.stats.aggregates import NpsStats
from cxlab.stats.bayesian import BayesianResult
from cxlab.stats.survival import SurvivalStats, survival_band

GOOD = "#1a9850"
BAD = "#d73027"
NEUTRAL = "#8c8c8c"
MUTED = "#c8c8c8"
ARM_COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756")
SEQUENTIAL_BAND = "rgba(76, 120, 168, 0.15)"
FIXED_BAND = "rgba(245, 133, 24, 0.25)"
# Every figure's look comes from Plotly's default template: applied when a figure
# is serialised, it skips the validation that an explicit ``template=`` costs
# (about 7 ms per figure, more than the rest of a small figure).
pio.templates.default = "plotly_white"
LAYOUT = {
    "margin": {"l": 10, "r": 10, "t": 86, "b": 10},
    "font": {"family": "Inter, Segoe UI, Helvetica, Arial, sans-serif", "size": 13},
    "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.01, "x": 0},
}
# Plain Unicode (no emoji): every browser font has these; cell_style colours them.
BADGES = {"win": "● win", "loss": "● loss", "inconclusive": "○ inconclusive"}
AMBER = "#b7791f"

SQRT_2PI = math.sqrt(2 * math.pi)


def verdict_colour(verdict: str, *, greyed: bool = False) -> str:
    """Green for a win, red for a loss, grey otherwise (all muted when greyed)."""
    if greyed:
        return MUTED
    return {"win": GOOD, "loss": BAD}.get(verdict, NEUTRAL)


def cell_style(text: object) -> str:
    """CSS for a table cell from its badge text: green good, red bad, amber check."""
    value = str(text)
    if value in ("ship", "roll back"):
        return f"color: {GOOD if value == 'ship' else BAD}; font-weight: 600"
    if value.startswith(("◌", "○")):
        return f"color: {NEUTRAL}"
    if value.startswith("●"):
        if " win" in value or value.endswith(" ok"):
            return f"color: {GOOD}; font-weight: 600"
        if " loss" in value or "SRM" in value:
            return f"color: {BAD}; font-weight: 600"
        return f"color: {AMBER}; font-weight: 600"
    if value.startswith("harmed") or value.startswith("invalid"):
        return f"color: {BAD}"
    return ""


def styled(frame: pl.DataFrame, columns: Sequence[str]) -> object:
    """A pandas Styler colouring the badge ``columns`` with :func:`cell_style`."""
    present = [c for c in columns if c in frame.columns]
    return frame.to_pandas().style.map(cell_style, subset=present)


# --- formatting -----------------------------------------------------------------------


def format_statistic(method: Method, value: float) -> str:
    """A p-value (``p = 0.012``) or a probability (``P(better) = 96.8%``)."""
    if value is None or math.isnan(value):
        return "—"
    if method == "bayesian":
        return f"{value * 100:.1f}%"
    return "<0.0001" if value < 1e-4 else f"{value:.4f}"


def statistic_label(method: Method) -> str:
    """The column title of a method's statistic."""
    return {
        "sequential": "p (always-valid, adjusted)",
        "fixed": "p (adjusted)",
        "bayesian": "P(better)",
    }[method]


def statistic_of(row: MetricResult, method: Method) -> float:
    """A method's statistic: the adjusted p-value, or P(better) for Bayesian."""
    if method == "bayesian":
        return row.bayesian.prob_beat_control
    return row.calls[method].adjusted_p_value


def call_delta(row: MetricResult, call: Call, scale: Scale) -> float:
    """The call's estimate on the scale the metric is shown on."""
    return call.rel_delta if shown_scale(row.metric, scale) == "rel" else call.abs_delta


def call_ci(row: MetricResult, call: Call, scale: Scale) -> tuple[float, float]:
    """The call's interval on the scale the metric is shown on."""
    return call.rel_ci if shown_scale(row.metric, scale) == "rel" else call.abs_ci


def ci_text(row: MetricResult, call: Call, scale: Scale) -> str:
    """``[−14.0%, −4.8%]``: the call's interval as the scorecard shows it."""
    lo, hi = call_ci(row, call, scale)
    m = row.metric
    return f"[{format_delta(m, lo, scale)}, {format_delta(m, hi, scale)}]"


# --- tables ---------------------------------------------------------------------------

ROLE_TITLES = {"primary": "Primary", "secondary": "Secondary", "guardrail": "Guardrail"}


def scorecard_frame(
    result: ExperimentResult,
    method: Method,
    scale: Scale = "rel",
    *,
    greyed: bool | None = None,
) -> pl.DataFrame:
    """The scorecard as display text, Primary → Secondary → Guardrail.

    Every number is the engine's call of ``method`` (:mod:`cxlab.decision`): its
    estimate, its interval at its level (after the correction), its statistic and
    its verdict. NPS rows are in points whatever the scale.

    Args:
        result: the analysed experiment.
        method: whose estimate, interval, statistic and verdict to show.
        scale: relative (%) or absolute deltas and intervals.
        greyed: show verdicts as untrusted; default when the SRM check fails.

    Returns:
        One row per (metric, treatment): role, metric, variant, both arms' values,
        the delta, the interval and its level, the statistic and the verdict badge.
    """
    if greyed is None:
        greyed = not result.srm.ok
    rows = []
    for row in _scorecard_order(result):
        call = row.calls[method]
        m = row.metric
        rows.append(
            {
                "role": ROLE_TITLES[row.role],
                "metric": m.label,
                "variant": row.variant,
                "control": format_value(m, row.control.value),
                "treatment": format_value(m, row.treatment.value),
                "delta": format_delta(m, call_delta(row, call, scale), scale),
                "interval": ci_text(row, call, scale),
                "level": level_text(call),
                statistic_label(method): format_statistic(
                    method, statistic_of(row, method)
                ),
                "verdict": (
                    f"◌ untrusted ({call.verdict})" if greyed else BADGES[call.verdict]
                ),
                "good direction": "↑ higher"
                if m.direction == "increase"
                else "↓ lower",
            }
        )
        if result.experiment.guardrail_margin is not None:
            rows[-1]["guardrail safe"] = safety_text(row)
    return pl.DataFrame(rows)


def safety_text(row: MetricResult) -> str:
    """A guardrail's non-inferiority: shown safe within the margin, or not yet."""
    test = row.non_inferiority
    if test is None:
        return ""
    state = "✓ shown safe" if test.passed else "not yet shown safe"
    return f"{state} (within {test.margin:.0%}, p = {test.p_value:.2g})"


def cap_text(row: MetricResult, as_of: dt.date) -> str | None:
    """A capped mean's cap as the page states it beside the metric (None: no cap)."""
    if row.cap is None:
        return None
    share = f"{row.cap.percentile * 100:.4g}"
    return (
        f"Each user's value is capped at {format_value(row.metric, row.cap.value)}: "
        f"the {share}th percentile of all analysed users' values, arms pooled, at "
        f"the end of {as_of:%d %b %Y} (winsorization)."
    )


def _scorecard_order(result: ExperimentResult) -> list[MetricResult]:
    order = {"primary": 0, "secondary": 1, "guardrail": 2}
    return sorted(result.results, key=lambda r: order[r.role])


def details_frame(result: ExperimentResult, scale: Scale = "rel") -> pl.DataFrame:
    """All three methods side by side: raw and adjusted statistics, levels, CIs."""
    rows = []
    for row in result.results:
        out: dict[str, object] = {"metric": row.metric.label, "variant": row.variant}
        for method in ("fixed", "sequential", "bayesian"):
            call = row.calls[method]
            if method != "bayesian":
                out[f"{method} p (raw)"] = call.p_value
                out[f"{method} p (adjusted)"] = call.adjusted_p_value
            out[f"{method} interval"] = ci_text(row, call, scale)
            out[f"{method} level"] = level_text(call)
        out["P(better)"] = row.bayesian.prob_beat_control
        out["expected loss"] = row.bayesian.expected_loss
        out["CUPED variance reduction"] = (
            row.cuped.variance_reduction if row.cuped else None
        )
        rows.append(out)
    return pl.DataFrame(rows, infer_schema_length=None)


def nps_response_frame(result: ExperimentResult, metric_id: str) -> pl.DataFrame:
    """Per arm: NPS responders, users, response rate, and the promoter split."""
    arms = _nps_arms(result, metric_id)
    rows = []
    for arm, stats in arms:
        users = result.users.get(arm, 0)
        rows.append(
            {
                "arm": arm,
                "responders": stats.n,
                "users": users,
                "response rate": stats.n / users if users else math.nan,
                "promoters": stats.promoters,
                "passives": stats.passives,
                "detractors": stats.detractors,
                "NPS": stats.mean,
            }
        )
    return pl.DataFrame(rows)


def has_nps_answers(result: ExperimentResult, metric_id: str) -> bool:
    """Whether the metric's arms are NPS answers (promoters, passives, detractors)."""
    return bool(_nps_arms(result, metric_id))


def _nps_arms(result: ExperimentResult, metric_id: str) -> list[tuple[str, NpsStats]]:
    rows = [r for r in result.results if r.metric.id == metric_id]
    if not rows or not isinstance(rows[0].control.stats, NpsStats):
        return []
    arms = [(result.experiment.control, rows[0].control.stats)]
    arms += [(r.variant, r.treatment.stats) for r in rows]
    return [(name, stats) for name, stats in arms if isinstance(stats, NpsStats)]


# --- figures --------------------------------------------------------------------------


def _finite(x: float) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _layout(fig: go.Figure, title: str, **extra: object) -> go.Figure:
    fig.update_layout(
        **LAYOUT,
        title={
            "text": title,
            "x": 0,
            "xref": "paper",
            "y": 1,
            "yref": "container",
            "yanchor": "top",
            "pad": {"t": 12},
            "font": {"size": 15},
        },
    )
    fig.update_layout(**extra)
    return fig


def _row_label(result: ExperimentResult, row: MetricResult) -> str:
    label = f"{row.metric.label} ({row.role})"
    if len(result.experiment.treatments) > 1:
        label = f"{row.metric.label} · {row.variant} ({row.role})"
    return label


def delta_forest(
    result: ExperimentResult, method: Method, *, greyed: bool | None = None
) -> go.Figure:
    """Every scorecard row's estimate with the method's interval.

    Relative lifts share one axis; metrics read in points (NPS) get a panel of
    their own below, in points. One scatter trace per (panel, verdict), points at
    the call's estimate with asymmetric error bars to its interval, rows in
    scorecard order (Primary at the top). Each row's interval is at its own level
    (after the correction), as in the scorecard.

    Args:
        result: the analysed experiment.
        method: whose estimates, intervals and verdicts to draw.
        greyed: draw everything muted; default when the SRM check fails.

    Returns:
        The figure.
    """
    if greyed is None:
        greyed = not result.srm.ok
    rows = _scorecard_order(result)
    panels = [
        [r for r in rows if not in_points(r.metric)],
        [r for r in rows if in_points(r.metric)],
    ]
    panels = [p for p in panels if p]
    rows_px = [44 * len(p) + 30 for p in panels]  # rows plus the x-axis labels
    gap_px = 70  # room for the upper panel's axis title
    height = max(220, 96 + sum(rows_px) + gap_px * (len(panels) - 1))
    fig = make_subplots(
        rows=len(panels),
        cols=1,
        row_heights=[h / sum(rows_px) for h in rows_px],
        vertical_spacing=gap_px / (height - 96) if len(panels) > 1 else 0.0,
    )
    names = {
        "win": "significant, good direction",
        "loss": "significant, bad direction",
        "inconclusive": "not significant",
    }
    shown: set[str] = set()
    for i, panel in enumerate(panels, start=1):
        points = in_points(panel[0].metric)
        labels = [_row_label(result, r) for r in panel]
        for verdict in ("win", "loss", "inconclusive"):
            picked = [
                (label, r.calls[method])
                for label, r in zip(labels, panel, strict=True)
                if r.calls[method].verdict == verdict
            ]
            if picked:
                fig.add_trace(
                    _forest_trace(picked, verdict, names, greyed, points, shown),
                    row=i,
                    col=1,
                )
                shown.add(verdict)
        fig.add_vline(x=0, line={"color": "#444", "width": 1}, row=i, col=1)
        fig.update_yaxes(
            categoryorder="array", categoryarray=labels[::-1], row=i, col=1
        )
        fig.update_xaxes(
            tickformat=None if points else "+.0%",
            zeroline=False,
            title="points" if points else "relative lift",
            row=i,
            col=1,
        )
    return _layout(
        fig,
        f"Estimates vs control with {method} intervals (each at its level)",
        height=height,
    )


def _forest_trace(
    picked: list[tuple[str, Call]],
    verdict: str,
    names: dict[str, str],
    greyed: bool,
    points: bool,
    shown: set[str],
) -> go.Scatter:
    colour = verdict_colour(verdict, greyed=greyed)
    x = [c.abs_delta if points else c.rel_delta for _, c in picked]
    ci = [c.abs_ci if points else c.rel_ci for _, c in picked]
    fmt = "+.1f" if points else "+.1%"
    return go.Scatter(
        x=x,
        y=[label for label, _ in picked],
        mode="markers",
        name=f"untrusted: {names[verdict]}" if greyed else names[verdict],
        showlegend=verdict not in shown,
        legendgroup=verdict,
        marker={"color": colour, "size": 11, "symbol": "diamond"},
        error_x={
            "type": "data",
            "symmetric": False,
            "array": [_finite(hi - v) for v, (_, hi) in zip(x, ci, strict=True)],
            "arrayminus": [_finite(v - lo) for v, (lo, _) in zip(x, ci, strict=True)],
            "color": colour,
            "thickness": 2.5,
            "width": 6,
        },
        customdata=[
            [lo, hi, level_text(c)] for (_, c), (lo, hi) in zip(picked, ci, strict=True)
        ],
        hovertemplate=f"%{{y}}<br>estimate %{{x:{fmt}}}<br>%{{customdata[2]}} "
        f"[%{{customdata[0]:{fmt}}}, %{{customdata[1]:{fmt}}}]<extra></extra>",
    )


def cumulative_lift(
    history: Sequence[ExperimentResult],
    metric_id: str,
    variant: str | None = None,
    scale: Scale = "rel",
) -> go.Figure:
    """The estimate as of each day, with the sequential and fixed intervals.

    Each day's estimate and intervals are that day's calls (:mod:`cxlab.decision`),
    each at its level, so the last day matches the scorecard. NPS is in points.

    Args:
        history: the experiment as of each day, oldest first.
        metric_id: the metric.
        variant: the treatment (default the first).
        scale: relative (%) or absolute; NPS is always in points.

    Returns:
        The figure: the sequential band (valid at every look), the fixed band (valid
        only once, at the planned end) and the estimate's line.
    """
    days: list[dt.date] = []
    lift, seq_lo, seq_hi, fix_lo, fix_hi = [], [], [], [], []
    metric: MetricDef | None = None
    for res in history:
        try:
            row = res.result(metric_id, variant)
        except KeyError:
            continue
        metric = row.metric
        seq, fix = row.calls["sequential"], row.calls["fixed"]
        days.append(res.as_of)
        lift.append(_finite(call_delta(row, seq, scale)))
        for out, value in zip(
            (seq_lo, seq_hi, fix_lo, fix_hi),
            (*call_ci(row, seq, scale), *call_ci(row, fix, scale)),
            strict=True,
        ):
            out.append(_finite(value))
    shown = shown_scale(metric, scale) if metric is not None else scale
    fig = go.Figure()
    for lo, hi, colour, name in (
        (seq_lo, seq_hi, SEQUENTIAL_BAND, "sequential CI (valid at every look)"),
        (fix_lo, fix_hi, FIXED_BAND, "fixed CI (valid once, at the end)"),
    ):
        fig.add_trace(
            go.Scatter(
                x=days,
                y=lo,
                mode="lines",
                line={"width": 0},
                showlegend=False,
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=days,
                y=hi,
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor=colour,
                name=name,
                hoverinfo="skip",
            )
        )
    fmt = _axis_format(metric, shown)
    fig.add_trace(
        go.Scatter(
            x=days,
            y=lift,
            mode="lines",
            name="relative lift" if shown == "rel" else "difference",
            line={"color": "#1f2d3d", "width": 2.5},
            hovertemplate=f"%{{x|%b %d}}: %{{y:{fmt or '+.4g'}}}<extra></extra>",
        )
    )
    fig.add_hline(y=0, line={"color": "#444", "width": 1})
    unit = "points" if metric is not None and in_points(metric) else "difference"
    return _layout(
        fig,
        "Cumulative relative lift" if shown == "rel" else "Cumulative difference",
        yaxis={
            "tickformat": fmt,
            "title": "lift vs control" if shown == "rel" else f"{unit} vs control",
            "range": _settled_range(lift, fix_lo, fix_hi, seq_lo, seq_hi),
        },
        height=360,
    )


def novelty_lifts(check: NoveltyCheck, scale: Scale = "rel") -> go.Figure:
    """Does the effect fade? The lift per bucket of days since first exposure.

    Each point is the bucket's estimate with its fixed-horizon interval at the
    experiment's alpha, uncorrected (:mod:`cxlab.novelty`); the hover names the
    users of each arm in the bucket. NPS is in points.

    Args:
        check: the metric's and treatment's novelty check.
        scale: relative (%) or absolute; NPS is always in points.

    Returns:
        Points with error bars, one per bucket, youngest first.
    """
    metric = check.metric
    shown = shown_scale(metric, scale)
    labels, values, above, below, hover = [], [], [], [], []
    for bucket in check.buckets:
        fixed = bucket.fixed
        value = fixed.rel_delta if shown == "rel" else fixed.abs_delta
        lo, hi = fixed.rel_ci if shown == "rel" else fixed.abs_ci
        bounded = _finite(value) is not None and _finite(lo) is not None
        labels.append(bucket.label)
        values.append(_finite(value))
        above.append(hi - value if bounded else None)
        below.append(value - lo if bounded else None)
        interval = (
            f" [{format_delta(metric, lo, scale)}, {format_delta(metric, hi, scale)}]"
            if bounded
            else " (no interval)"
        )
        hover.append(
            f"{bucket.label}: {format_delta(metric, value, scale)}{interval}<br>"
            f"users: control {bucket.control_n:,} · {check.variant} "
            f"{bucket.treatment_n:,}"
        )
    fig = go.Figure(
        go.Scatter(
            x=labels,
            y=values,
            mode="markers",
            marker={"size": 11, "color": "#1f2d3d"},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": above,
                "arrayminus": below,
                "thickness": 2,
            },
            hovertext=hover,
            hovertemplate="%{hovertext}<extra></extra>",
            name=check.variant,
        )
    )
    fig.add_hline(y=0, line={"color": "#444", "width": 1})
    unit = "points" if in_points(metric) else "difference"
    return _layout(
        fig,
        "Does the effect fade?",
        xaxis={"title": "days since the user's first exposure", "type": "category"},
        yaxis={
            "tickformat": _axis_format(metric, shown),
            "title": "lift vs control" if shown == "rel" else f"{unit} vs control",
        },
        height=340,
        showlegend=False,
    )


def _axis_format(metric: MetricDef | None, scale: Scale) -> str | None:
    """Plotly tick format of a delta axis: %, percentage points, or plain."""
    if scale == "rel":
        return "+.0%"
    if metric is not None and not in_points(metric):
        return "+.1%" if metric.value_format == "percent" else None
    return None


def _settled_range(
    *series: Sequence[float | None], share: float = 0.2
) -> list[float] | None:
    """A range fitting every series after its first days (None when empty).

    The first days' very wide intervals would otherwise flatten the rest.
    """
    n = max((len(s) for s in series), default=0)
    skip = min(int(n * share), 7) if n > 10 else 0
    values = [v for s in series for v in s[skip:] if v is not None]
    if not values:
        return None
    lo, hi = min([*values, 0.0]), max([*values, 0.0])
    pad = (hi - lo) * 0.08 or 0.01
    return [lo - pad, hi + pad]


def arm_values_over_time(
    history: Sequence[ExperimentResult], metric_id: str
) -> go.Figure:
    """The metric's cumulative value per arm as of each day."""
    series: dict[str, tuple[list[dt.date], list[float | None]]] = {}
    metric: MetricDef | None = None
    for res in history:
        rows = [r for r in res.results if r.metric.id == metric_id]
        if not rows:
            continue
        metric = rows[0].metric
        arms = [(res.experiment.control, rows[0].control.value)]
        arms += [(r.variant, r.treatment.value) for r in rows]
        for name, value in arms:
            days, values = series.setdefault(name, ([], []))
            days.append(res.as_of)
            values.append(_finite(value))
    fig = go.Figure()
    for i, (name, (days, values)) in enumerate(series.items()):
        fig.add_trace(
            go.Scatter(
                x=days,
                y=values,
                mode="lines",
                name=name,
                line={"color": ARM_COLOURS[i % len(ARM_COLOURS)], "width": 2},
            )
        )
    tickformat = None
    if (
        metric is not None
        and not in_points(metric)
        and metric.value_format == "percent"
    ):
        tickformat = ".1%"
    label = metric.label if metric else metric_id
    return _layout(
        fig,
        f"{label} per arm (cumulative)",
        yaxis={"tickformat": tickformat, "title": label},
        height=340,
    )


def posterior(
    bayesian: BayesianResult,
    direction: str,
    *,
    title: str = "Posterior of the lift",
    points_per_unit: float | None = None,
) -> go.Figure:
    """The normal posterior of the lift with P(better) shaded.

    Args:
        bayesian: the Bayesian result (``posterior_mean``, ``posterior_sd`` on the
            relative scale, ``prob_beat_control``).
        direction: the metric's good direction, ``increase`` or ``decrease``.
        title: the figure title.
        points_per_unit: draw in points instead: the control value, by which the
            relative posterior scales to the absolute one (NPS), as the Bayesian
            block's ``abs_ci`` does.

    Returns:
        The figure; the shaded area is the posterior mass on the good side of 0.
    """
    fig = go.Figure()
    unit = points_per_unit or 1.0
    mean, sd = bayesian.posterior_mean * unit, bayesian.posterior_sd * abs(unit)
    fmt = "+.1f" if points_per_unit else "+.1%"
    if not (math.isfinite(mean) and math.isfinite(sd) and sd > 0):
        fig.add_annotation(text="not enough data", showarrow=False)
        return _layout(fig, title, height=300)
    lo, hi = min(mean - 4 * sd, -sd), max(mean + 4 * sd, sd)
    n = 201
    xs = [lo + (hi - lo) * i / (n - 1) for i in range(n)]
    if 0 not in xs:
        xs = sorted([*xs, 0.0])
    # the normal density φ((x − μ)/σ)/σ
    ys = [math.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * SQRT_2PI) for x in xs]
    increase = direction == "increase"
    good = [
        (x, y) for x, y in zip(xs, ys, strict=True) if (x >= 0 if increase else x <= 0)
    ]
    fig.add_trace(
        go.Scatter(
            x=[x for x, _ in good],
            y=[y for _, y in good],
            mode="lines",
            line={"width": 0},
            fill="tozeroy",
            fillcolor="rgba(26, 152, 80, 0.35)",
            name=f"P(better) = {bayesian.prob_beat_control:.1%}",
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines",
            name="posterior density",
            line={"color": "#1f2d3d", "width": 2},
            hovertemplate=f"lift %{{x:{fmt}}}<extra></extra>",
        )
    )
    fig.add_vline(x=0, line={"color": "#444", "width": 1})
    return _layout(
        fig,
        title,
        xaxis={
            "tickformat": None if points_per_unit else "+.0%",
            "title": "points" if points_per_unit else "relative lift",
        },
        yaxis={"showticklabels": False, "title": "density"},
        height=300,
    )


def contact_reasons(
    result: ExperimentResult, metric_id: str, variant: str, method: Method
) -> go.Figure:
    """Why customers contacted us: per category, each arm's rate, sorted by effect.

    The control's rate is a point; the treatment's is its rate with the interval
    of the method's call placed on the control's rate (control + the call's
    ``abs_ci``), so what is drawn is the decision layer's interval, at its own
    level after the correction across the metric's categories. Categories are
    sorted by the call's relative effect, the biggest cut at the top; the
    treatment's markers are coloured by verdict.

    Args:
        result: the analysed experiment.
        metric_id: a categorical metric.
        variant: the treatment.
        method: whose calls to draw.
    """
    rows = [
        r
        for r in result.results
        if r.metric.id == metric_id and r.variant == variant and r.category
    ]
    rows.sort(key=lambda r: _finite(r.calls[method].rel_delta) or 0.0, reverse=True)
    labels = [str(r.category) for r in rows]
    calls = [r.calls[method] for r in rows]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[r.control.value for r in rows],
            y=labels,
            mode="markers",
            name=result.experiment.control,
            marker={"color": NEUTRAL, "size": 10, "symbol": "line-ns-open"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[r.treatment.value for r in rows],
            y=labels,
            mode="markers",
            name=variant,
            marker={
                "color": [verdict_colour(c.verdict) for c in calls],
                "size": 10,
            },
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [
                    _finite(r.control.value + c.abs_ci[1] - r.treatment.value)
                    for r, c in zip(rows, calls, strict=True)
                ],
                "arrayminus": [
                    _finite(r.treatment.value - r.control.value - c.abs_ci[0])
                    for r, c in zip(rows, calls, strict=True)
                ],
            },
            customdata=[
                [format_delta(r.metric, c.rel_delta, "rel"), level_text(c)]
                for r, c in zip(rows, calls, strict=True)
            ],
            hovertemplate="%{y}: %{x:.4f} per user (%{customdata[0]}, "
            "%{customdata[1]})<extra></extra>",
        )
    )
    fig.update_yaxes(categoryorder="array", categoryarray=labels[::-1])
    fig.update_xaxes(title="events per exposed user", rangemode="tozero")
    name = rows[0].metric.label.split(": ")[0] if rows else metric_id
    return _layout(fig, f"Why customers contacted us: {name}", height=360)


def survival_curves(
    result: ExperimentResult, metric_id: str, variant: str
) -> go.Figure:
    """Share still unresolved against hours, per arm, with pointwise bands.

    The Kaplan–Meier curves of the control and the treatment up to the metric's
    horizon, each with its log(−log) band at the experiment's alpha
    (:func:`cxlab.stats.survival.survival_band`).

    Args:
        result: the analysed experiment.
        metric_id: a time-to-event metric.
        variant: the treatment.
    """
    row = result.result(metric_id, variant)
    fig = go.Figure()
    for k, (arm_id, arm) in enumerate(
        ((result.experiment.control, row.control), (variant, row.treatment))
    ):
        stats = arm.stats
        if not isinstance(stats, SurvivalStats):
            continue
        km = stats.km
        lower, upper = survival_band(km, alpha=result.experiment.alpha)
        inside = km.time <= stats.horizon
        hours = [0.0, *km.time[inside], stats.horizon]
        curve = [1.0, *km.survival[inside]]
        low, high = [1.0, *lower[inside]], [1.0, *upper[inside]]
        colour = ARM_COLOURS[k]
        steps = {"shape": "hv", "width": 0}
        fig.add_trace(
            go.Scatter(
                x=hours, y=[*high, high[-1]], mode="lines", line=steps,
                showlegend=False, hoverinfo="skip",
            )
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=hours, y=[*low, low[-1]], mode="lines", line=steps, fill="tonexty",
                fillcolor=_band_colour(colour), showlegend=False, hoverinfo="skip",
            )
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=hours,
                y=[*curve, curve[-1]],
                mode="lines",
                line={"shape": "hv", "color": colour},
                name=f"{arm_id} ({stats.censored:,} of {stats.n:,} still open)",
                hovertemplate="%{x:.1f} h: %{y:.1%} unresolved<extra></extra>",
            )
        )
    fig.update_xaxes(title="hours since the contact")
    fig.update_yaxes(title="share still unresolved", tickformat=".0%", range=[0, 1])
    return _layout(fig, f"{row.metric.label}: share still unresolved", height=380)


def _band_colour(hex_colour: str) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, 0.18)"


def share_still_open(row: MetricResult) -> dict[str, float]:
    """Per arm of a time-to-event row: the share of its users still open."""
    out = {}
    for name, arm in (("control", row.control), ("treatment", row.treatment)):
        stats = arm.stats
        if isinstance(stats, SurvivalStats) and stats.n:
            out[name] = stats.censored / stats.n
    return out


def nps_split(result: ExperimentResult, metric_id: str = "nps") -> go.Figure:
    """Promoter / passive / detractor shares per arm, as 100% stacked bars."""
    arms = _nps_arms(result, metric_id)
    fig = go.Figure()
    parts = (
        ("detractors", "detractors (0-6)", BAD),
        ("passives", "passives (7-8)", "#bdbdbd"),
        ("promoters", "promoters (9-10)", GOOD),
    )
    names = [name for name, _ in arms]
    for field, label, colour in parts:
        shares = [getattr(s, field) / s.n if s.n else 0.0 for _, s in arms]
        fig.add_trace(
            go.Bar(
                x=shares,
                y=names,
                orientation="h",
                name=label,
                marker={"color": colour},
                text=[f"{v:.0%}" for v in shares],
                textposition="inside",
                hovertemplate="%{y}: %{x:.1%}<extra>" + label + "</extra>",
            )
        )
    return _layout(
        fig,
        "NPS answers per arm",
        barmode="stack",
        xaxis={"tickformat": ".0%", "range": [0, 1]},
        yaxis={"autorange": "reversed"},
        height=120 + 50 * len(names),
    )


def exposures_per_day(
    frame: pl.DataFrame, experiment_id: str | None = None
) -> go.Figure:
    """New analysed users per day per arm (``Summaries.exposures`` ``d_users``).

    Args:
        frame: columns ``day``, ``variant``, ``d_users`` (and ``experiment_id``).
        experiment_id: keep only this experiment's rows when given.

    Returns:
        A grouped bar chart, one colour per arm.
    """
    if experiment_id is not None and "experiment_id" in frame.columns:
        frame = frame.filter(pl.col("experiment_id") == experiment_id)
    fig = go.Figure()
    variants = (
        frame["variant"].unique(maintain_order=True).to_list() if frame.height else []
    )
    for i, variant in enumerate(variants):
        rows = frame.filter(pl.col("variant") == variant).sort("day")
        fig.add_trace(
            go.Bar(
                x=rows["day"].to_list(),
                y=rows["d_users"].to_list(),
                name=variant,
                marker={"color": ARM_COLOURS[i % len(ARM_COLOURS)]},
            )
        )
    return _layout(
        fig, "New users per day", barmode="group", yaxis={"title": "users"}, height=300
    )


def segment_forest(frame: pl.DataFrame, *, alpha: float = 0.05) -> go.Figure:
    """Relative lift per segment with its fixed interval (:mod:`cxlab.segments`)."""
    fig = go.Figure()
    if frame.height:
        labels = [
            f"{d} = {s}"
            for d, s in zip(frame["dimension"], frame["segment"], strict=True)
        ]
        rel = frame["rel_delta"].to_list()
        lo = frame["rel_ci_low"].to_list()
        hi = frame["rel_ci_high"].to_list()
        fig.add_trace(
            go.Scatter(
                x=rel,
                y=labels,
                mode="markers",
                name="segment lift",
                marker={"color": ARM_COLOURS[0], "size": 10},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": [_finite(h - r) for h, r in zip(hi, rel, strict=True)],
                    "arrayminus": [
                        _finite(r - low) for r, low in zip(rel, lo, strict=True)
                    ],
                    "color": ARM_COLOURS[0],
                },
            )
        )
        fig.update_yaxes(categoryorder="array", categoryarray=labels[::-1])
    fig.add_vline(x=0, line={"color": "#444", "width": 1})
    bounds = [] if not frame.height else frame["rel_ci_low"].to_list()
    bounds += [] if not frame.height else frame["rel_ci_high"].to_list()
    return _layout(
        fig,
        f"Lift by segment ({(1 - alpha) * 100:g}% fixed CI, unadjusted)",
        xaxis={"tickformat": "+.0%", "range": _settled_range(bounds, share=0)},
        height=max(220, 60 + 36 * frame.height),
    )


def figures_html(figures: Sequence[go.Figure], title: str) -> str:
    """Several figures in one self-contained HTML page (plotly.js inlined once)."""
    parts = [
        fig.to_html(include_plotlyjs=(i == 0), full_html=False)
        for i, fig in enumerate(figures)
    ]
    body = "\n".join(f"<section>{part}</section>" for part in parts)
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
        f'</head><body style="font-family: sans-serif"><h1>{title}</h1>\n{body}\n'
        "</body></html>"
    )


# --- header and health strip texts --------------------------------------------------


def allocation_text(result: ExperimentResult) -> str:
    """Variants with their planned shares, control first: ``control 50% · b 50%``."""
    exp = result.experiment
    return " · ".join(
        f"{v.id}{' (control)' if v.id == exp.control else ''} {v.weight:.0%}"
        for v in exp.variants
    )


@dataclass(frozen=True, slots=True)
class HealthItem:
    """One tile of the health strip.

    Attributes:
        label: what is checked.
        value: the short finding.
        ok: whether it passes.
        detail: one sentence with the numbers.
    """

    label: str
    value: str
    ok: bool
    detail: str


def health_items(result: ExperimentResult) -> list[HealthItem]:
    """The health strip: SRM, multiple exposures, sample size, time left.

    Args:
        result: the analysed experiment.

    Returns:
        Four :class:`HealthItem` tiles, in display order.
    """
    exp = result.experiment
    total = sum(result.users.values())
    observed = " / ".join(
        f"{n / total:.1%}" if total else "—" for n in result.users.values()
    )
    expected = " / ".join(f"{v.weight:.1%}" for v in exp.variants)
    srm = HealthItem(
        "Traffic split (SRM)",
        "ok" if result.srm.ok else "mismatch",
        result.srm.ok,
        f"observed {observed} vs expected {expected} "
        f"({', '.join(f'{k} {v:,}' for k, v in result.users.items())}); "
        f"χ² p = {result.srm.p_value:.3g}, flagged below 0.001.",
    )
    exposed = total + result.multiple_exposures
    share = result.multiple_exposures / exposed if exposed else 0.0
    multiple = HealthItem(
        "Multiple exposures",
        f"{result.multiple_exposures:,} ({share:.2%})",
        share < 0.01,
        "users who saw more than one variant; excluded from the analysis.",
    )
    smallest = min(result.users.values()) if result.users else 0
    sample = HealthItem(
        "Sample size",
        f"{total:,} users",
        smallest >= 100,
        f"smallest arm {smallest:,} users (warning below 100 per arm).",
    )
    if result.finished or (exp.end is not None and result.as_of >= exp.end):
        time_left = HealthItem(
            "Time", "ended", True, f"ran {exp.start:%d %b} – {result.as_of:%d %b %Y}."
        )
    elif exp.end is not None:
        days = (exp.end - result.as_of).days
        time_left = HealthItem(
            "Time", f"{days} days left", True, f"planned end {exp.end:%d %b %Y}."
        )
    else:
        planned = f" of {exp.planned_users:,} planned" if exp.planned_users else ""
        time_left = HealthItem(
            "Time", "running", True, f"no end date; {total:,} users{planned}."
        )
    return [srm, multiple, sample, time_left]


# --- PNG export (optional: kaleido plus a Chrome/Chromium on the server) ------------

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def png_export_available() -> bool:
    """Whether :func:`figure_png` can work here: kaleido installed and a browser.

    Kaleido 1.x renders through a local Chrome or Chromium (``BROWSER_PATH`` or one
    on ``PATH``); it is never downloaded from here.
    """
    import importlib.util
    import os
    import shutil

    if importlib.util.find_spec("kaleido") is None:
        return False
    return bool(os.environ.get("BROWSER_PATH")) or any(map(shutil.which, BROWSERS))


def figure_png(fig: go.Figure, *, width: int = 1100, scale: float = 2) -> bytes:
    """A figure as PNG bytes (requires :func:`png_export_available`).

    Args:
        fig: the figure.
        width: the image width in CSS pixels (the height is the figure's own).
        scale: the pixel ratio (2 = sharp on high-DPI screens and in slides).

    Returns:
        The PNG file's bytes.
    """
    height = fig.layout.height or 400
    return fig.to_image(format="png", width=width, height=height, scale=scale)


# --- planner and data page ----------------------------------------------------------


def mde_chart(plan: Plan) -> go.Figure:
    """The relative MDE after each week (fixed and sequential) against the target.

    Args:
        plan: the plan.

    Returns:
        A Plotly figure: one line per method, a dashed line at the target MDE.
    """
    weeks = [w.week for w in plan.weeks]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=weeks,
            y=[w.relative_mde for w in plan.weeks],
            mode="lines+markers",
            name="fixed horizon",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=weeks,
            y=[w.sequential_mde for w in plan.weeks],
            mode="lines+markers",
            name=f"sequential (N* = {plan.tuning:,})",
        )
    )
    fig.add_hline(
        y=plan.relative_mde,
        line_dash="dash",
        annotation_text=f"target {percent_text(plan.relative_mde)}",
    )
    fig.update_layout(
        xaxis_title="weeks running",
        yaxis_title="minimum detectable effect (relative)",
        yaxis_tickformat=".1%",
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": 1.1},
        height=360,
    )
    return fig


def events_per_day_chart(per_day: pl.DataFrame) -> go.Figure:
    """Stacked daily bars of rows by event type."""
    fig = go.Figure()
    for event in sorted(set(per_day["event"].to_list()), key=str):
        part = per_day.filter(pl.col("event") == event)
        fig.add_trace(
            go.Bar(x=part["day"].to_list(), y=part["rows"].to_list(), name=str(event))
        )
    fig.update_layout(
        barmode="stack",
        xaxis_title="day (UTC)",
        yaxis_title="rows",
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": 1.12},
        height=340,
    )
    return fig
