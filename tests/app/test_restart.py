"""A restarted server reads summaries and analysed results back from disk: no
rescan, no re-analysis, the same numbers."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from cxlab.ui import cache
from tests.app.conftest import executive_tables

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import app_rerender  # noqa: E402

APP = str(ROOT / "app.py")
SHIPPING = "proactive-shipping-email"


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
    assert len(list(tmp_path.glob("portfolio-*.pickle"))) == 1

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
