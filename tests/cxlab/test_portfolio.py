"""Portfolio: combined effects of shipped experiments and headline counts."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import polars as pl
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


def experiment(
    exp_id, status, rows, *, srm_ok=True, end=dt.date(2026, 10, 20), tags=()
):
    return SimpleNamespace(
        experiment=SimpleNamespace(
            id=exp_id,
            status=status,
            start=dt.date(2026, 6, 1),
            end=None if status == "running" else end,
            treatments=("t",),
            decision="fixed",
            tags=tags,
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


# --- A/A tests, progress and ETA, agreement with the engine, filters ------------------


def test_aa_tests_are_left_out_of_the_win_and_learning_rates() -> None:
    aa = experiment(
        "aa",
        "stopped",
        [row("conversion", "t", "primary", "win", 0.01, 0.004)],  # a false positive
        tags=("platform", "aa-test"),
    )
    head = portfolio.headline([*PORTFOLIO, aa], dt.date(2026, 11, 5))
    assert head.decided == 4  # as without it
    assert head.wins == 2
    assert head.win_rate == pytest.approx(0.5)
    assert head.aa_tests == 1
    assert portfolio.is_aa_test(SimpleNamespace(tags=("AA",)))
    assert not portfolio.is_aa_test(SimpleNamespace(tags=("aab", "checkout")))


def exposures(days: dict[str, int], experiment_id: str = "e") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "experiment_id": [experiment_id] * len(days),
            "day": [dt.date.fromisoformat(d) for d in days],
            "d_users": list(days.values()),
        }
    )


def test_daily_new_users_is_the_mean_of_the_last_seven_days_with_gaps_as_zero() -> None:
    exp = SimpleNamespace(id="e", start=dt.date(2026, 10, 1))
    log = exposures({"2026-10-01": 999, "2026-10-14": 700, "2026-10-20": 700})
    # 10-14 .. 10-20: 1400 users over 7 days (the 10-01 day is outside the window)
    assert portfolio.daily_new_users(log, exp, dt.date(2026, 10, 20)) == 200
    # Three days old: the mean over those three days.
    young = SimpleNamespace(id="e", start=dt.date(2026, 10, 18))
    assert portfolio.daily_new_users(log, young, dt.date(2026, 10, 20)) == 700 / 3
    assert portfolio.daily_new_users(log, young, dt.date(2026, 10, 17)) == 0


def running(users: int, planned: int | None, status: str = "running"):
    result = experiment("e", status, [])
    result.experiment.planned_users = planned
    result.users = {"control": users // 2, "t": users - users // 2}
    result.as_of = dt.date(2026, 10, 20)
    return result


def test_eta_is_the_day_the_plan_is_reached_at_the_recent_daily_rate() -> None:
    progress = portfolio.progress_of(running(6_000, 10_000), daily=300)
    # 4,000 users missing at 300 a day: 13.3 days, rounded up to 14.
    assert progress.eta == dt.date(2026, 11, 3)
    assert progress.text == "03 Nov 2026"
    assert progress.share == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("users", "planned", "daily", "status", "text"),
    [
        (6_000, None, 300, "running", "no plan"),
        (12_000, 10_000, 300, "running", "reached"),
        (6_000, 10_000, 0, "running", "no traffic"),
        (6_000, 10_000, 300, "shipped", "ended"),
    ],
)
def test_eta_says_why_there_is_no_day(users, planned, daily, status, text) -> None:
    progress = portfolio.progress_of(running(users, planned, status), daily)
    assert progress.text == text
    assert progress.eta is None
    assert progress.share == (None if planned is None else users / planned)


def test_a_planned_experiment_says_when_it_starts() -> None:
    result = running(0, 10_000)
    result.experiment.start = dt.date(2026, 10, 22)  # after the as-of day, 10-20
    progress = portfolio.progress_of(result, daily=0)
    assert portfolio.status_of(result) == "planned"
    assert progress.text == "starts 22 Oct 2026"
    assert progress.eta is None


def test_a_shipped_experiment_the_engine_would_not_ship_is_flagged() -> None:
    result = experiment(
        "s", "shipped", [row("conversion", "t", "primary", "inconclusive", 0.01, 0.02)]
    )
    result.recommendation = SimpleNamespace(action="review")
    assert not portfolio.agrees(result)
    assert portfolio.status_text(result) == "shipped — engine: review (not significant)"
    result.recommendation = SimpleNamespace(action="ship")
    assert portfolio.agrees(result)
    assert portfolio.status_text(result) == "shipped"
    stopped = experiment("x", "stopped", [])
    stopped.recommendation = SimpleNamespace(action="review")
    assert portfolio.status_text(stopped) == "stopped"  # stopping implies no call


ROWS = [
    {
        "experiment": "Proactive shipping e-mail",
        "id": "proactive-shipping-email",
        "owner": "delivery-experience",
        "tags": "delivery, email",
        "primary metric": "Contacts per order",
        "status": "shipped",
        "status_text": "shipped",
    },
    {
        "experiment": "Checkout A/A test",
        "id": "checkout-aa-test",
        "owner": "experimentation-platform",
        "tags": "aa-test",
        "primary metric": "Conversion",
        "status": "stopped",
        "status_text": "stopped",
    },
]


@pytest.mark.parametrize(
    ("kwargs", "ids"),
    [
        ({"text": "SHIPPING"}, ["proactive-shipping-email"]),
        ({"text": "conversion platform"}, ["checkout-aa-test"]),
        ({"text": "email nowhere"}, []),
        ({"statuses": ["stopped"]}, ["checkout-aa-test"]),
        ({"tags": ["email"], "text": "contacts"}, ["proactive-shipping-email"]),
        ({"owners": ["delivery-experience"], "text": "a/a"}, []),
        ({}, ["proactive-shipping-email", "checkout-aa-test"]),
    ],
)
def test_filters_and_search_keep_rows_matching_all_of_them(kwargs, ids) -> None:
    assert [r["id"] for r in portfolio.filter_rows(ROWS, **kwargs)] == ids


ROW = {
    "experiment": "Sale [50%] *now*",
    "link": "results?experiment=sale",
    "status_text": "shipped — engine: review (not significant)",
    "agrees": False,
    "aa_test": False,
    "effect": "Conversion: +1.4% [−1.5%, +4.3%]",
    "verdict": "○ inconclusive",
    "recommendation": "review",
    "guardrails": "ok",
    "health": "● SRM",
    "progress": 0.5,
    "users": 1234,
    "eta": "ended",
}


def test_markdown_cells_escape_names_and_flag_disagreement() -> None:
    cells = portfolio.executive_rows([ROW])[0]
    assert cells["experiment"] == r"[Sale \[50%\] \*now\*](results?experiment=sale)"
    assert cells["status"].startswith(":orange[⚠ shipped — engine")
    assert cells["health"] == r":red[● SRM]"
    assert cells["progress"] == r"50% of plan \(1,234 users\)"


def test_the_executive_table_is_one_markdown_pipe_table_row_per_experiment() -> None:
    other = ROW | {"experiment": "A | B\nsplit", "agrees": True, "progress": None}
    lines = portfolio.executive_table([ROW, other]).splitlines()
    assert lines[0] == (
        "| experiment | status | primary effect [interval] | verdict | engine says "
        "| guardrails | health | progress | ETA |"
    )
    assert lines[1] == "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    assert lines[2].startswith(r"| [Sale \[50%\] \*now\*](results?experiment=sale) | ")
    # A pipe in a name is escaped and a line break would end the table: 3 rows.
    assert len(lines) == 4
    assert lines[3].startswith(r"| [A \| B split](results?experiment=sale) | shipped —")
    assert lines[3].endswith(r"| no plan \(1,234 users\) | ended |")
