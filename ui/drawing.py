"""How the pages draw a chart of :mod:`cxlab.charts` (a Vega-Lite spec)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator


def draw(
    chart: Mapping[str, Any],
    *,
    key: str | None = None,
    where: DeltaGenerator | None = None,
) -> None:
    """Draw a chart across the width of ``where`` (the page's main area by default).

    Args:
        chart: the Vega-Lite spec, as :mod:`cxlab.charts` builds it.
        key: the element's key, passed on to Streamlit.
        where: a column, tab or container to draw in.
    """
    # Charts keep their own look (theme=None), the one their HTML and PNG downloads
    # have: Streamlit's theme shifts stacked bars below the axis.
    (st if where is None else where).vega_lite_chart(
        chart, width="stretch", theme=None, key=key
    )
