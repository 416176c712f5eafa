"""The app's own navigation, whichever URL a visit starts on."""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def ensure_app_navigation() -> None:
    """Rerun through ``app.py`` when Streamlit ran this page file on its own.

    Streamlit decides once per process, at its first visit, whether the app uses
    the old discovery of a ``pages/`` folder (multipage apps "v1"): it does when
    such a folder sits beside the main script and ``st.navigation`` has not run
    yet. A first visit to ``/portfolio`` (or any page's URL) then runs the page
    file alone, without ``app.py``'s layout, sidebar and routing, and every later
    visit too. ``app.py``'s ``st.navigation`` switches that mode off; this does
    the same and reruns, so ``app.py`` draws the page of the URL (the page hash
    is its ``url_path`` in both modes, and the query string is kept).
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
