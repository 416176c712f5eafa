"""The export process: vl-convert's answers and errors, and a worker that dies."""

from __future__ import annotations

import pytest

from cxlab import rendering

BAR = {
    "data": {"values": [{"a": 1}, {"a": 3}]},
    "mark": "bar",
    "encoding": {"x": {"field": "a", "type": "quantitative"}},
}


def test_a_refused_chart_is_an_error_and_the_worker_goes_on() -> None:
    with pytest.raises(rendering.RenderError, match="Vega-Lite to PNG conversion"):
        rendering.render("vegalite_to_png", {"mark": "no such mark"})
    assert rendering.render("vegalite_to_svg", BAR).startswith("<svg")


def test_a_dead_worker_is_replaced_by_the_next_export() -> None:
    rendering.render("vegalite_to_svg", BAR)
    first = rendering._worker
    assert first is not None
    first.kill()
    first.wait()
    assert rendering.render("vegalite_to_svg", BAR).startswith("<svg")
    assert rendering._worker is not first
