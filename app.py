"""CX Lab: the Streamlit entry point (routing, shared sidebar, friendly errors)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import streamlit as st

from cxlab.errors import InputError
from ui import cache, notices, url_state

st.set_page_config(page_title="CX Lab", page_icon=":material/science:", layout="wide")

st.session_state.setdefault(cache.EVENTS_KEY, None)
st.session_state.setdefault(cache.AS_OF_KEY, None)

PAGES = [
    st.Page(
        "pages/portfolio.py",
        title="Portfolio",
        icon=":material/dashboard:",
        default=True,
        url_path="home",  # the default page is served at "/", never at its url_path
    ),
    st.Page(
        "pages/results.py",
        title="Results",
        icon=":material/science:",
        url_path="results",
    ),
    st.Page(
        "pages/configs.py", title="Configs", icon=":material/tune:", url_path="configs"
    ),
    st.Page("pages/data.py", title="Data", icon=":material/database:", url_path="data"),
    st.Page(
        "pages/planner.py",
        title="Planner",
        icon=":material/straighten:",
        url_path="planner",
    ),
    st.Page(  # "/portfolio" opens the portfolio too (shared links, bookmarks)
        "pages/portfolio.py",
        title="Portfolio",
        icon=":material/dashboard:",
        url_path="portfolio",
        visibility="hidden",
    ),
]
page = st.navigation(PAGES)
link_problem = url_state.restore_as_of()  # a link's as_of, before the date input


def data_source_label() -> str:
    events = st.session_state.get(cache.EVENTS_KEY)
    if not events:
        return "Sample log (`data/events.parquet`)"
    try:
        return f"`{Path(events).relative_to(cache.ROOT)}`"
    except ValueError:
        return f"`{events}`"


with st.sidebar:
    st.markdown("### :material/science: CX Lab")
    st.caption("Experiments on customer experience")
    st.markdown(f"**Data source**  \n{data_source_label()}")
    st.date_input(
        "As-of date",
        key=cache.AS_OF_KEY,
        min_value=dt.date(2000, 1, 1),
        help="Analyse the data as it stood at the end of this day (UTC). "
        "Empty: each experiment as of its own end, or the last day of data.",
    )
    st.caption("Empty = each experiment's own as-of day.")
    notices.link_problems([link_problem] if link_problem else [])
url_state.keep_as_of()

try:
    page.run()
except InputError as exc:
    st.error(f"**The input has a problem.** {exc}", icon=":material/warning:")
except Exception as exc:  # the friendly box instead of a traceback
    st.error(
        "Something went wrong while drawing this page. The details below help the "
        "CX Lab maintainers; the other pages still work.",
        icon=":material/error:",
    )
    with st.expander("Technical details"):
        st.exception(exc)
