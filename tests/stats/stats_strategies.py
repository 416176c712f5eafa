"""Hypothesis strategies of arms shared by the stats tests."""

from __future__ import annotations

from hypothesis import strategies as st

from cxlab.stats.aggregates import ProportionStats, SampleStats


@st.composite
def proportion_arms(draw: st.DrawFn, min_n: int = 2) -> ProportionStats:
    n = draw(st.integers(min_value=min_n, max_value=200_000))
    successes = draw(st.integers(min_value=0, max_value=n))
    return ProportionStats(n, successes)


@st.composite
def sample_arms(draw: st.DrawFn) -> SampleStats:
    """A SampleStats built from a mean and a standard deviation, so it is valid."""
    n = draw(st.integers(min_value=2, max_value=100_000))
    mean = draw(st.floats(min_value=0.01, max_value=1_000.0))
    sd = draw(st.floats(min_value=0.01, max_value=1_000.0))
    total = mean * n
    sum_sq = sd**2 * (n - 1) + total**2 / n
    return SampleStats(n, total, sum_sq)
