"""Links that carry a page's state: the results page's URL parameters.

``results?experiment=…&method=…&scale=…&metric=…&variant=…&as_of=YYYY-MM-DD``
names everything the results page shows; a value that does not fit (an unknown
method, a metric the experiment does not measure, a malformed day) is dropped with
a sentence saying so, and the page shows its default instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cxlab.analysis import ExperimentResult
from cxlab.decision import METHODS

SCALES = ("rel", "abs")
FIRST_DAY = dt.date(2000, 1, 1)  # the sidebar's earliest as-of day
LAST_DAY = dt.date(2999, 12, 31)
SHOWN_CHARS = 40


def shown(text: str) -> str:
    """A URL value quoted in a sentence: printable, short, no backticks."""
    clean = "".join(c if c.isprintable() and c != "`" else "?" for c in text)
    return clean if len(clean) <= SHOWN_CHARS else clean[: SHOWN_CHARS - 1] + "…"


def parse_day(text: str) -> dt.date | None:
    """A ``YYYY-MM-DD`` day from 2000 on, else None."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return None
    if len(text) != 10 or not FIRST_DAY <= day <= LAST_DAY:
        return None
    return day


def day_problem(text: str) -> str | None:
    """Why an ``as_of`` value is unusable (None when it is a day)."""
    if parse_day(text) is not None:
        return None
    return f"as_of=`{shown(text)}` is not a day (YYYY-MM-DD from 2000 on)"


def results_choices(result: ExperimentResult) -> dict[str, tuple[str, ...]]:
    """The values each widget parameter of the results page may take."""
    metrics = tuple(dict.fromkeys(r.metric.id for r in result.results))
    return {
        "method": METHODS,
        "scale": SCALES,
        "metric": metrics,
        "variant": result.experiment.treatments,
    }


def choice_problem(param: str, text: str, allowed: Sequence[str]) -> str | None:
    """Why a parameter's value is not one of ``allowed`` (None when it is)."""
    if text in allowed:
        return None
    return f"{param}=`{shown(text)}` is not one of {', '.join(allowed)}"
