"""Portfolio: every experiment at a glance (the home page, for executives)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from cxlab import charts, portfolio
from cxlab.errors import InputError
from cxlab.states import states_summary
from ui import cache, notices

st.title("Experiment portfolio")

try:
    ws = cache.workspace()
    notices.config_errors(cache.config_errors(ws))
    results = cache.load_portfolio(ws)
    states = {r.experiment.id: cache.state_of(ws, r.experiment) for r in results}
except InputError as exc:
    st.error(f"**The input has a problem.** {exc}", icon=":material/warning:")
    st.stop()

if not results:
    st.info("No experiments configured yet: add one on the Configs page.")
    st.stop()

today = ws.as_of or max(r.as_of for r in results)
head = portfolio.headline(results, today)
st.caption(
    f"{len(results)} experiments, data as of {today:%d %b %Y}. Quarter: {head.quarter}."
)

tiles = st.columns(4)
tiles[0].metric("Running now", head.running, border=True)
tiles[1].metric(
    "Decided this quarter",
    head.decided,
    border=True,
    help=f"Shipped, rolled back or stopped with an end date in {head.quarter}.",
)
tiles[2].metric(
    "Win rate",
    "—" if head.decided == 0 else f"{head.win_rate:.0%}",
    border=True,
    help=f"{head.wins} of {head.decided} decided experiments: a treatment won "
    "significantly on a primary metric (and the traffic split was sound).",
)
tiles[3].metric(
    "Learning rate",
    "—" if head.decided == 0 else f"{head.learning_rate:.0%}",
    border=True,
    help=f"{head.learnings} of {head.decided} decided experiments were valid (no "
    "sample-ratio mismatch) and conclusive either way: a primary metric moved "
    "significantly or a guardrail was significantly harmed.",
)

for line in states_summary(list(states.values())):
    st.info(line, icon=":material/info:")

st.subheader("Estimated combined effect of shipped experiments")
impact_cols = st.columns(len(portfolio.IMPACT_METRICS))
for col, metric_id in zip(impact_cols, portfolio.IMPACT_METRICS, strict=True):
    effect = portfolio.shipped_impact(results, metric_id)
    with col:
        if effect is None:
            st.metric(metric_id, "—", border=True)
            st.caption("No shipped experiment measured this metric.")
            continue
        value, caption = portfolio.describe_impact(effect)
        st.metric(effect.label, value, border=True)
        st.caption(caption)

st.subheader("All experiments")
rows = portfolio.portfolio_rows(results)
with st.form("portfolio_filters", border=False):
    filters = st.columns([1, 1, 1, 0.4], vertical_alignment="bottom")
    statuses = filters[0].multiselect(
        "Status", sorted({str(r["status"]) for r in rows}), key="portfolio_status"
    )
    owners = filters[1].multiselect(
        "Owner", sorted({str(r["owner"]) for r in rows}), key="portfolio_owner"
    )
    all_tags = sorted(
        {t.strip() for r in rows for t in str(r["tags"]).split(",") if t.strip()}
    )
    tags = filters[2].multiselect("Tag", all_tags, key="portfolio_tag")
    filters[3].form_submit_button("Filter", width="stretch")

shown = portfolio.filter_rows(rows, statuses=statuses, owners=owners, tags=tags)
if not shown:
    st.info("No experiment matches these filters.")
    st.stop()

labels = [states[str(row["id"])].label for row in shown]
table = (
    pl.DataFrame(shown)
    .with_columns(state=pl.Series(labels))
    .select(
        "state",
        "health",
        "link",
        "primary metric",
        "lift",
        "ci",
        "verdict",
        "recommendation",
        "guardrails",
        "status",
        "days",
        "users",
        "owner",
        "experiment",
        "method",
        "reason",
        "tags",
    )
)
st.dataframe(
    charts.styled(table, ["health", "verdict", "recommendation", "guardrails"]),
    hide_index=True,
    key="portfolio_table",
    column_config={
        "state": st.column_config.TextColumn(
            "data",
            help="ok · not started (as-of before the start) · no exposures (nobody "
            "entered it) · data ends … (the as-of date is after the log's last day)",
            width="small",
        ),
        "health": st.column_config.TextColumn(
            "health",
            help="ok · check (multiple exposures, low sample) · SRM (broken split)",
            width="small",
        ),
        "link": st.column_config.LinkColumn(
            "results", display_text=r"results\?experiment=(.*)", width="medium"
        ),
        "experiment": st.column_config.TextColumn("experiment", width="medium"),
        "users": st.column_config.NumberColumn("users", format="localized"),
        "lift": st.column_config.TextColumn(
            "lift", help="Relative delta of the primary metric."
        ),
        "ci": st.column_config.TextColumn(
            "CI", help="The decision method's interval of the relative lift."
        ),
        "reason": st.column_config.TextColumn("why", width="large"),
    },
)
st.caption(
    "Each id opens the experiment's results page; the link is shareable. Lift and CI "
    "are those of the decision method in force; experiments marked SRM have a "
    "broken traffic split, so their results are not trustworthy."
)
