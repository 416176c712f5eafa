"""The results page's URL parameters: which values are used, which are refused."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from cxlab import links


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2026-10-05", dt.date(2026, 10, 5)),
        ("2026-13-01", None),
        ("20261005", None),  # fromisoformat takes it; the link format does not
        ("1999-12-31", None),
        ("yesterday", None),
        ("", None),
    ],
)
def test_as_of_is_a_day_in_iso_form_from_2000_on(text: str, day) -> None:
    assert links.parse_day(text) == day
    assert (links.day_problem(text) is None) == (day is not None)


def test_choices_are_the_methods_scales_metrics_and_treatments_shown() -> None:
    metric = SimpleNamespace
    result = SimpleNamespace(
        experiment=SimpleNamespace(treatments=("t1", "t2")),
        results=[
            SimpleNamespace(metric=metric(id="conversion")),
            SimpleNamespace(metric=metric(id="nps")),
            SimpleNamespace(metric=metric(id="conversion")),
        ],
    )
    choices = links.results_choices(result)
    assert choices == {
        "method": ("sequential", "fixed", "bayesian"),
        "scale": ("rel", "abs"),
        "metric": ("conversion", "nps"),
        "variant": ("t1", "t2"),
    }
    assert links.choice_problem("method", "fixed", choices["method"]) is None
    assert links.choice_problem("method", "magic", choices["method"]) == (
        "method=`magic` is not one of sequential, fixed, bayesian"
    )


def test_values_quoted_in_sentences_are_printable_and_short() -> None:
    assert links.shown("a`b\x1bc") == "a?b?c"
    assert len(links.shown("x" * 500)) == links.SHOWN_CHARS
