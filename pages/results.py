"""Experiment results: one experiment in depth (for product managers)."""

from __future__ import annotations

import functools

import streamlit as st

from cxlab import charts, links, segments, verbatims
from cxlab.decision import METHODS, in_points
from cxlab.errors import InputError
from cxlab.metrics import metric_type
from cxlab.report import experiment_to_dict, to_csv, to_json
from cxlab.ui import cache, notices, url_state
from cxlab.ui.drawing import draw
from cxlab.ui.navigation import ensure_app_navigation

ensure_app_navigation()

NOVELTY = "Does the effect fade?"
ACTIONS = {
    "ship": (st.success, "Ship", ":material/rocket_launch:"),
    "roll_back": (st.error, "Roll back", ":material/undo:"),
    "review": (st.warning, "Review", ":material/search:"),
    "keep_running": (st.info, "Keep running", ":material/hourglass_top:"),
}

try:
    ws = cache.workspace()
    _, configured = cache.load_configs(ws.experiments_dir, ws.configs)
    by_id = {e.id: e for e in configured}
    notices.config_errors(cache.config_errors(ws))
except InputError as exc:
    st.error(f"**The input has a problem.** {exc}", icon=":material/warning:")
    st.stop()
if not by_id:
    st.info(
        "No experiments configured yet: add one on the Configs page.",
        icon=":material/info:",
    )
    st.stop()


wanted = url_state.from_url("experiment")
if wanted is not None and wanted not in by_id:
    st.error(
        f"Unknown experiment id `{links.shown(wanted)}`. The experiments are:",
        icon=":material/error:",
    )
    st.markdown(
        "\n".join(f"- [{e.label}](results?experiment={i})" for i, e in by_id.items())
    )
    st.stop()
if wanted in by_id:
    st.session_state["results_experiment"] = wanted
elif st.session_state.get(cache.EXPERIMENT_KEY) in by_id:  # chosen elsewhere
    st.session_state.setdefault(
        "results_experiment", st.session_state[cache.EXPERIMENT_KEY]
    )
experiment_id = st.selectbox(
    "Experiment",
    list(by_id),
    key="results_experiment",
    format_func=lambda i: f"{by_id[i].label} ({i})",
)
st.session_state[cache.EXPERIMENT_KEY] = experiment_id
url_state.to_url({"experiment": experiment_id})  # the URL names what is shown
try:
    state = cache.state_of(ws, by_id[experiment_id])
    if not state.has_results:
        st.title(by_id[experiment_id].label)
        notices.experiment_state(state)
        st.stop()
    history = cache.load_history(ws, experiment_id)
except InputError as exc:
    st.error(f"**The input has a problem.** {exc}", icon=":material/warning:")
    st.stop()
result = history[-1]  # the as-of result is the history's last day (tested)
exp = result.experiment
summaries = cache.summaries_for(ws, exp.id)
widget_keys = {
    "method": f"results_method_{exp.id}",
    "scale": "results_scale",
    "metric": f"results_metric_{exp.id}",
    "variant": f"results_variant_{exp.id}",
}
link_problems = url_state.restore(widget_keys, links.results_choices(result))
st.session_state.setdefault(widget_keys["method"], exp.decision)
st.session_state.setdefault(widget_keys["scale"], "rel")

# --- header -------------------------------------------------------------------------
st.title(exp.label)
if exp.hypothesis:
    st.markdown(f"*{exp.hypothesis}*")
meta = st.columns(4)
meta[0].markdown(f"**Owner**  \n{exp.owner or '—'}")
end = f"{exp.end:%d %b %Y}" if exp.end else "open"
meta[1].markdown(
    f"**Dates**  \n{exp.start:%d %b %Y} – {end}  \nas of {result.as_of:%d %b %Y}"
)
meta[2].markdown(f"**Variants & allocation**  \n{charts.allocation_text(result)}")
meta[3].markdown(
    f"**Decision method**  \n{exp.decision} (α = {exp.alpha:g}, "
    f"correction {exp.correction})"
)
notices.experiment_state(state)
notices.link_problems(link_problems)
box, action, icon = ACTIONS[result.recommendation.action]
box(f"**Recommendation: {action}.** {result.recommendation.reason}", icon=icon)
if exp.decision_note:
    st.caption(f"Decision note ({exp.status or 'no status'}): {exp.decision_note}")

