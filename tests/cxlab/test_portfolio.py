"""Portfolio: combined effects of shipped experiments and headline counts."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from cxlab import portfolio

# --- fakes of analysed experiments (only the fields the functions read) -------------


def row(metric: str, variant: str, role: str, verdict: str, rel: float, se: float):
    return SimpleNamespace(
        metric=SimpleNamespace(
            id=metric, label=metric.title(), type="nps" if metric == "nps" else "mean"
        ),
        variant=variant,
        role=role,
        verdict=verdict,
        rel_delta=rel,
        fixed=SimpleNamespace(
            rel_delta=rel, rel_se=se, abs_delta=rel * 30, se=se * 30, rel_ci=(0, 0)
        ),
        sequential=SimpleNamespace(rel_ci=(0, 0)),
        bayesian=SimpleNamespace(prob_beat_control=0.5 + rel, rel_ci=(0, 0)),
    )


def experiment(exp_id, status, rows, *, srm_ok=True, end=dt.date(2026, 10, 20)):
    return SimpleNamespace(
        experiment=SimpleNamespace(
            id=exp_id,
            status=status,
            start=dt.date(2026, 6, 1),
            end=None if status == "running" else end,
            treatments=("t",),
            decision="fixed",
        ),
        srm=SimpleNamespace(ok=srm_ok),
        results=tuple(rows),
        finished=status != "running",
        as_of=end,
        warnings=(),
    )


PORTFOLIO = [
    experiment("a", "shipped", [row("conversion", "t", "primary", "win", 0.10, 0.04)]),
    experiment(
        "b", "rolled_back", [row("conversion", "t", "primary", "loss", -0.02, 0.05)]
    ),
    experiment("c", "shipped", [row("conversion", "t", "primary", "win", 0.05, 0.02)]),
    experiment(
        "d",
        "stopped",
        [row("conversion", "t", "primary", "win", 0.40, 0.01)],
        srm_ok=False,  # invalid: neither a win nor a learning, not in τ²
    ),
    experiment(
        "e", "running", [row("conversion", "t", "primary", "inconclusive", 0, 1)]
    ),
    experiment(
        "f",
        "shipped",
        [row("conversion", "t", "primary", "win", 0.2, 0.1)],
        end=dt.date(2026, 6, 30),  # decided last quarter
    ),
]


def test_headline_counts_running_decided_wins_and_learnings() -> None:
    head = portfolio.headline(PORTFOLIO, dt.date(2026, 11, 5))
    assert head.quarter == "Q4 2026"
    assert head.running == 1
    assert head.decided == 4  # a, b, c, d (f ended in Q2)
    assert head.wins == 2  # a, c (d's win is invalid)
    assert head.learnings == 3  # a, b (a loss is a learning), c
    assert head.win_rate == pytest.approx(0.5)
    assert head.learning_rate == pytest.approx(0.75)


def test_shipped_impact_shrinks_with_tau2_from_all_valid_experiments() -> None:
    results = PORTFOLIO[:5]  # a, b, c shipped/rolled back; d invalid; e running
    effect = portfolio.shipped_impact(results, "conversion")
    assert effect is not None
    # τ² from a, b, c and e (valid), not d: e adds w = 1, y = 0 to the sums.
    tau2 = (12.66 - 4) / (3525 + 1)
    assert effect.tau2 == pytest.approx(tau2)
    assert effect.n_experiments == 4
    b_a, b_c = tau2 / (tau2 + 0.0016), tau2 / (tau2 + 0.0004)
    m_a, m_c = b_a * 0.10, b_c * 0.05
    assert [c[0] for c in effect.contributions] == ["a", "c"]
    assert effect.estimate == pytest.approx((1 + m_a) * (1 + m_c) - 1)
    assert effect.raw_sum == pytest.approx(0.15)
    assert effect.estimate < effect.raw_sum
    lo, hi = effect.ci
    assert lo < effect.estimate < hi
    value, caption = portfolio.describe_impact(effect)
    assert value == f"{effect.estimate * 100:+.1f}%"
    assert "shrunk toward zero" in caption
    assert "+15.0%" in caption  # the raw sum, stated for comparison


def test_shipped_impact_is_none_without_shipped_experiments() -> None:
    assert portfolio.shipped_impact(PORTFOLIO[1:2], "conversion") is None
