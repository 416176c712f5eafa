"""The URL as the page's state: restored on open, rewritten as widgets change.

A URL value is applied to its widget only when it is new to the session (a link
was opened or edited), never when it is what this session last wrote, so a widget
change is not undone by the URL of the run before it. After the widgets, the page
writes what it shows back into the URL, so a copied link opens the same view.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import streamlit as st

from cxlab import links
from cxlab.ui import cache

WRITTEN = "url_written"  # session-state key: the values this session put in the URL


def from_url(param: str) -> str | None:
    """The URL's value of ``param`` when a link brought it, else None."""
    text = st.query_params.get(param)
    if text is None or text == st.session_state.get(WRITTEN, {}).get(param):
        return None
    return text


def to_url(values: Mapping[str, str | None]) -> None:
    """Put the shown values into the URL (None removes a parameter)."""
    written = st.session_state.setdefault(WRITTEN, {})
    for param, text in values.items():
        if text is None:
            if param in st.query_params:
                del st.query_params[param]
        elif st.query_params.get(param) != text:
            st.query_params[param] = text
        written[param] = text


def restore(keys: Mapping[str, str], choices: Mapping[str, Sequence[str]]) -> list[str]:
    """Set each widget ``keys[param]`` from a new URL value that is a valid choice.

    Call it before the widgets are drawn.

    Returns:
        A sentence for each value left out (the widget keeps its default).
    """
    problems = []
    for param, key in keys.items():
        text = from_url(param)
        if text is None:
            continue
        problem = links.choice_problem(param, text, choices[param])
        if problem is None:
            st.session_state[key] = text
        else:
            problems.append(problem)
    return problems


def restore_as_of() -> str | None:
    """The sidebar's as-of day from a link's ``as_of`` (before the date input).

    Returns:
        A sentence when the value is not a day (the date stays as it was).
    """
    text = from_url("as_of")
    if text is None:
        return None
    day = links.parse_day(text)
    if day is None:
        return links.day_problem(text)
    st.session_state[cache.AS_OF_KEY] = day
    return None


def keep_as_of() -> None:
    """Write the chosen as-of day into the URL (after the date input)."""
    day = st.session_state.get(cache.AS_OF_KEY)
    to_url({"as_of": day.isoformat() if day else None})