# --- health strip -------------------------------------------------------------------
if not result.srm.ok:
    st.error(
        "**Sample-ratio mismatch: the results cannot be trusted.** The traffic split "
        "does not match the configured weights, so verdicts are greyed out until the "
        "assignment is fixed.",
        icon=":material/block:",
    )
for col, item in zip(st.columns(4), charts.health_items(result), strict=True):
    mark = ":green[:material/check_circle:]" if item.ok else ":red[:material/error:]"
    col.markdown(f"{mark} **{item.label}**: {item.value}")
    col.caption(item.detail)
for warning in result.warnings:
    if result.srm.ok or not warning.startswith("Sample-ratio mismatch"):
        st.warning(warning, icon=":material/warning:")

# --- scorecard ----------------------------------------------------------------------
st.subheader("Scorecard")
controls = st.columns([3, 2])
method = controls[0].segmented_control(
    "Method",
    METHODS,
    required=True,
    format_func=str.capitalize,
    key=widget_keys["method"],
)
scale = controls[1].segmented_control(
    "Delta",
    ["rel", "abs"],
    required=True,
    format_func={"rel": "Relative", "abs": "Absolute"}.get,
    key=widget_keys["scale"],
)
what_if = "" if method == exp.decision else " (what-if: not the method in force)"
st.caption(
    f"Showing the **{method}** test{what_if}; this experiment decides with "
    f"**{exp.decision}**. Each interval is at its own level: α = {exp.alpha:g} "
    f"after the {exp.correction} correction within its family (the primary and "
    "secondary results together; a metric with one result per category across its "
    "categories; guardrails alone), so an interval excludes 0 exactly when the "
    "result is significant. NPS is in points. ↑ / ↓ after a metric: higher / lower "
    "is better; green = significant in that good direction."
)
st.markdown(charts.scorecard_table(charts.scorecard_frame(result, method, scale)))
forest = cache.figure(
    ws, exp.id, "forest", (method,), lambda: charts.delta_forest(result, method)
)
for chart in forest:
    draw(chart)
# Drawn only while open (a click reruns the page): a closed expander's table would
# still make a new tab start a data grid (bench/RESULTS.md, page speed).
details = st.expander(
    "Details: every method, raw p-values and expected loss",
    key="results_details",
    on_change="rerun",
)
if details.open:
    details.dataframe(charts.details_frame(result, scale).to_arrow(), hide_index=True)
    details.caption(
        "Expected loss: the lift given up, on average, if the treatment is shipped "
        "and is in fact worse (relative scale). P-values are adjusted with "
        f"{exp.correction} across treatments and non-guardrail metrics; each "
        "method's interval is at the level its adjusted p-value leaves."
    )

# --- one metric in depth --------------------------------------------------------------
st.subheader("Metric in depth")
metric_ids = list(dict.fromkeys(r.metric.id for r in result.results))
labels = {r.metric.id: r.metric.label for r in result.results}
picks = st.columns(2)
metric_id = picks[0].selectbox(
    "Metric", metric_ids, format_func=labels.get, key=widget_keys["metric"]
)
if len(exp.treatments) > 1:
    variant = picks[1].selectbox(
        "Treatment", exp.treatments, key=widget_keys["variant"]
    )
else:  # one treatment: nothing to choose (a box costs a new tab 0.15 s)
    (variant,) = exp.treatments
url_state.to_url(
    {"method": method, "scale": scale, "metric": metric_id, "variant": variant}
)
row = result.result(metric_id, variant)
st.markdown(f"**{row.summary}**")
if cap := charts.cap_text(row, result.as_of):
    st.caption(cap)
