"""Kaplan–Meier, RMST and the log-rank test against lifelines 0.30.0."""

from __future__ import annotations

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test
from lifelines.utils import restricted_mean_survival_time

from cxlab.stats.survival import (
    kaplan_meier,
    logrank_p_value,
    restricted_mean,
    survival_band,
    survival_stats,
)


def counts(time: np.ndarray, event: np.ndarray):
    """Distinct times with their events and censorings."""
    distinct = np.unique(time)
    d = np.array([np.sum((time == t) & event) for t in distinct])
    c = np.array([np.sum((time == t) & ~event) for t in distinct])
    return distinct, d, c


@pytest.fixture(scope="module")
def arms():
    rng = np.random.default_rng(1)
    control = np.round(rng.exponential(10, 200), 1), rng.random(200) < 0.7
    treatment = np.round(rng.exponential(13, 150), 1), rng.random(150) < 0.7
    return control, treatment


def test_kaplan_meier_and_its_band_match_lifelines(arms) -> None:
    (time, event), _ = arms
    km = kaplan_meier(*counts(time, event))
    fitted = KaplanMeierFitter().fit(time, event, alpha=0.05)
    # lifelines' first row is time 0 with S = 1.
    assert km.survival == pytest.approx(fitted.survival_function_.iloc[1:, 0], 1e-12)
    lower, upper = survival_band(km, alpha=0.05)  # both on the log(-log) scale
    band = fitted.confidence_interval_.iloc[1:].to_numpy()
    assert lower == pytest.approx(band[:, 0], abs=1e-12)
    assert upper == pytest.approx(band[:, 1], abs=1e-12)


@pytest.mark.parametrize("horizon", [5.0, 15.0, 60.0])
def test_restricted_mean_matches_lifelines(arms, horizon: float) -> None:
    (time, event), _ = arms
    mean, _ = restricted_mean(kaplan_meier(*counts(time, event)), horizon)
    fitted = KaplanMeierFitter().fit(time, event)
    assert mean == pytest.approx(restricted_mean_survival_time(fitted, horizon), 1e-12)


def test_rmst_variance_without_censoring_is_the_variance_of_the_mean() -> None:
    """Without censoring the KM is the empirical distribution: μ̂(τ) is the mean of
    min(T, τ) and the Greenwood-type variance its plug-in variance σ̂²/n (ddof 0)."""
    x = np.array([1.0, 2.0, 2.0, 4.0, 7.0, 9.0])
    mean, var = restricted_mean(kaplan_meier(*counts(x, np.ones(6, bool))), 8.0)
    clipped = np.minimum(x, 8.0)  # 1, 2, 2, 4, 7, 8
    assert mean == pytest.approx(24 / 6)
    assert var == pytest.approx(clipped.var() / 6)  # 42 / 6 / 6 = 7/6


def test_rmst_variance_by_hand_with_censoring() -> None:
    """Times 1, 2+, 3, 4+ (+ censored), τ = 5. KM: S = 3/4 after 1, 3/4·1/2 = 3/8
    after 3. μ = 1 + 3/4·2 + 3/8·2 = 3.25. A_1 = 2.25, A_3 = 0.75; Var =
    A_1²·1/(4·3) + A_3²·1/(2·1) = 5.0625/12 + 0.5625/2 = 0.703125."""
    km = kaplan_meier([1, 2, 3, 4], [1, 0, 1, 0], [0, 1, 0, 1])
    mean, var = restricted_mean(km, 5.0)
    assert mean == pytest.approx(3.25)
    assert var == pytest.approx(0.703125)
    stats = survival_stats(
        [1, 2, 3, 4], [1, 0, 1, 0], [0, 1, 0, 1], horizon=5.0, still_open=2
    )
    assert (stats.n, stats.mean, stats.censored) == (4, 3.25, 2)
    assert stats.var / stats.n == pytest.approx(0.703125)


def test_logrank_p_value_matches_lifelines(arms) -> None:
    (tc, ec), (tt, et) = arms
    p = logrank_p_value(kaplan_meier(*counts(tc, ec)), kaplan_meier(*counts(tt, et)))
    assert p == pytest.approx(logrank_test(tc, tt, ec, et).p_value, rel=1e-9)


def test_logrank_restricted_to_a_horizon_matches_lifelines(arms) -> None:
    """Every time past τ censored at τ, as the engine hands it over (lifelines'
    own ``t_0`` option fails with the installed pandas, so the cut is made here)."""
    (tc, ec), (tt, et) = arms
    tau = 12.0

    def cut(t, e):
        return np.minimum(t, tau), e & (t <= tau)

    (tc, ec), (tt, et) = cut(tc, ec), cut(tt, et)
    p = logrank_p_value(kaplan_meier(*counts(tc, ec)), kaplan_meier(*counts(tt, et)))
    assert p == pytest.approx(logrank_test(tc, tt, ec, et).p_value, rel=1e-9)


def test_degenerate_inputs_give_nan() -> None:
    empty = kaplan_meier([], [], [])
    assert np.isnan(restricted_mean(empty, 5.0)[0])
    censored_only = kaplan_meier([3.0], [0], [4])
    assert restricted_mean(censored_only, 5.0) == (5.0, 0.0)
    assert np.isnan(logrank_p_value(censored_only, censored_only))
