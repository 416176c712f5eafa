"""The export processes: vl-convert's answers and errors, a worker that dies, fonts."""

from __future__ import annotations

import subprocess
from pathlib import Path

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


def _idle_workers() -> list[subprocess.Popen[bytes]]:
    return [w for w in rendering._workers["own"].queue if w is not None]


def test_a_dead_worker_is_replaced_by_the_next_export() -> None:
    rendering.render("vegalite_to_svg", BAR, fonts="own")
    first = _idle_workers()[-1]  # the next call's (last in, first out)
    first.kill()
    first.wait()
    assert rendering.render("vegalite_to_svg", BAR, fonts="own").startswith("<svg")
    assert _idle_workers()[-1] is not first
    assert first not in _idle_workers()


def test_a_second_chart_is_drawn_beside_a_busy_one() -> None:
    rendering.render("vegalite_to_svg", BAR, fonts="own")
    busy = rendering._workers["own"].get()  # as while another thread's is drawn
    try:
        assert rendering.render("vegalite_to_svg", BAR, fonts="own").startswith("<svg")
        beside = _idle_workers()
    finally:
        rendering._workers["own"].put(busy)
    assert busy is not None
    assert busy.poll() is None  # still there, idle again
    assert len(beside) == 1
    assert beside[0] is not busy
    assert beside[0].poll() is None
    assert rendering.WORKERS["own"] == 2 == rendering._workers["own"].qsize()


LABELS = {
    "data": {
        "values": [
            {"label": "Contacts per order (primary)", "v": -0.07},
            {"label": "Ünïcödé naïve café — Кириллица (guardrail)", "v": 0.02},
        ]
    },
    "title": "Estimates vs control with sequential intervals (each at its level)",
    "mark": "point",
    "encoding": {
        "y": {"field": "label", "type": "nominal", "axis": {"labelLimit": 0}},
        "x": {"field": "v", "type": "quantitative", "axis": {"format": "+.0%"}},
    },
    "width": 700,
    "autosize": {"type": "fit-x", "contains": "padding"},
}


def test_a_picture_is_laid_out_alike_in_either_fonts() -> None:
    # The pictures' workers measure in vl-convert's own Liberation Sans; CI's
    # machine has the system's too (fonts-liberation): the same widths.
    own = rendering.render("vegalite_to_svg", LABELS, fonts="own")
    assert own == rendering.render("vegalite_to_svg", LABELS, fonts="system")
    assert "Кириллица" in own


def _symbols(text: str, fonts: rendering.Fonts) -> bytes:
    spec = {
        "data": {"values": [{"text": text}]},
        "mark": {"type": "text", "fontSize": 30, "font": "Liberation Sans"},
        "encoding": {"text": {"field": "text"}},
        "width": 60,
        "height": 40,
    }
    return rendering.render("vegalite_to_png", spec, fonts=fonts)


DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


@pytest.mark.skipif(not DEJAVU.is_file(), reason="the system has no DejaVu Sans")
def test_an_export_draws_what_only_the_system_s_fonts_have() -> None:
    # Liberation Sans has neither ⌘ nor ✓; DejaVu Sans, a system font, has both.
    assert _symbols("⌘⌘⌘", "system") != _symbols("✓✓✓", "system")
    # The pictures' workers see no font of the system's: both are missing glyphs.
    assert _symbols("⌘⌘⌘", "own") == _symbols("✓✓✓", "own")