check = result.novelty_check(metric_id, variant)
fading = check.sentence if check else "No novelty check."
st.markdown(f"*{NOVELTY}* {fading}")
lift = cache.figure(
    ws,
    exp.id,
    "lift",
    (metric_id, variant, scale),
    lambda: charts.cumulative_lift(history, metric_id, variant, scale),
)
per_arm = cache.figure(
    ws,
    exp.id,
    "per_arm",
    (metric_id,),
    lambda: charts.arm_values_over_time(history, metric_id),
)
post = cache.figure(
    ws,
    exp.id,
    "posterior",
    (metric_id, variant),
    lambda: charts.posterior(
        row.bayesian,
        row.metric.direction,
        points_per_unit=row.control.value if in_points(row.metric) else None,
    ),
)
figures = [*forest, lift, per_arm, post]
is_nps = charts.has_nps_answers(result, metric_id)
detail = metric_type(row.metric).detail
voice_tab = {"categories": ["Contact reasons"], "survival": ["Time to event"]}
has_segments = bool(exp.dimensions) and detail is None
segment_table = functools.partial(
    segments.segment_results, summaries.by_dimension, exp, row.metric, variant
)
views = [
    "Lift over time",
    "Per arm",
    "Posterior",
    *(["NPS answers"] if is_nps else []),
    *voice_tab.get(detail or "", []),
    NOVELTY,
    *(["Segments"] if has_segments else []),
]
# Only the open tab is drawn (a click reruns the page): each chart costs the browser
# more than the server (bench/RESULTS.md, page speed).
tabs = dict(
    zip(views, st.tabs(views, key="results_view", on_change="rerun"), strict=True)
)
if tabs["Lift over time"].open:
    draw(lift, where=tabs["Lift over time"])
    tabs["Lift over time"].caption(
        "The sequential band is valid at every look; the fixed band only once, at the "
        "planned end: peeking at it inflates false positives."
    )
if tabs["Per arm"].open:
    draw(per_arm, where=tabs["Per arm"])
if tabs["Posterior"].open:
    draw(post, where=tabs["Posterior"])
    tabs["Posterior"].caption(
        f"P(better) = {row.bayesian.prob_beat_control:.1%}: the shaded share of the "
        "posterior lies on the metric's good side of zero."
    )
if is_nps:
    split = cache.figure(
        ws,
        exp.id,
        "nps_split",
        (metric_id,),
        lambda: charts.nps_split(result, metric_id),
    )
    figures.append(split)
if is_nps and tabs["NPS answers"].open:
    nps_tab = tabs["NPS answers"]
    draw(split, where=nps_tab)
    nps_tab.dataframe(
        charts.nps_response_frame(result, metric_id).to_arrow(),
        hide_index=True,
        column_config={
            "response rate": st.column_config.NumberColumn(format="percent"),
            "NPS": st.column_config.NumberColumn(format="%.1f"),
        },
    )
    voices = verbatims.arm_voices(summaries, exp, metric_id, result.as_of)
    if voices:  # comments are plain text: dataframe cells, never markdown or HTML
        nps_tab.subheader("In their own words")
        nps_tab.caption(
            "A reproducible sample of comments per arm, and the words each arm's "
            "detractors use distinctly more than the other arms' (weighted log-odds "
            f"z > {verbatims.DISTINCT_Z:g}, informative prior from the pooled counts)."
        )
        for column, voice in zip(nps_tab.columns(len(voices)), voices, strict=True):
            column.text(voice.variant)
            column.dataframe(
                verbatims.comment_frame(voice).to_arrow(),
                hide_index=True,
                key=f"said_{voice.variant}",
            )
            column.dataframe(
                verbatims.distinct_frame(voice).to_arrow(),
                hide_index=True,
                column_config={"z": st.column_config.NumberColumn(format="%.2f")},
                key=f"words_{voice.variant}",
            )

if detail == "categories":
    reasons = cache.figure(
        ws,
        exp.id,
        "reasons",
        (metric_id, variant, method),
        lambda: charts.contact_reasons(result, metric_id, variant, method),
    )
    figures.append(reasons)
    if tabs["Contact reasons"].open:
        draw(reasons, where=tabs["Contact reasons"])
        mix = [
            c
            for c in result.compositions
            if c.metric.id == metric_id and c.variant == variant
        ]
        tabs["Contact reasons"].caption(
            "Per reason, events per exposed user; the treatment's bar is the "
            f"{method} call's interval (corrected across the reasons)."
            + "".join(
                f" Users' first reason, {variant} vs control: χ² = {c.chi2:.1f} on "
                f"{c.df} df, p = {c.p_value:.2g}."
                for c in mix[-1:]
            )
        )
elif detail == "survival":
    curves = cache.figure(
        ws,
        exp.id,
        "survival",
        (metric_id, variant),
        lambda: charts.survival_curves(result, metric_id, variant),
    )
    figures.append(curves)
    if tabs["Time to event"].open:
        draw(curves, where=tabs["Time to event"])
        still_open = charts.share_still_open(row)
        tabs["Time to event"].caption(
            "Still open at the as-of moment (censored, never counted as resolved): "
            + ", ".join(f"{name} {share:.1%}" for name, share in still_open.items())
            + ". Bands: pointwise, at the experiment's alpha."
        )

