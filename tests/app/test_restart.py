"""A restarted server reads summaries and analysed results back from disk: no
rescan, no re-analysis, the same numbers."""

from __future__ import annotations

import datetime as dt
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from cxlab.ui import cache
from tests.app.conftest import executive_tables, scorecard_shown

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import app_rerender  # noqa: E402

APP = str(ROOT / "app.py")
SHIPPING = "proactive-shipping-email"
AA = "checkout-aa-test"


def restarted(timeout: int, experiment: str | None = None) -> AppTest:
    """The app as a fresh server process sees it: nothing in memory.

    With ``experiment``, the results page of that experiment (a shared link).
    """
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=timeout)
    if experiment is not None:
        at.query_params["experiment"] = experiment
        at.switch_page("pages/results.py")
    with app_rerender.server_like_navigation():  # app.py on every rerun, as served
        at.run()
    assert not at.exception
    return at


def counting(monkeypatch: pytest.MonkeyPatch, calls: list[str], *names: str) -> None:
    """Record each call of the engine functions ``names`` as ``ui.cache`` uses them."""
    for name in names:
        original: Callable[..., object] = getattr(cache, name)

        def counted(
            *args: object,
            _name: str = name,
            _f: Callable[..., object] = original,
            **kwargs: object,
        ) -> object:
            calls.append(_name)
            return _f(*args, **kwargs)

        monkeypatch.setattr(cache, name, counted)


def test_a_restart_draws_the_portfolio_from_the_stored_summaries_and_results(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, timeout: int, sample_log: Path
) -> None:
    monkeypatch.setenv(cache.STORE_ENV, str(tmp_path))
    scans: list[str] = []
    analyses: list[str] = []
    counting(monkeypatch, scans, "summarize_all")
    counting(monkeypatch, analyses, "results_for", "analyze_history")
    first = restarted(timeout)
    assert scans == ["summarize_all"]
    assert analyses.count("results_for") == 8  # the eight bundled experiments
    assert len(list(tmp_path.glob("summaries-*.pickle"))) == 1
    assert len(list(tmp_path.glob("row-*.pickle"))) == 8

    scans.clear()
    analyses.clear()
    second = restarted(timeout)
    assert scans == []  # read back, not rescanned
    assert analyses == []  # read back, not re-analysed
    assert executive_tables(second)[0].equals(executive_tables(first)[0])
    assert [m.value for m in second.metric] == [m.value for m in first.metric]


def test_a_restart_draws_a_results_page_from_the_stored_history(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, timeout: int, sample_log: Path
) -> None:
    monkeypatch.setenv(cache.STORE_ENV, str(tmp_path))
    analyses: list[str] = []
    counting(monkeypatch, analyses, "results_for", "analyze_history")
    first = restarted(timeout, SHIPPING)
    assert "analyze_history" in analyses
    assert len(list(tmp_path.glob("history-*.pickle"))) == 1

    analyses.clear()
    second = restarted(timeout, SHIPPING)
    assert analyses == []
    assert second.selectbox(key="results_experiment").value == SHIPPING
    assert [m.value for m in second.markdown] == [m.value for m in first.markdown]
    assert len(second.dataframe) == len(first.dataframe)
    for shown, drawn_before in zip(second.dataframe, first.dataframe, strict=True):
        assert shown.value.equals(drawn_before.value)


def shipping_as_of(timeout: int, day: dt.date | None) -> AppTest:
    """The shipping e-mail's results page as of ``day``, after a restart."""
    at = restarted(timeout, SHIPPING)
    at.date_input(key=cache.AS_OF_KEY).set_value(day)
    with app_rerender.server_like_navigation():
        at.run()
    assert not at.exception
    return at


def test_an_earlier_day_s_history_is_read_off_the_stored_one_not_stored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, timeout: int, sample_log: Path
) -> None:
    monkeypatch.setenv(cache.STORE_ENV, str(tmp_path))
    analyses: list[str] = []
    counting(monkeypatch, analyses, "results_for", "analyze_history")

    shipping_as_of(timeout, None)
    assert analyses == ["analyze_history"]
    whole = cache.load_history(cache.default_workspace(), SHIPPING)
    day = whole[-8].as_of
    analyses.clear()
    first = shipping_as_of(timeout, day)
    assert f"as of {day:%d %b %Y}" in " ".join(m.value for m in first.markdown)
    assert analyses == []  # the whole history's first days
    assert len(list(tmp_path.glob("history-*.pickle"))) == 1  # the whole one only

    # A restart: the whole history read back, the day read off.
    second = shipping_as_of(timeout, day)
    assert analyses == []
    assert [m.value for m in second.markdown] == [m.value for m in first.markdown]


