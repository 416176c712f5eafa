"""Banners the pages share: broken configs and an experiment's data state."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from cxlab.errors import ConfigError
from cxlab.states import ExperimentState
from cxlab.ui import sources


def config_errors(errors: Sequence[ConfigError]) -> None:
    """One banner naming each broken experiment config by ``file:line``."""
    if not errors:
        return
    files = "\n".join(f"- `{sources.scrub(str(error))}`" for error in errors)
    st.warning(
        f"**{len(errors)} experiment config(s) could not be loaded, so those "
        "experiments are disabled; every other experiment works.** Fix them on the "
        f"Configs page.\n{files}",
        icon=":material/warning:",
    )


def experiment_state(state: ExperimentState) -> None:
    """The banner of an experiment that is not started, unexposed or past the data."""
    if state.kind == "not_started":
        st.info(state.message, icon=":material/schedule:")
    elif state.kind != "ok":
        st.warning(state.message, icon=":material/warning:")


def link_problems(problems: Sequence[str]) -> None:
    """A small note naming each value of the URL that was left out, and why."""
    for problem in problems:
        st.caption(
            f":material/link_off: The link's {problem}; showing the default instead."
        )