# --- novelty and segments: tabs of the metric in depth ---------------------------
if check is not None and check.buckets:
    fade = cache.figure(
        ws,
        exp.id,
        "novelty",
        (metric_id, variant, scale),
        lambda: charts.novelty_lifts(check, scale),
    )
    figures.append(fade)
if tabs[NOVELTY].open:
    if check is None or not check.buckets:
        tabs[NOVELTY].info(fading, icon=":material/info:")
    else:
        draw(fade, where=tabs[NOVELTY])
        tabs[NOVELTY].caption(
            "Each point is the lift on the events of that many days after each "
            "user's first exposure (day 1 = its first 24 hours), over the users who "
            "had reached that age by the as-of day (NPS: who answered then). Users, "
            "by days since the first exposure: "
            + "; ".join(f"{r['bucket']}: {r['users']}" for r in fade["data"]["values"])
            + f". Fixed-horizon intervals at α = {check.alpha:g} with no "
            "multiplicity correction: a diagnostic, not a decision. The effect is "
            "said to fade (or grow) when the day-1 interval and the latest one do not "
            "overlap."
        )

# Built only when shown or downloaded: the segments' tests take about 30 ms.
segment_figure = functools.partial(
    cache.figure,
    ws,
    exp.id,
    "segments",
    (metric_id, variant),
    lambda: charts.segment_forest(segment_table(), alpha=exp.alpha),
)
if has_segments and tabs["Segments"].open:
    seg = segment_table()
    tabs["Segments"].caption(segments.comparisons_note(seg.height, exp.alpha, "holm"))
    draw(segment_figure(), where=tabs["Segments"])
    tabs["Segments"].dataframe(seg.to_arrow(), hide_index=True)

# --- exposures ----------------------------------------------------------------------
# Drawn only while open, like the details and the downloads: the health strip above
# already says whether the split is sound (bench/RESULTS.md, page speed).
traffic = st.expander(
    "Exposures: new users per day and arm",
    icon=":material/group:",
    key="results_exposures",
    on_change="rerun",
)
exposures = cache.figure(
    ws,
    exp.id,
    "exposures",
    (),
    lambda: charts.exposures_per_day(summaries.exposures, exp.id),
)
figures.append(exposures)
if traffic.open:
    draw(exposures, where=traffic)

# --- downloads --------------------------------------------------------------------
# Drawn only while open, like the details: four buttons and a box would cost a new
# tab about 0.3 s (bench/RESULTS.md, page speed).
# A download changes nothing on the page, so it does not rerun it ("ignore"). The
# click's own rerun could also lose the file: a run's start empties the session's
# outgoing queue of all but lifecycle messages (Streamlit 1.67, ForwardMsgQueue.clear),
# and a file's answer queued just before it never reached the browser.
downloads = st.expander(
    "Download: results (CSV, JSON) and charts (HTML, PNG)",
    icon=":material/download:",
    key="results_downloads",
    on_change="rerun",
)
if downloads.open:
    payload = experiment_to_dict(result)
    files = downloads.columns(3)
    files[0].download_button(
        "Results (CSV)",
        to_csv([payload]),
        file_name=f"{exp.id}.csv",
        mime="text/csv",
        on_click="ignore",
    )
    files[1].download_button(
        "Results (JSON)",
        to_json(payload),
        file_name=f"{exp.id}.json",
        mime="application/json",
        on_click="ignore",
    )
    files[2].download_button(
        "Charts (HTML)",
        lambda: charts.figures_html(  # rendered only when clicked
            [*figures, *([segment_figure()] if has_segments else [])], exp.label
        ),
        file_name=f"{exp.id}-charts.html",
        mime="text/html",
        on_click="ignore",
    )
    names = {
        "Scorecard lifts": forest[0],
        **({"Scorecard lifts in points": forest[1]} if len(forest) > 1 else {}),
        "Lift over time": lift,
        "Per arm": per_arm,
        "Posterior": post,
    }
    png = downloads.columns([2, 1], vertical_alignment="bottom")
    chosen = png[0].selectbox("Chart as PNG", list(names), key="results_png_chart")
    png[1].download_button(
        "Chart (PNG)",
        lambda: charts.figure_png(names[chosen]),  # rendered only when clicked
        file_name=f"{exp.id}-{chosen.lower().replace(' ', '-')}.png",
        mime="image/png",
        on_click="ignore",
    )