def test_a_day_after_the_experiment_s_end_shows_its_last_day_s_numbers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, timeout: int, sample_log: Path
) -> None:
    """Its whole history runs to its end (18 Oct): a later day is read off it, not
    analysed, and shows the same numbers under the later date."""
    monkeypatch.setenv(cache.STORE_ENV, str(tmp_path))
    analyses: list[str] = []
    counting(monkeypatch, analyses, "analyze_history")
    whole = shipping_as_of(timeout, None)
    analyses.clear()
    later = shipping_as_of(timeout, dt.date(2026, 10, 22))
    assert analyses == []
    assert "as of 18 Oct 2026" in " ".join(m.value for m in whole.markdown)
    assert "as of 22 Oct 2026" in " ".join(m.value for m in later.markdown)
    assert scorecard_shown(later).equals(scorecard_shown(whole))
    assert later.success[0].value == whole.success[0].value  # Ship, and why


def test_an_edit_the_scan_does_not_read_re_analyses_only_that_experiment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, timeout: int, sample_log: Path
) -> None:
    """A decision note or alpha changes no summary (cxlab.summaries.as_reduced):
    the edited experiment is analysed again, the log is not read again, and the
    other experiments' results are read back; a new end day reads the log again."""
    monkeypatch.setenv(cache.STORE_ENV, str(tmp_path / "store"))
    folder = tmp_path / "experiments"
    shutil.copytree(ROOT / "experiments", folder)
    scans: list[str] = []
    analyses: list[str] = []
    counting(monkeypatch, scans, "summarize_all")
    counting(monkeypatch, analyses, "results_for", "analyze_history")
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.session_state["experiments_dir"] = str(folder)

    def show(page: str, experiment: str | None = None) -> str:
        """The page's Markdown and captions, drawn as the server would."""
        analyses.clear()
        if experiment is not None:
            at.query_params["experiment"] = experiment
        at.switch_page(f"pages/{page}.py")
        with app_rerender.server_like_navigation():
            at.run()
        assert not at.exception
        return " ".join(m.value for m in [*at.markdown, *at.caption])

    show("portfolio")
    assert scans == ["summarize_all"]
    assert analyses.count("results_for") == 8
    shipping = show("results", SHIPPING)
    assert analyses == ["analyze_history"]

    aa = folder / f"{AA}.yaml"
    note = "decision_note: No difference"
    text = aa.read_text().replace("alpha: 0.05", "alpha: 0.01")
    aa.write_text(text.replace(note, note.replace("No", "Reviewed, no")))
    show("portfolio")
    assert scans == ["summarize_all"]  # not read again
    assert analyses == ["results_for"]  # the edited experiment only
    shown = show("results", AA)
    assert "(α = 0.01" in shown
    assert "Reviewed, no difference" in shown
    assert show("results", SHIPPING) == shipping
    assert analyses == []  # its history read back from disk

    aa.write_text(aa.read_text().replace("end: 2026-09-27", "end: 2026-09-20"))
    assert "1 Sep 2026 – 20 Sep 2026" in show("results", AA)
    assert scans == ["summarize_all", "summarize_all"]  # the scan reads the end


def test_an_as_of_day_reads_the_portfolio_off_the_histories_the_server_has(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, timeout: int, sample_log: Path
) -> None:
    """``cxlab app`` has every whole history before it answers: a new as-of day's
    rows are read off them (cxlab.analysis.day_of_history), not analysed, and the
    portfolio shows exactly what it shows when they are analysed."""
    day = dt.date(2026, 10, 10)
    monkeypatch.setattr(cache, "_HAD", set())
    analyses: list[str] = []
    counting(monkeypatch, analyses, "results_for")

    def portfolio_as_of(store: Path, *, prepared: bool) -> AppTest:
        monkeypatch.setenv(cache.STORE_ENV, str(store))
        at = restarted(timeout)
        if prepared:  # what cxlab.ui.serve.prepare does
            ws = cache.default_workspace()
            for result in cache.load_portfolio(ws):
                cache.load_history(ws, result.experiment.id)
        analyses.clear()
        at.date_input(key=cache.AS_OF_KEY).set_value(day)
        with app_rerender.server_like_navigation():
            at.run()
        assert not at.exception
        return at

    analysed = portfolio_as_of(tmp_path / "analysed", prepared=False)
    assert analyses.count("results_for") == 8
    read = portfolio_as_of(tmp_path / "read", prepared=True)
    ws = cache.default_workspace()
    histories = [
        cache.load_history(ws, r.experiment.id) for r in cache.load_portfolio(ws)
    ]
    not_yet = [h for h in histories if day < h[0].as_of]  # started after the day
    ended = [h for h in histories if h[-1].as_of < day]  # ended: read off too
    assert (len(not_yet), len(ended)) == (1, 1)
    assert analyses.count("results_for") == len(not_yet)
    assert executive_tables(read)[0].equals(executive_tables(analysed)[0])
    assert f"{day:%d %b %Y}" in read.caption[0].value
    for element in ("metric", "caption", "info", "markdown"):
        assert [e.value for e in getattr(read, element)] == [
            e.value for e in getattr(analysed, element)
        ], element
