"""How the pages draw a chart of :mod:`cxlab.charts`: as a picture made on the server.

A Vega-Lite element would make each new tab load and run Vega's code in the browser,
about 0.6 s of a results page's 2.5 s on the reference machine (bench/RESULTS.md,
page speed); a picture costs the tab almost nothing. What a picture gives up is
hover: the numbers are in the tables and sentences beside each chart, and the
charts' HTML download keeps them interactive.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from cxlab import charts

# The main column's width at 1440 px (wide layout, sidebar open). A picture is
# drawn at its own width, or narrower (scaled) when its column is narrower.
PAGE_WIDTH = 980


def draw(
    chart: Mapping[str, Any],
    *,
    where: DeltaGenerator | None = None,
    share: float = 1.0,
) -> None:
    """Draw a chart as a picture (:func:`cxlab.charts.figure_svg`).

    The chart's title is the picture's text alternative.

    Args:
        chart: the Vega-Lite spec, as :mod:`cxlab.charts` builds it.
        where: a column, tab or container to draw in (the page's main area by
            default).
        share: the share of the page's width that ``where`` spans.
    """
    (st if where is None else where).image(
        picture(chart, share), width="content", alt=chart["title"]
    )


def picture(chart: Mapping[str, Any], share: float = 1.0) -> str:
    """The chart's SVG picture for ``share`` of the page's width.

    Made once per server process (``cxlab app`` makes the results pages' first
    pictures before it answers, :func:`cxlab.ui.serve.draw_first_views`).
    """
    return _picture(json.dumps(chart), round(PAGE_WIDTH * share))


@functools.lru_cache(maxsize=512)
def _picture(spec: str, width: int) -> str:
    return charts.figure_svg(json.loads(spec), width=width)
