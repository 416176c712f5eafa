"""How the pages draw a chart of :mod:`cxlab.charts`: as a picture made on the server.

A Vega-Lite element would make each new tab load and run Vega's code in the browser,
about 0.6 s of a results page's 2.5 s on the reference machine (bench/RESULTS.md,
page speed); a picture costs the tab almost nothing. What a picture gives up is
hover: the numbers are in the tables and sentences beside each chart, and the
charts' HTML download keeps them interactive.

A picture takes vl-convert 20–50 ms to make (medians by kind of chart,
bench/RESULTS.md, chart pictures). Inside :func:`pictures` (app.py runs every page
in it) a page's pictures are made while its script goes on, two at a time (the
pictures' workers, :data:`cxlab.rendering.WORKERS`), and shown where :func:`draw`
was called once the script has run. Made pictures are kept.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator
from streamlit.runtime.scriptrunner_utils.exceptions import StopException

from cxlab import rendering

# The main column's width at 1440 px (wide layout, sidebar open). A picture is
# drawn at its own width, or narrower (scaled) when its column is narrower.
PAGE_WIDTH = 980
KEPT = 512  # pictures kept per server process, the least recently shown dropped

_painters = ThreadPoolExecutor(
    rendering.WORKERS["own"], thread_name_prefix="cxlab-picture"
)
# (the chart's JSON, the width) -> the picture, made or being made
_made: OrderedDict[tuple[str, int], Future[str]] = OrderedDict()
_made_lock = threading.Lock()
# Inside pictures(): where each picture of this script run goes, in order.
_Slot = tuple[DeltaGenerator, Future[str], str]
_pending: contextvars.ContextVar[list[_Slot] | None] = contextvars.ContextVar(
    "cxlab_pictures", default=None
)
_log = logging.getLogger(__name__)


def draw(
    chart: Mapping[str, Any],
    *,
    where: DeltaGenerator | None = None,
    share: float = 1.0,
) -> None:
    """Draw a chart as a picture (:func:`cxlab.charts.figure_svg`).

    The chart's title is the picture's text alternative. Inside :func:`pictures`
    the picture is shown when the page's script has run; a page that calls
    ``st.stop()`` must do so before its first chart.

    Args:
        chart: the Vega-Lite spec, as :mod:`cxlab.charts` builds it.
        where: a column, tab or container to draw in (the page's main area by
            default).
        share: the share of the page's width that ``where`` spans.
    """
    slot = (st if where is None else where).empty()
    made = start(chart, share)
    pending = _pending.get()
    if pending is None:
        _show(slot, made, chart["title"])
    else:
        pending.append((slot, made, chart["title"]))


@contextlib.contextmanager
def pictures() -> Iterator[None]:
    """Run a page whose pictures are made while it runs and shown at its end.

    A run interrupted by a rerun (a newer widget change) shows none: the rerun
    draws its own. Nothing can be shown after ``st.stop()``: a page stopping
    after a chart loses it, and the server's log says so.
    """
    pending: list[_Slot] = []
    token = _pending.set(pending)
    try:
        yield
    except StopException:
        if pending:
            _log.error("a page stopped after %d chart(s): not shown", len(pending))
        raise
    finally:
        _pending.reset(token)
    for slot, made, title in pending:
        _show(slot, made, title)


def start(chart: Mapping[str, Any], share: float = 1.0) -> Future[str]:
    """The chart's picture for ``share`` of the page's width, made or being made.

    Made once per server process (``cxlab app`` makes the results pages' first
    pictures before it answers, :func:`cxlab.ui.serve.draw_first_views`); one that
    could not be made is tried again by the next call.
    """
    key = (json.dumps(chart), round(PAGE_WIDTH * share))
    with _made_lock:
        made = _made.get(key)
        if made is None or (made.done() and made.exception() is not None):
            made = _made[key] = _painters.submit(_make, *key)
        _made.move_to_end(key)
        if len(_made) > KEPT:
            _made.popitem(last=False)
    return made


def _make(spec: str, width: int) -> str:
    from cxlab.charts import figure_svg  # not for the portfolio (app.py imports this)

    return figure_svg(json.loads(spec), width=width)


def _show(slot: DeltaGenerator, made: Future[str], title: str) -> None:
    """The picture in its slot, or a sentence saying it could not be drawn.

    Shown after the page's own error handling (app.py): no failure of a picture
    may reach the page as a traceback.
    """
    try:
        svg = made.result()
    except Exception as error:  # RenderError, or a bug: the log has it
        _log.error("the chart %r could not be drawn", title, exc_info=error)
        slot.warning(
            f"The chart “{title}” could not be drawn; the server's log says why.",
            icon=":material/broken_image:",
        )
        return
    slot.image(svg, width="content", alt=title)
