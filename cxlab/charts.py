"""Pure builders of what the pages show: Vega-Lite charts and display tables.

Every function takes engine results (:mod:`cxlab.analysis`, :mod:`cxlab.summaries`
tables) and returns a chart, a Vega-Lite specification whose data rows carry the
engine's numbers (https://vega.github.io/vega-lite/docs/spec.html), or a small
Polars frame; nothing here imports Streamlit, so tests assert on a chart's
``data["values"]`` directly. Colours follow the metric's good direction: a
significant change in the good direction is green, in the bad direction red,
anything else grey (and everything grey when the experiment's traffic split is
broken, because then no result can be trusted).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from cxlab.analysis import ExperimentResult, MetricResult
from cxlab.config import MetricDef
from cxlab.decision import (
    Call,
    Method,
    Scale,
    format_delta,
    format_lift,
    format_value,
    in_points,
    level_text,
    shown_scale,
)
from cxlab.markdown import coloured, escaped, pipe_table
from cxlab.novelty import NoveltyCheck
from cxlab.planning import Plan, percent_text
from cxlab.rendering import render
from cxlab.stats.aggregates import NpsStats
from cxlab.stats.bayesian import BayesianResult
from cxlab.stats.survival import SurvivalStats, survival_band

Chart = dict[str, Any]
"""A Vega-Lite specification: what the pages draw (:func:`figure_svg`)."""

GOOD = "#1a9850"
BAD = "#d73027"
NEUTRAL = "#8c8c8c"
MUTED = "#c8c8c8"
INK = "#1f2d3d"
ZERO = "#444444"
ARM_COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756")
SEQUENTIAL_NAME = "sequential CI (valid at every look)"
FIXED_NAME = "fixed CI (valid once, at the end)"
# A layered chart's resolution giving each layer's colour its own legend (_keyed).
INDEPENDENT_COLOURS = {"scale": {"color": "independent"}}
# vl-convert 1.9 renders Vega-Lite 6, as the HTML download's bundle does.
SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
CONFIG: Chart = {
    # vl-convert measures text in Liberation Sans (a font of its own); the others
    # have the same widths, so a browser drawing a picture's text (figure_svg)
    # with any of them draws it where it was measured.
    "font": "Liberation Sans, Arimo, Arial, Helvetica, sans-serif",
    "title": {"anchor": "start", "fontSize": 15, "fontWeight": 600, "offset": 12},
    "axis": {
        "labelFontSize": 12,
        "labelLimit": 320,
        "titleFontSize": 13,
        "gridColor": "#ececec",
    },
    # Numbers and dates are short: no label limit, whose truncation check measures
    # every label again (vl-convert measures text at about 1 ms a string). A date
    # axis draws about six labels, not one per day, each measured for overlap.
    "axisQuantitative": {"tickCount": 6, "labelLimit": 0},
    "axisTemporal": {"tickCount": 6, "labelLimit": 0},
    "legend": {"orient": "top", "labelFontSize": 12, "labelLimit": 320},
    "view": {"stroke": None},
}
EXPORT_WIDTH = 1000
# A name of the user's longer than this is cut where a chart labels with it, as
# Vega's ``labelLimit`` would (at 320 px), but without measuring every label twice.
LABEL_CHARS = 48
# Plain Unicode (no emoji): every browser font has these; badge_colour colours them.
BADGES = {"win": "● win", "loss": "● loss", "inconclusive": "○ inconclusive"}

SQRT_2PI = math.sqrt(2 * math.pi)


def verdict_colour(verdict: str, *, greyed: bool = False) -> str:
    """Green for a win, red for a loss, grey otherwise (all muted when greyed)."""
    if greyed:
        return MUTED
    return {"win": GOOD, "loss": BAD}.get(verdict, NEUTRAL)


def badge_colour(text: object) -> str | None:
    """Streamlit's Markdown colour of a verdict badge.

    Green a win, red a loss, grey inconclusive or untrusted: the forest's colours
    (:func:`verdict_colour`).
    """
    value = str(text)
    if value.startswith(("◌", "○")):
        return "gray"
    return {BADGES["win"]: "green", BADGES["loss"]: "red"}.get(value)


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


def scorecard_table(frame: pl.DataFrame) -> str:
    """:func:`scorecard_frame` as a Markdown pipe table, verdicts coloured.

    A scorecard has a few rows: as text it is read whole, without a grid's scroll
    bars, and a results page opened in a new tab draws without starting a data
    grid (bench/RESULTS.md, page speed). With one treatment, its name titles the
    treatment's column instead of repeating on every row. A metric's good direction
    is its arrow beside its name, not a column: a column fewer keeps the table of a
    three-arm experiment within the page's width (tests/app/test_browser.py).
    """
    (only, *others) = frame["variant"].unique(maintain_order=True)
    if not others and only not in frame.columns:
        frame = frame.drop("variant").rename({"treatment": only})
    if "good direction" in frame.columns:  # "↑ higher" or "↓ lower": its arrow
        arrow = pl.col("good direction").str.head(1)
        frame = frame.with_columns(metric=pl.format("{} {}", "metric", arrow))
        frame = frame.drop("good direction")
    return pipe_table(
        [
            {
                title: coloured(value, badge_colour(value))
                if title == "verdict"
                else escaped(value)
                for title, value in row.items()
            }
            for row in frame.iter_rows(named=True)
        ]
    )


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


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _chart(
    title: str, rows: Sequence[Mapping[str, object]], height: object, **body: object
) -> Chart:
    """A whole chart: its title, its data rows, its size and the shared look."""
    return {
        "$schema": SCHEMA,
        "title": title,
        "data": {"values": list(rows)},
        "width": "container",
        "height": height,
        "config": CONFIG,
        **body,
    }


def _zero(channel: str) -> Chart:
    """A thin line at 0 on ``channel`` (``x`` or ``y``): no change."""
    return {
        "data": {"values": [{}]},
        "mark": {"type": "rule", "color": ZERO, "strokeWidth": 1},
        "encoding": {channel: {"datum": 0}},
    }


def _legend(names: Sequence[str], colours: Sequence[str]) -> Chart:
    """A colour scale giving each name its colour, in this order."""
    return {"domain": list(names), "range": list(colours)}


def _keyed(names: Sequence[str], colours: Sequence[str], symbol: str) -> Chart:
    """A colour channel with a legend of its own, drawing ``symbol``s.

    ``"square"`` for areas, ``"stroke"`` for lines: a layered chart whose marks
    share one legend draws every entry as a circle, so each kind of mark gets its
    scale and legend (``resolve=INDEPENDENT_COLOURS``).
    """
    legend: Chart = {"symbolType": symbol, "title": None}
    if symbol == "stroke":
        legend["symbolStrokeWidth"] = 2.5
    return {"scale": _legend(names, colours), "legend": legend}


def _arm_colours(n: int) -> list[str]:
    return [ARM_COLOURS[i % len(ARM_COLOURS)] for i in range(n)]


def _whiskers(
    along: str,
    measure: Chart,
    across: Chart,
    colour: Chart,
    tooltip: Sequence[Chart],
    *,
    shape: str = "circle",
) -> list[Chart]:
    """Per row, a rule from ``low`` to ``high`` and a point at ``value``.

    ``along`` is the measure's channel (``x`` or ``y``); ``measure`` its encoding
    (type, axis, scale) without the field, ``across`` the other channel's.
    """
    other = "y" if along == "x" else "x"
    shared = {other: across, "color": colour, "tooltip": list(tooltip)}
    return [
        {
            "mark": {"type": "rule", "strokeWidth": 2.5},
            "encoding": {
                along: {**measure, "field": "low"},
                f"{along}2": {"field": "high"},
                **shared,
            },
        },
        {
            "mark": {"type": "point", "filled": True, "size": 110, "shape": shape},
            "encoding": {along: {**measure, "field": "value"}, **shared},
        },
    ]


def _measure(
    title: str, fmt: str | None, domain: Sequence[float] | None = None
) -> Chart:
    """A quantitative axis: its title, d3 tick format and (optional) fixed range.

    Vega-Lite scales: https://vega.github.io/vega-lite/docs/scale.html (``clamp``
    keeps the first days' very wide intervals inside a settled range).
    """
    out: Chart = {"type": "quantitative", "title": title}
    if fmt:
        out["axis"] = {"format": fmt}
    if domain is not None:  # exactly this range; what lies beyond is drawn at its edge
        out["scale"] = {"domain": list(domain), "nice": False, "clamp": True}
    return out


DAY: Chart = {
    "field": "day",
    "type": "temporal",
    "scale": {"type": "utc"},
    "axis": {"format": "%d %b", "title": None},
}


DAY_TIP: Chart = {
    "field": "day",
    "type": "temporal",
    "timeUnit": "utcyearmonthdate",
    "title": "day",
    "format": "%d %b %Y",
}


def _day(day: dt.date) -> str:
    return day.isoformat()


def _row_label(result: ExperimentResult, row: MetricResult) -> str:
    """A forest's row: the metric's name (cut to ``LABEL_CHARS``) and role."""
    name = _cut(row.metric.label)
    if len(result.experiment.treatments) > 1:
        return f"{name} · {_cut(row.variant)} ({row.role})"
    return f"{name} ({row.role})"


def _cut(text: str, chars: int = LABEL_CHARS) -> str:
    """``text``, ending in "…" after ``chars - 1`` characters if it is longer."""
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "…"


END = ("value", "low", "high")  # what an interval's axis must show
FOREST_NAMES = {
    "win": "significant, good direction",
    "loss": "significant, bad direction",
    "inconclusive": "not significant",
}


def delta_forest(
    result: ExperimentResult, method: Method, *, greyed: bool | None = None
) -> list[Chart]:
    """Every scorecard row's estimate with the method's interval.

    Relative lifts share one chart; metrics read in points (NPS) get a chart of
    their own below, in points (two charts rather than two panels of one: a
    Vega-Lite concatenation cannot fit its labels into the page's width). One data
    row per scorecard row, in scorecard order (Primary at the top): ``value``,
    ``low``, ``high`` are the call's estimate and interval, each at its own level
    (after the correction), as in the scorecard; ``verdict`` names its colour.

    Args:
        result: the analysed experiment.
        method: whose estimates, intervals and verdicts to draw.
        greyed: draw everything muted; default when the SRM check fails.

    Returns:
        The relative lifts' chart, then the points' chart if any metric is in points.
    """
    if greyed is None:
        greyed = not result.srm.ok
    prefix = "untrusted: " if greyed else ""
    rows = []
    for r in _scorecard_order(result):
        call = r.calls[method]
        scale: Scale = "abs" if in_points(r.metric) else "rel"
        value = call_delta(r, call, scale)
        low, high = call_ci(r, call, scale)
        rows.append(
            {
                "panel": "points" if scale == "abs" else "relative lift",
                "label": _row_label(result, r),
                "verdict": prefix + FOREST_NAMES[call.verdict],
                "value": _finite(value),
                "low": _finite(low),
                "high": _finite(high),
                "estimate": format_delta(r.metric, value, scale),
                "interval": f"{level_text(call)} {ci_text(r, call, scale)}",
            }
        )
    names = [prefix + name for name in FOREST_NAMES.values()]
    colours = [verdict_colour(v, greyed=greyed) for v in FOREST_NAMES]
    colour = {
        "field": "verdict",
        "type": "nominal",
        "scale": _legend(names, colours),
        "title": None,
        "legend": {"labelLimit": 0},  # names of ours
    }
    tooltip = [
        {"field": "label", "title": "metric"},
        {"field": "estimate"},
        {"field": "interval"},
    ]
    title = f"Estimates vs control with {method} intervals (each at its level)"
    out = []
    for panel in ("relative lift", "points"):
        shown = [row for row in rows if row["panel"] == panel]
        if not shown:
            continue
        labels = [row["label"] for row in shown]
        across = {
            "field": "label",
            "type": "nominal",
            "sort": labels,
            "title": None,
            "axis": {"labelLimit": 0},  # cut here already (_row_label)
        }
        measure = _measure(
            panel,
            "+.0%" if panel == "relative lift" else None,
            _settled_range([row[k] for row in shown for k in END], share=0),
        )
        layers = _whiskers("x", measure, across, colour, tooltip, shape="diamond")
        out.append(
            _chart(
                title if not out else "The same, for metrics read in points",
                shown,
                {"step": 40},
                layer=[_zero("x"), *layers],
            )
        )
    return out


def cumulative_lift(
    history: Sequence[ExperimentResult],
    metric_id: str,
    variant: str | None = None,
    scale: Scale = "rel",
) -> Chart:
    """The estimate as of each day, with the sequential and fixed intervals.

    Each day's estimate and intervals are that day's calls (:mod:`cxlab.decision`),
    each at its level, so the last day matches the scorecard. NPS is in points.

    Args:
        history: the experiment as of each day, oldest first.
        metric_id: the metric.
        variant: the treatment (default the first).
        scale: relative (%) or absolute; NPS is always in points.

    Returns:
        The chart: one row per day with ``lift``, ``seq_low``/``seq_high`` (the
        sequential interval, valid at every look) and ``fixed_low``/``fixed_high``
        (valid only once, at the planned end).
    """
    rows: list[dict[str, object]] = []
    metric: MetricDef | None = None
    for res in history:
        try:
            row = res.result(metric_id, variant)
        except KeyError:
            continue
        metric = row.metric
        seq, fix = row.calls["sequential"], row.calls["fixed"]
        lift = call_delta(row, seq, scale)
        (seq_low, seq_high), (fixed_low, fixed_high) = (
            call_ci(row, seq, scale),
            call_ci(row, fix, scale),
        )
        rows.append(
            {
                "day": _day(res.as_of),
                "lift": _finite(lift),
                "seq_low": _finite(seq_low),
                "seq_high": _finite(seq_high),
                "fixed_low": _finite(fixed_low),
                "fixed_high": _finite(fixed_high),
                "estimate": format_delta(metric, lift, scale),
            }
        )
    shown = shown_scale(metric, scale) if metric is not None else scale
    unit = "points" if metric is not None and in_points(metric) else "difference"
    title = "lift vs control" if shown == "rel" else f"{unit} vs control"
    columns = ("lift", "fixed_low", "fixed_high", "seq_low", "seq_high")
    domain = _settled_range(*([r[c] for r in rows] for c in columns))
    measure = _measure(title, _axis_format(metric, shown), domain)
    line = "relative lift" if shown == "rel" else "difference"
    band_colour = _keyed([SEQUENTIAL_NAME, FIXED_NAME], ARM_COLOURS[:2], "square")
    line_colour = _keyed([line], [INK], "stroke")
    bands = [
        {
            "mark": {"type": "area", "opacity": opacity},
            "encoding": {
                "x": DAY,
                "y": {**measure, "field": low},
                "y2": {"field": high},
                "color": {**band_colour, "datum": name},
            },
        }
        for name, low, high, opacity in (
            (SEQUENTIAL_NAME, "seq_low", "seq_high", 0.15),
            (FIXED_NAME, "fixed_low", "fixed_high", 0.25),
        )
    ]
    return _chart(
        "Cumulative relative lift" if shown == "rel" else "Cumulative difference",
        rows,
        280,
        layer=[
            {"layer": bands},  # one colour scale for both bands
            _zero("y"),
            {
                "mark": {"type": "line", "strokeWidth": 2.5},
                "encoding": {
                    "x": DAY,
                    "y": {**measure, "field": "lift"},
                    "color": {**line_colour, "datum": line},
                    "tooltip": [
                        {**DAY_TIP, "title": "as of"},
                        {"field": "estimate"},
                    ],
                },
            },
        ],
        resolve=INDEPENDENT_COLOURS,
    )


def novelty_lifts(check: NoveltyCheck, scale: Scale = "rel") -> Chart:
    """Does the effect fade? The lift per bucket of days since first exposure.

    Each point is the bucket's estimate with its fixed-horizon interval at the
    experiment's alpha, uncorrected (:mod:`cxlab.novelty`); the tooltip names the
    users of each arm in the bucket. NPS is in points.

    Args:
        check: the metric's and treatment's novelty check.
        scale: relative (%) or absolute; NPS is always in points.

    Returns:
        One row per bucket, youngest first: ``value``, ``low``, ``high``.
    """
    metric = check.metric
    shown = shown_scale(metric, scale)
    rows = []
    for bucket in check.buckets:
        fixed = bucket.fixed
        value = fixed.rel_delta if shown == "rel" else fixed.abs_delta
        low, high = fixed.rel_ci if shown == "rel" else fixed.abs_ci
        bounded = _finite(value) is not None and _finite(low) is not None
        interval = (
            f"[{format_delta(metric, low, scale)}, {format_delta(metric, high, scale)}]"
            if bounded
            else "no interval"
        )
        rows.append(
            {
                "bucket": bucket.label,
                "value": _finite(value),
                "low": _finite(low) if bounded else None,
                "high": _finite(high) if bounded else None,
                "estimate": f"{format_delta(metric, value, scale)} {interval}",
                "users": f"control {bucket.control_n:,} · {check.variant} "
                f"{bucket.treatment_n:,}",
            }
        )
    unit = "points" if in_points(metric) else "difference"
    measure = _measure(
        "lift vs control" if shown == "rel" else f"{unit} vs control",
        _axis_format(metric, shown),
        _settled_range([r[k] for r in rows for k in END], share=0),
    )
    across = {
        "field": "bucket",
        "type": "ordinal",
        "sort": [r["bucket"] for r in rows],
        "title": "days since the user's first exposure",
        "axis": {"labelAngle": 0},
    }
    tooltip = [
        {"field": "bucket", "title": "days"},
        {"field": "estimate"},
        {"field": "users"},
    ]
    return _chart(
        "Does the effect fade?",
        rows,
        260,
        layer=[_zero("y"), *_whiskers("y", measure, across, {"value": INK}, tooltip)],
    )


def _axis_format(metric: MetricDef | None, scale: Scale) -> str | None:
    """d3 tick format of a delta axis: %, percentage points, or plain."""
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


def arm_values_over_time(history: Sequence[ExperimentResult], metric_id: str) -> Chart:
    """The metric's cumulative value per arm as of each day.

    Returns:
        One row per (day, arm): ``day``, ``arm``, ``value``.
    """
    rows = []
    arms: list[str] = []
    metric: MetricDef | None = None
    for res in history:
        results = [r for r in res.results if r.metric.id == metric_id]
        if not results:
            continue
        metric = results[0].metric
        values = [(res.experiment.control, results[0].control.value)]
        values += [(r.variant, r.treatment.value) for r in results]
        for arm, value in values:
            if arm not in arms:
                arms.append(arm)
            rows.append({"day": _day(res.as_of), "arm": arm, "value": _finite(value)})
    fmt = None
    if (
        metric is not None
        and not in_points(metric)
        and metric.value_format == "percent"
    ):
        fmt = ".1%"
    label = metric.label if metric else metric_id
    colours = _arm_colours(len(arms))
    return _chart(
        f"{label} per arm (cumulative)",
        rows,
        260,
        mark={"type": "line", "strokeWidth": 2},
        encoding={
            "x": DAY,
            "y": {**_measure(label, fmt), "field": "value", "scale": {"zero": False}},
            "color": {
                "field": "arm",
                "type": "nominal",
                "scale": _legend(arms, colours),
                "title": None,
            },
            "tooltip": [
                {**DAY_TIP, "title": "as of"},
                {"field": "arm"},
                {"field": "value", "format": fmt or ".4g"},
            ],
        },
    )


def posterior(
    bayesian: BayesianResult,
    direction: str,
    *,
    title: str = "Posterior of the lift",
    points_per_unit: float | None = None,
) -> Chart:
    """The normal posterior of the lift with P(better) shaded.

    Args:
        bayesian: the Bayesian result (``posterior_mean``, ``posterior_sd`` on the
            relative scale, ``prob_beat_control``).
        direction: the metric's good direction, ``increase`` or ``decrease``.
        title: the chart title.
        points_per_unit: draw in points instead: the control value, by which the
            relative posterior scales to the absolute one (NPS), as the Bayesian
            block's ``abs_ci`` does.

    Returns:
        One row per grid point: ``lift``, ``density`` and ``good`` (the density on
        the metric's good side of 0, else None); the shaded area is the posterior
        mass on the good side.
    """
    unit = points_per_unit or 1.0
    mean, sd = bayesian.posterior_mean * unit, bayesian.posterior_sd * abs(unit)
    if not (math.isfinite(mean) and math.isfinite(sd) and sd > 0):
        return _chart(
            title,
            [{"text": "not enough data"}],
            120,
            mark={"type": "text", "fontSize": 14, "color": NEUTRAL},
            encoding={"text": {"field": "text"}},
        )
    lo, hi = min(mean - 4 * sd, -sd), max(mean + 4 * sd, sd)
    n = 201
    xs = [lo + (hi - lo) * i / (n - 1) for i in range(n)]
    if 0 not in xs:
        xs = sorted([*xs, 0.0])
    increase = direction == "increase"
    rows = []
    for x in xs:
        density = math.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * SQRT_2PI)
        good = x >= 0 if increase else x <= 0  # φ((x − μ)/σ)/σ, the normal density
        rows.append({"lift": x, "density": density, "good": density if good else None})
    measure = _measure(
        "points" if points_per_unit else "relative lift",
        None if points_per_unit else "+.0%",
    )
    shaded = f"P(better) = {bayesian.prob_beat_control:.1%}"
    density_name = "posterior density"
    density_axis = {
        "type": "quantitative",
        "title": "density",
        "axis": {"labels": False, "ticks": False},
    }
    return _chart(
        title,
        rows,
        220,
        layer=[
            {
                "mark": {"type": "area", "opacity": 0.35},
                "encoding": {
                    "x": {**measure, "field": "lift"},
                    "y": {**density_axis, "field": "good"},
                    "color": {**_keyed([shaded], [GOOD], "square"), "datum": shaded},
                },
            },
            {
                "mark": {"type": "line", "strokeWidth": 2},
                "encoding": {
                    "x": {**measure, "field": "lift"},
                    "y": {**density_axis, "field": "density"},
                    "color": {
                        **_keyed([density_name], [INK], "stroke"),
                        "datum": density_name,
                    },
                    "tooltip": [
                        {
                            "field": "lift",
                            "format": "+.1f" if points_per_unit else "+.1%",
                        }
                    ],
                },
            },
            _zero("x"),
        ],
        resolve=INDEPENDENT_COLOURS,
    )


def contact_reasons(
    result: ExperimentResult, metric_id: str, variant: str, method: Method
) -> Chart:
    """Why customers contacted us: per category, each arm's rate, sorted by effect.

    The control's rate is a tick; the treatment's is its rate with the interval
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

    Returns:
        One row per category: ``control``, and the treatment's ``value`` with
        ``low``/``high``, its ``colour``.
    """
    picked = [
        r
        for r in result.results
        if r.metric.id == metric_id and r.variant == variant and r.category
    ]
    picked.sort(key=lambda r: _finite(r.calls[method].rel_delta) or 0.0)
    rows = []
    for r in picked:
        call = r.calls[method]
        low, high = (r.control.value + bound for bound in call.abs_ci)
        rows.append(
            {
                "reason": str(r.category),
                "control": _finite(r.control.value),
                "value": _finite(r.treatment.value),
                "low": _finite(low),
                "high": _finite(high),
                "colour": verdict_colour(call.verdict),
                "rates": f"control {r.control.value:.4f} · {variant} "
                f"{r.treatment.value:.4f} per user",
                "effect": f"{format_delta(r.metric, call.rel_delta, 'rel')} "
                f"({level_text(call)})",
            }
        )
    across = {
        "field": "reason",
        "type": "nominal",
        "sort": [r["reason"] for r in rows],
        "title": None,
    }
    ends = [r[k] for r in rows for k in ("control", *END)]
    measure = _measure("events per exposed user", None, _settled_range(ends, share=0))
    tooltip = [{"field": "reason"}, {"field": "rates"}, {"field": "effect"}]
    colour = {"field": "colour", "type": "nominal", "scale": None, "legend": None}
    name = picked[0].metric.label.split(": ")[0] if picked else metric_id
    return _chart(
        f"Why customers contacted us: {name}",
        rows,
        {"step": 32},
        layer=[
            {
                "mark": {
                    "type": "tick",
                    "orient": "vertical",
                    "color": NEUTRAL,
                    "thickness": 2,
                    "size": 18,
                },
                "encoding": {
                    "x": {**measure, "field": "control"},
                    "y": across,
                    "tooltip": tooltip,
                },
            },
            *_whiskers("x", measure, across, colour, tooltip),
        ],
    )


def survival_curves(result: ExperimentResult, metric_id: str, variant: str) -> Chart:
    """Share still unresolved against hours, per arm, with pointwise bands.

    The Kaplan–Meier curves of the control and the treatment up to the metric's
    horizon, each with its log(−log) band at the experiment's alpha
    (:func:`cxlab.stats.survival.survival_band`).

    Args:
        result: the analysed experiment.
        metric_id: a time-to-event metric.
        variant: the treatment.

    Returns:
        One row per (arm, step): ``hours``, ``share`` (the curve), ``low``, ``high``.
    """
    row = result.result(metric_id, variant)
    rows: list[dict[str, object]] = []
    arms: list[str] = []
    for arm_id, arm in (
        (result.experiment.control, row.control),
        (variant, row.treatment),
    ):
        stats = arm.stats
        if not isinstance(stats, SurvivalStats):
            continue
        km = stats.km
        lower, upper = survival_band(km, alpha=result.experiment.alpha)
        inside = km.time <= stats.horizon
        curve = [1.0, *km.survival[inside]]
        low, high = [1.0, *lower[inside]], [1.0, *upper[inside]]
        hours = [0.0, *km.time[inside], stats.horizon]
        name = f"{arm_id} ({stats.censored:,} of {stats.n:,} still open)"
        arms.append(name)
        for i, h in enumerate(hours):
            j = min(i, len(curve) - 1)  # the last step runs on to the horizon
            rows.append(
                {
                    "arm": name,
                    "hours": float(h),
                    "share": float(curve[j]),
                    "low": float(low[j]),
                    "high": float(high[j]),
                }
            )
    colour = {
        "field": "arm",
        "type": "nominal",
        "scale": _legend(arms, ARM_COLOURS[: len(arms)]),
        "title": None,
        "legend": {"symbolType": "stroke", "symbolOpacity": 1},
    }
    hours = {
        "field": "hours",
        "type": "quantitative",
        "title": "hours since the contact",
        "scale": {"domain": [0, max((r["hours"] for r in rows), default=1.0)]},
    }
    share = {
        "type": "quantitative",
        "title": "share still unresolved",
        "axis": {"format": ".0%"},
        "scale": {"domain": [0, 1]},
    }
    return _chart(
        f"{row.metric.label}: share still unresolved",
        rows,
        300,
        layer=[
            {
                "mark": {"type": "area", "interpolate": "step-after", "opacity": 0.18},
                "encoding": {
                    "x": hours,
                    "y": {**share, "field": "low"},
                    "y2": {"field": "high"},
                    "color": colour,
                },
            },
            {
                "mark": {"type": "line", "interpolate": "step-after"},
                "encoding": {
                    "x": hours,
                    "y": {**share, "field": "share"},
                    "color": colour,
                    "tooltip": [
                        {"field": "arm"},
                        {"field": "hours", "format": ".1f"},
                        {"field": "share", "title": "unresolved", "format": ".1%"},
                    ],
                },
            },
        ],
    )


def share_still_open(row: MetricResult) -> dict[str, float]:
    """Per arm of a time-to-event row: the share of its users still open."""
    out = {}
    for name, arm in (("control", row.control), ("treatment", row.treatment)):
        stats = arm.stats
        if isinstance(stats, SurvivalStats) and stats.n:
            out[name] = stats.censored / stats.n
    return out


NPS_PARTS = (
    ("detractors", "detractors (0-6)", BAD),
    ("passives", "passives (7-8)", "#bdbdbd"),
    ("promoters", "promoters (9-10)", GOOD),
)


def nps_split(result: ExperimentResult, metric_id: str = "nps") -> Chart:
    """Promoter / passive / detractor shares per arm, as 100% stacked bars.

    Returns:
        One row per (arm, part): its ``share``, the bar's ``start`` and ``end``.
    """
    rows = []
    arms = _nps_arms(result, metric_id)
    for arm, stats in arms:
        start = 0.0
        for field, label, _ in NPS_PARTS:
            share = getattr(stats, field) / stats.n if stats.n else 0.0
            rows.append(
                {
                    "arm": arm,
                    "part": label,
                    "share": share,
                    "start": start,
                    "end": start + share,
                    "middle": start + share / 2,
                    "text": f"{share:.0%}",
                }
            )
            start += share
    names = [label for _, label, _ in NPS_PARTS]
    arm_axis = {
        "field": "arm",
        "type": "nominal",
        "sort": [a for a, _ in arms],
        "title": None,
    }
    return _chart(
        "NPS answers per arm",
        rows,
        {"step": 44},
        layer=[
            {
                "mark": "bar",
                "encoding": {
                    "y": arm_axis,
                    "x": {
                        "field": "start",
                        "type": "quantitative",
                        "title": None,
                        "axis": {"format": ".0%"},
                        "scale": {"domain": [0, 1]},
                    },
                    "x2": {"field": "end"},
                    "color": {
                        "field": "part",
                        "type": "nominal",
                        "scale": _legend(names, [c for *_, c in NPS_PARTS]),
                        "title": None,
                    },
                    "tooltip": [
                        {"field": "arm"},
                        {"field": "part"},
                        {"field": "share", "format": ".1%"},
                    ],
                },
            },
            {
                "mark": {"type": "text", "color": "white", "fontWeight": 600},
                "transform": [{"filter": "datum.share >= 0.04"}],
                "encoding": {
                    "y": arm_axis,
                    "x": {"field": "middle", "type": "quantitative"},
                    "text": {"field": "text"},
                },
            },
        ],
    )


def exposures_per_day(frame: pl.DataFrame, experiment_id: str | None = None) -> Chart:
    """New analysed users per day per arm (``Summaries.exposures`` ``d_users``).

    Args:
        frame: columns ``day``, ``variant``, ``d_users`` (and ``experiment_id``).
        experiment_id: keep only this experiment's rows when given.

    Returns:
        Grouped bars, one colour per arm: rows ``day``, ``arm``, ``users``.
    """
    if experiment_id is not None and "experiment_id" in frame.columns:
        frame = frame.filter(pl.col("experiment_id") == experiment_id)
    arms = (
        frame["variant"].unique(maintain_order=True).to_list() if frame.height else []
    )
    rows = [
        {"day": _day(day), "arm": arm, "users": users}
        for day, arm, users in frame.sort("day")
        .select("day", "variant", "d_users")
        .iter_rows()
    ]
    return _chart(
        "New users per day",
        rows,
        220,
        mark="bar",
        encoding={
            "x": {
                "field": "day",
                "timeUnit": "utcyearmonthdate",
                "type": "ordinal",
                "axis": {
                    "format": "%d %b",
                    "title": None,
                    "labelAngle": 0,
                    "labelOverlap": True,
                },
            },
            "xOffset": {"field": "arm", "sort": arms},
            "y": {"field": "users", "type": "quantitative", "title": "users"},
            "color": {
                "field": "arm",
                "type": "nominal",
                "scale": _legend(arms, _arm_colours(len(arms))),
                "title": None,
            },
            "tooltip": [DAY_TIP, {"field": "arm"}, {"field": "users", "format": ","}],
        },
    )


def segment_forest(frame: pl.DataFrame, *, alpha: float = 0.05) -> Chart:
    """Relative lift per segment with its fixed interval (:mod:`cxlab.segments`).

    Returns:
        One row per segment: ``label``, ``value``, ``low``, ``high``.
    """
    rows = [
        {
            "label": f"{dimension} = {segment}",
            "value": _finite(rel),
            "low": _finite(low),
            "high": _finite(high),
            "estimate": f"{format_lift(rel)} [{format_lift(low)}, {format_lift(high)}]",
        }
        for dimension, segment, rel, low, high in frame.select(
            "dimension", "segment", "rel_delta", "rel_ci_low", "rel_ci_high"
        ).iter_rows()
    ]
    bounds = [r[k] for r in rows for k in END]
    measure = _measure("relative lift", "+.0%", _settled_range(bounds, share=0))
    across = {
        "field": "label",
        "type": "nominal",
        "sort": [r["label"] for r in rows],
        "title": None,
    }
    tooltip = [{"field": "label", "title": "segment"}, {"field": "estimate"}]
    return _chart(
        f"Lift by segment ({(1 - alpha) * 100:g}% fixed CI, unadjusted)",
        rows,
        {"step": 32},
        layer=[
            _zero("x"),
            *_whiskers("x", measure, across, {"value": ARM_COLOURS[0]}, tooltip),
        ],
    )


def figures_html(figures: Sequence[Chart], title: str) -> str:
    """Several charts in one self-contained HTML page.

    Vega, Vega-Lite and vega-embed are inlined once (vl-convert's bundle, from the
    export process), so the page works offline and keeps the charts interactive.
    """
    divs = "\n".join(f'<section id="chart{i}"></section>' for i in range(len(figures)))
    specs = json.dumps([_sized(fig, EXPORT_WIDTH) for fig in figures])
    # "</" would end the script element early inside a chart's text
    specs = specs.replace("</", "<\\/")
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
        f"<script>{render('javascript_bundle')}</script></head>"
        f'<body style="font-family: sans-serif"><h1>{title}</h1>\n{divs}\n'
        f"<script>{specs}.forEach((spec, i) => vegaEmbed('#chart' + i, spec));"
        "</script></body></html>"
    )


def _sized(fig: Chart, width: int) -> Chart:
    """The chart at a fixed width (``container`` means nothing off the page)."""
    if "vconcat" in fig:
        return {**fig, "vconcat": [{**part, "width": width} for part in fig["vconcat"]]}
    return {**fig, "width": width}


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


# --- pictures and PNG export (vl-convert: no browser needed) --------------------------

SPEC_METADATA = '<metadata id="vega-lite-spec">'


def figure_svg(fig: Chart, *, width: int) -> str:
    """A chart as an SVG picture ``width`` CSS pixels wide, holding its own spec.

    vl-convert renders it (in a pictures worker, :mod:`cxlab.rendering`); the
    plot is sized so that the whole picture, labels and legend included, is
    ``width`` wide (Vega-Lite's ``fit-x`` autosize). The Vega-Lite spec, data rows
    included, goes into the picture's ``<metadata>`` as JSON: a saved picture can
    be opened again in the Vega editor, and what a page drew can be read back.

    Args:
        fig: the chart.
        width: the picture's width in CSS pixels.

    Returns:
        The SVG document (no script, no external reference).
    """
    fit = {"type": "fit-x", "contains": "padding"}
    fitted = {**fig, "width": width, "autosize": fit}
    svg: str = render("vegalite_to_svg", fitted, fonts="own")
    head, _, body = svg.partition(">")  # the <svg …> tag, then its content
    spec = html.escape(json.dumps(fig), quote=False)
    return f"{head}>{SPEC_METADATA}{spec}</metadata>{body}"


def figure_png(fig: Chart, *, width: int = EXPORT_WIDTH, scale: float = 2) -> bytes:
    """A chart as PNG bytes, rendered by vl-convert (its own Vega, no browser).

    The render runs in the export process (:mod:`cxlab.rendering`).

    Args:
        fig: the chart.
        width: the plot width in CSS pixels (the height is the chart's own).
        scale: the pixel ratio (2 = sharp on high-DPI screens and in slides).

    Returns:
        The PNG file's bytes.
    """
    return render("vegalite_to_png", _sized(fig, width), scale=scale)


# --- planner and data page ----------------------------------------------------------


def mde_chart(plan: Plan) -> Chart:
    """The relative MDE after each week (fixed and sequential) against the target.

    Args:
        plan: the plan.

    Returns:
        One row per (week, method): ``week``, ``method``, ``mde``; a dashed rule at
        the target MDE.
    """
    fixed, sequential = "fixed horizon", f"sequential (N* = {plan.tuning:,})"
    rows = [
        {"week": w.week, "method": method, "mde": _finite(mde)}
        for w in plan.weeks
        for method, mde in ((fixed, w.relative_mde), (sequential, w.sequential_mde))
    ]
    mde = _measure("minimum detectable effect (relative)", ".1%")
    target = {"y": {**mde, "datum": plan.relative_mde}}
    return _chart(
        "Minimum detectable effect by week",
        rows,
        280,
        layer=[
            {
                "mark": {"type": "line", "point": True},
                "encoding": {
                    "x": {
                        "field": "week",
                        "type": "quantitative",
                        "title": "weeks running",
                        "axis": {"tickMinStep": 1, "format": "d"},
                    },
                    "y": {**mde, "field": "mde"},
                    "color": {
                        "field": "method",
                        "type": "nominal",
                        "scale": _legend([fixed, sequential], ARM_COLOURS[:2]),
                        "title": None,
                    },
                    "tooltip": [
                        {"field": "week"},
                        {"field": "method"},
                        {"field": "mde", "format": ".2%"},
                    ],
                },
            },
            {
                "data": {"values": [{}]},
                "mark": {"type": "rule", "strokeDash": [6, 4], "color": ZERO},
                "encoding": target,
            },
            {
                "data": {"values": [{}]},
                "mark": {"type": "text", "align": "right", "dy": -8, "x": "width"},
                "encoding": {
                    **target,
                    "text": {"value": f"target {percent_text(plan.relative_mde)}"},
                },
            },
        ],
    )


def events_per_day_chart(per_day: pl.DataFrame) -> Chart:
    """Stacked daily bars of rows by event type: rows ``day``, ``event``, ``rows``."""
    rows = [
        {"day": _day(day), "event": str(event), "rows": n}
        for day, event, n in per_day.select("day", "event", "rows").iter_rows()
    ]
    return _chart(
        "Rows per day by event type",
        rows,
        260,
        mark="bar",
        encoding={
            "x": {**DAY, "timeUnit": "utcyearmonthdate", "title": "day (UTC)"},
            "y": {"field": "rows", "type": "quantitative", "title": "rows"},
            "color": {
                "field": "event",
                "type": "nominal",
                "title": None,
                "legend": {"columns": 4},
            },
            "tooltip": [DAY_TIP, {"field": "event"}, {"field": "rows", "format": ","}],
        },
    )
