"""CX Lab: the Streamlit entry point (routing, shared sidebar, friendly errors)."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import streamlit as st

from cxlab.errors import InputError
from cxlab.ui import auth, cache, drawing, notices, sources, url_state

# The browser tab's icon, a flask drawn here: a Material icon as the favicon is
# fetched from fonts.gstatic.com, which a server without internet access never
# reaches (and every page view would tell Google about).
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path fill="#4c78a8" '
    'd="M9 2h6v2h-1v5.2l5.6 9.4A2 2 0 0 1 17.9 22H6.1a2 2 0 0 1-1.7-3.4L10 9.2V4H9z"/>'
    "</svg>"
)
st.set_page_config(page_title="CX Lab", page_icon=FAVICON, layout="wide")

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
auth.gate()
sources.sweep_at_startup()
link_problem = url_state.restore_as_of()  # a link's as_of, before the date input


def data_source_label() -> str:
    events = st.session_state.get(cache.EVENTS_KEY)
    if not events:
        return "Sample log (`data/events.parquet`)"
    try:
        return f"`{Path(events).relative_to(cache.ROOT)}`"
    except ValueError:
        return f"`{sources.shown(events)}`"


with st.sidebar:
    st.markdown("### :material/science: CX Lab")
    st.caption("Experiments on customer experience")
    st.markdown(f"**Data source**  \n{data_source_label()}")
    events = st.session_state.get(cache.EVENTS_KEY) or ""
    st.caption(f"Engine: {cache.engine_choice().describe(events)}")
    st.date_input(
        "As-of date",
        key=cache.AS_OF_KEY,
        min_value=dt.date(2000, 1, 1),
        help="Analyse the data as it stood at the end of this day (UTC). "
        "Empty: each experiment as of its own end, or the last day of data.",
    )
    st.caption("Empty = each experiment's own as-of day.")
    auth.sidebar_status()
    notices.link_problems([link_problem] if link_problem else [])
url_state.keep_as_of()

with drawing.pictures():  # made while the page runs, shown when it has run
    try:
        page.run()
    except InputError as exc:
        message = sources.scrub(str(exc))
        st.error(f"**The input has a problem.** {message}", icon=":material/warning:")
    except Exception:  # the friendly box; the traceback goes to the server's log
        logging.getLogger("cxlab.app").exception("page %s failed", page.title)
        st.error(
            "Something went wrong while drawing this page. The server's log has "
            "the details for the CX Lab maintainers; the other pages still work.",
            icon=":material/error:",
        )
