"""Planner: sample size, duration and MDE for any catalog metric."""

from __future__ import annotations

import math

import streamlit as st

from cxlab import charts, planning
from cxlab.config import DEFAULT_SEQUENTIAL_TUNING
from cxlab.errors import InputError
from cxlab.ui import cache, notices
from cxlab.ui.drawing import draw
from cxlab.ui.navigation import ensure_app_navigation

ensure_app_navigation()

st.title("Planner")
st.caption(
    "How many users and days an experiment needs to detect an effect, and what it "
    "can detect after each week. Baseline and traffic come from the current log."
)
try:
    ws = cache.workspace()
    catalog, experiments = cache.load_configs(ws.experiments_dir, ws.configs)
    notices.config_errors(cache.config_errors(ws))
except InputError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()

a, b = st.columns(2)
metric_id = a.selectbox(
    "Metric",
    catalog.ids,
    format_func=lambda m: f"{catalog[m].label} ({m})",
    key="planner_metric",
)
metric = catalog[metric_id]
baseline, exp = None, None
try:
    summaries = cache.all_summaries(ws)
    using = planning.healthy_experiments_using(metric_id, experiments, summaries)
except InputError as exc:
    st.warning(f"No baseline from the log; type one. {exc}", icon=":material/warning:")
    using = []
if using:
    exp_id = b.selectbox(
        "Baseline from the control arm of",
        [e.id for e in using],
        key=f"planner_experiment_{metric_id}",
        help="The latest experiment that used the metric comes first; experiments "
        "with a sample-ratio mismatch are left out.",
    )
    exp = next(e for e in using if e.id == exp_id)
    try:
        baseline = planning.baseline_from_summaries(metric, exp, summaries[exp.id])
    except InputError as exc:
        st.warning(
            f"No baseline from the log; type one. {exc}", icon=":material/warning:"
        )
else:
    b.info(
        "No experiment without a sample-ratio mismatch uses this metric yet: type "
        "a baseline and its spread."
    )

guess = 0.1 if metric.type == "proportion" else 1.0
mean0 = baseline.mean if baseline else guess
sd0 = baseline.sd if baseline else math.sqrt(guess * (1 - guess))
daily0 = (
    float(round(baseline.daily_users)) if baseline and baseline.daily_users else 0.0
)
k = f"planner_{metric_id}_{exp.id if exp else 'none'}_"
if baseline:
    st.caption(f"Baseline: {baseline.source}.")

a, b, c = st.columns(3)
mean = a.number_input(
    "Baseline (control mean)", value=mean0, format="%.6g", key=k + "mean"
)
sd = b.number_input(
    "Standard deviation per unit", 0.0, value=sd0, format="%.6g", key=k + "sd"
)
mde_pct = c.number_input(
    "Relative MDE (%)",
    value=5.0,
    step=0.5,
    key="planner_mde",
    help="Above 0, at most 100.",
)
a, b, c = st.columns(3)
alpha = a.number_input(
    "Alpha", 0.001, 0.499, 0.05, 0.01, format="%.3f", key="planner_alpha"
)
power = b.number_input("Power", 0.5, 0.99, 0.8, 0.05, key="planner_power")
arms = len(exp.variants) if exp else 2
variants = c.number_input("Variants (incl. control)", 2, 10, arms, key=k + "variants")
a, b, c = st.columns(3)
daily = a.number_input(
    "Users a day, all arms (0 = unknown)",
    0.0,
    value=daily0,
    step=100.0,
    key=k + "daily",
)
sequential = b.toggle(
    "Sequential test (mixture)",
    exp is None or exp.decision == "sequential",
    key=k + "seq",
)
tuning = c.number_input(
    "Sequential tuning N*",
    2,
    value=exp.sequential_tuning if exp else DEFAULT_SEQUENTIAL_TUNING,
    key=k + "tuning",
    help="Total users at which the sequence is tightest: best near the planned total.",
)

try:
    plan = planning.make_plan(
        metric,
        mean,
        sd**2,
        relative_mde=mde_pct / 100,
        alpha=alpha,
        power=power,
        variants=int(variants),
        daily_users=daily or None,
        sequential=sequential,
        tuning=int(tuning),
        population_share=baseline.population_share if baseline else 1.0,
        baseline_source=baseline.source if baseline else "given",
    )
except InputError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()

box = st.success if plan.feasible else st.warning
box(planning.plan_sentence(plan))
a, b, c, d = st.columns(4)
a.metric("Users per arm", f"{plan.planned_users_per_arm:,}")
b.metric("Total users", f"{plan.planned_users_per_arm * plan.variants:,}")
c.metric("Days needed", planning.days_text(plan.days))
d.metric("Sequential inflation", f"×{plan.inflation:.2f}")
fixed_days = planning.days_text(plan.fixed_days)
seq_days = planning.days_text(plan.sequential_days)
st.caption(
    f"Fixed horizon: {plan.users_per_arm:,} per arm"
    f"{'' if plan.fixed_days is None else f', {fixed_days} days'}. "
    f"Sequential (N* = {plan.tuning:,}): {plan.sequential_users_per_arm:,} per arm"
    f"{'' if plan.sequential_days is None else f', {seq_days} days'}; "
    "it may be checked every day and can stop early."
    + (" NPS counts the users who answer the survey." if metric.type == "nps" else "")
)

if plan.weeks:
    st.subheader("The MDE reached after each week")
    left, right = st.columns([2, 3])
    left.dataframe(
        planning.weeks_table(plan).to_arrow(),  # Arrow: no pandas round trip
        hide_index=True,
        column_config={
            "fixed_mde": st.column_config.NumberColumn("fixed MDE", format="percent"),
            "sequential_mde": st.column_config.NumberColumn(
                "sequential MDE", format="percent"
            ),
        },
    )
    draw(charts.mde_chart(plan), where=right, share=3 / 5)
else:
    st.info(
        "Give the users a day to see the duration and the MDE week by week.",
        icon=":material/info:",
    )
