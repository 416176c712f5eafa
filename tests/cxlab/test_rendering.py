"""The export process: vl-convert's answers and errors, and a worker that dies."""

from __future__ import annotations

import subprocess

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
    return [w for w in rendering._workers.queue if w is not None]


def test_a_dead_worker_is_replaced_by_the_next_export() -> None:
    rendering.render("vegalite_to_svg", BAR)
    first = _idle_workers()[-1]  # the next call's (last in, first out)
    first.kill()
    first.wait()
    assert rendering.render("vegalite_to_svg", BAR).startswith("<svg")
    assert _idle_workers()[-1] is not first
    assert first not in _idle_workers()


def test_a_second_chart_is_drawn_beside_a_busy_one() -> None:
    rendering.render("vegalite_to_svg", BAR)
    busy = rendering._workers.get()  # as while another thread's chart is drawn
    try:
        assert rendering.render("vegalite_to_svg", BAR).startswith("<svg")
        beside = _idle_workers()
    finally:
        rendering._workers.put(busy)
    assert busy is not None
    assert busy.poll() is None  # still there, idle again
    assert len(beside) == 1
    assert beside[0] is not busy
    assert beside[0].poll() is None
    assert rendering.WORKERS == 2 == rendering._workers.qsize()
