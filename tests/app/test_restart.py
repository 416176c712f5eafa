"""A restarted server reads the summaries back from disk instead of rescanning."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from cxlab.ui import cache

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def restarted_app(timeout: int) -> AppTest:
    """The app as a fresh server process sees it: no summaries in memory."""
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=timeout).run()
    assert not at.exception
    return at


def test_a_restart_draws_the_portfolio_from_the_stored_summaries(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, timeout: int, sample_log: Path
) -> None:
    monkeypatch.setenv(cache.STORE_ENV, str(tmp_path))
    scans: list[str] = []
    scan = cache.summarize_all

    def counted(*args: object, **kwargs: object) -> object:
        scans.append("scan")
        return scan(*args, **kwargs)

    monkeypatch.setattr(cache, "summarize_all", counted)
    first = restarted_app(timeout)
    assert scans == ["scan"]
    assert len(list(tmp_path.glob("summaries-*.pickle"))) == 1

    second = restarted_app(timeout)
    assert scans == ["scan"]  # read back, not rescanned
    assert second.table[0].value.equals(first.table[0].value)
    assert [m.value for m in second.metric] == [m.value for m in first.metric]
