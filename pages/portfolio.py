"""Portfolio: every experiment at a glance (the home page, for executives)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from cxlab import portfolio
from cxlab.errors import InputError
from cxlab.states import states_summary
from cxlab.ui import cache, notices
from cxlab.ui.navigation import ensure_app_navigation

ensure_app_navigation()

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
    st.info(
        "No experiments configured yet: add one on the Configs page.",
        icon=":material/info:",
    )
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
aa_note = (
    f" A/A tests (tag `aa-test` or `aa`) are left out: {head.aa_tests} this quarter."
)
tiles[2].metric(
    "Win rate",
    "—" if head.decided == 0 else f"{head.win_rate:.0%}",
    border=True,
    help=f"{head.wins} of {head.decided} decided experiments: a treatment won "
    "significantly on a primary metric (and the traffic split was sound)." + aa_note,
)
tiles[3].metric(
    "Learning rate",
    "—" if head.decided == 0 else f"{head.learning_rate:.0%}",
    border=True,
    help=f"{head.learnings} of {head.decided} decided experiments were valid (no "
    "sample-ratio mismatch) and conclusive either way: a primary metric moved "
    "significantly or a guardrail was significantly harmed." + aa_note,
)

for line in states_summary(list(states.values())):
    st.info(line, icon=":material/info:")

st.subheader("All experiments")
rows = portfolio.portfolio_rows(results, cache.all_summaries(ws), ws.as_of)
with st.form("portfolio_filters", border=False):
    filters = st.columns([1.4, 1, 1, 1, 0.4], vertical_alignment="bottom")
    text = filters[0].text_input(
        "Search",
        key="portfolio_search",
        placeholder="name, owner, tag, metric…",
    )
    statuses = filters[1].multiselect(
        "Status", sorted({str(r["status"]) for r in rows}), key="portfolio_status"
    )
    owners = filters[2].multiselect(
        "Owner", sorted({str(r["owner"]) for r in rows}), key="portfolio_owner"
    )
    all_tags = sorted(
        {t.strip() for r in rows for t in str(r["tags"]).split(",") if t.strip()}
    )
    tags = filters[3].multiselect("Tag", all_tags, key="portfolio_tag")
    filters[4].form_submit_button("Filter", width="stretch")

shown = portfolio.filter_rows(
    rows, statuses=statuses, owners=owners, tags=tags, text=text
)
if not shown:
    st.info("No experiment matches these filters.", icon=":material/info:")
else:
    labels = [states[str(row["id"])].label for row in shown]
    st.markdown(portfolio.executive_table(shown))
    st.caption(
        "Each name opens the experiment's results page in a new tab; the link is "
        "shareable. Effect and interval are those of the decision method in force "
        "(NPS in points); experiments marked SRM have a broken traffic split, so "
        "their results are not trustworthy. ⚠: the status disagrees with the "
        "engine's recommendation. Progress counts analysed users against "
        "planned_users; the ETA extrapolates the mean daily new users of the last "
        "7 days."
    )
    # A toggle, not an expander: an expander's content is sent (and converted through
    # pandas) even while it is closed, which cost the first page half a second.
    if st.toggle(
        "Details: owner, tags, data, why and decision notes", key="portfolio_details"
    ):
        st.dataframe(
            pl.DataFrame(shown).with_columns(state=pl.Series(labels)).to_arrow(),
            hide_index=True,
            key="portfolio_table",
            column_order=[
                "link",
                "status",
                "owner",
                "tags",
                "state",
                "days",
                "users",
                "primary metric",
                "level",
                "method",
                "reason",
                "decision note",
            ],
            column_config={
                "link": st.column_config.LinkColumn(
                    "experiment", display_text=r"results\?experiment=([^&#]*)"
                ),
                "state": st.column_config.TextColumn(
                    "data",
                    help="ok · not started (as-of before the start) · no exposures "
                    "(nobody entered it) · data ends … (the as-of date is after the "
                    "log's last day)",
                ),
                "users": st.column_config.NumberColumn("users", format="localized"),
                "reason": st.column_config.TextColumn("why (engine)", width="large"),
                "decision note": st.column_config.TextColumn(width="large"),
            },
        )


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

cache.warm_import("pandas")  # the next page: its tables and charts
