"""Chart and table builders, checked against the engine results they draw."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from cxlab import charts
from cxlab.analysis import ExperimentResult
from cxlab.api import results_for, summarize_all
from cxlab.config import load_catalog, load_experiments
from cxlab.decision import METHODS
from cxlab.events import resolve_source

ROOT = Path(__file__).resolve().parents[2]
IDS = ("proactive-shipping-email", "recommendations-carousel")


@pytest.fixture(scope="module")
def histories() -> dict[str, list[ExperimentResult]]:
    """Two sample experiments as of every day (one scan of the sample log)."""
    sample = ROOT / "data" / "events.parquet"
    if not sample.is_file():
        from cxlab.sample import write_sample

        write_sample(sample)
    catalog = load_catalog(ROOT / "experiments" / "metrics.yaml")
    experiments = [
        e for e in load_experiments(ROOT / "experiments", catalog) if e.id in IDS
    ]
    summaries = summarize_all(resolve_source(sample), experiments, catalog)
    return {
        e.id: results_for(e, catalog, summaries[e.id], history=True)
        for e in experiments
    }


@pytest.fixture(scope="module")
def email(histories: dict[str, list[ExperimentResult]]) -> ExperimentResult:
    return histories["proactive-shipping-email"][-1]


def points(fig) -> dict[str, tuple[float, float, float, str]]:
    """y label → (x, +error, −error, colour) over every trace of a forest plot."""
    out = {}
    for trace in fig.data:
        for i, label in enumerate(trace.y):
            out[label] = (
                trace.x[i],
                trace.error_x.array[i],
                trace.error_x.arrayminus[i],
                trace.marker.color,
            )
    return out


@pytest.mark.parametrize("method", METHODS)
def test_forest_points_are_the_calls_estimate_and_interval(
    email: ExperimentResult, method: str
) -> None:
    drawn = points(charts.delta_forest(email, method))
    assert len(drawn) == len(email.results)
    for row in email.results:
        x, plus, minus, _ = drawn[f"{row.metric.label} ({row.role})"]
        call = row.calls[method]
        in_points = row.metric.id == "nps"  # NPS is drawn in points
        lo, hi = call.abs_ci if in_points else call.rel_ci
        assert x == pytest.approx(call.abs_delta if in_points else call.rel_delta)
        assert x + plus == pytest.approx(hi)
        assert x - minus == pytest.approx(lo)


def test_scorecard_delta_interval_and_sentence_are_one_set_of_numbers(
    email: ExperimentResult,
) -> None:
    frame = charts.scorecard_frame(email, email.experiment.decision).to_dicts()
    by_metric = {r["metric"]: r for r in frame}
    for row in email.results:
        shown = by_metric[row.metric.label]
        # The scorecard's delta and interval are quoted verbatim by the sentence.
        if row.metric.id == "nps":
            assert shown["delta"].endswith(" pts")
            number = shown["delta"].removesuffix(" pts").lstrip("+−")
            assert f"by {number} points" in row.summary
        else:
            assert f"by {shown['delta'].lstrip('+−')} (" in row.summary
        lo, hi = shown["interval"].strip("[]").split(", ")
        assert f"{lo.removesuffix(' pts')} to {hi.removesuffix(' pts')})" in row.summary
        assert shown["level"] in row.summary


def test_forest_colours_follow_the_good_direction(email: ExperimentResult) -> None:
    drawn = points(charts.delta_forest(email, email.experiment.decision))
    contacts = email.result("contacts_per_order")
    assert contacts.metric.direction == "decrease"
    assert contacts.rel_delta < 0
    assert contacts.verdict == "win"
    assert drawn["Contacts per order (primary)"][3] == charts.GOOD
    for row in email.results:
        colour = drawn[f"{row.metric.label} ({row.role})"][3]
        assert colour == charts.verdict_colour(row.verdict)


def test_forest_is_all_muted_when_the_traffic_split_is_broken(
    histories: dict[str, list[ExperimentResult]],
) -> None:
    carousel = histories["recommendations-carousel"][-1]
    assert not carousel.srm.ok
    fig = charts.delta_forest(carousel, "sequential")
    assert {t.marker.color for t in fig.data} == {charts.MUTED}


def test_every_methods_interval_excludes_zero_exactly_when_significant(
    email: ExperimentResult,
) -> None:
    for row in email.results:
        assert row.call is row.calls[email.experiment.decision]
        for call in row.calls.values():
            for lo, hi in (call.abs_ci, call.rel_ci):
                assert (lo > 0 or hi < 0) == call.significant
                assert lo < call.abs_delta or lo < call.rel_delta
        assert row.calls["fixed"].adjusted_p_value == row.adjusted_p_value


def test_cumulative_lift_draws_every_day_with_both_bands(
    histories: dict[str, list[ExperimentResult]],
) -> None:
    history = histories["proactive-shipping-email"]
    fig = charts.cumulative_lift(history, "contacts_per_order")
    seq_lo, seq_hi, fix_lo, fix_hi, lift = fig.data
    assert list(lift.x) == [h.as_of for h in history]
    last = history[-1].result("contacts_per_order")
    assert lift.y[-1] == pytest.approx(last.call.rel_delta)
    assert (seq_lo.y[-1], seq_hi.y[-1]) == pytest.approx(last.sequential.rel_ci)
    assert (fix_lo.y[-1], fix_hi.y[-1]) == pytest.approx(last.fixed.rel_ci)
    assert seq_hi.fill == fix_hi.fill == "tonexty"


def test_the_absolute_toggle_and_nps_change_the_lift_chart(
    histories: dict[str, list[ExperimentResult]],
) -> None:
    history = histories["proactive-shipping-email"]
    absolute = charts.cumulative_lift(history, "contacts_per_order", scale="abs")
    last = history[-1].result("contacts_per_order")
    assert absolute.data[-1].y[-1] == pytest.approx(last.call.abs_delta)
    assert (absolute.data[0].y[-1], absolute.data[1].y[-1]) == pytest.approx(
        last.sequential.abs_ci
    )
    # NPS is in points whatever the toggle: its axis spans points, not ±300%.
    nps = history[-1].result("nps")
    for scale in ("rel", "abs"):
        fig = charts.cumulative_lift(history, "nps", scale=scale)
        assert fig.data[-1].y[-1] == pytest.approx(nps.call.abs_delta)
        assert fig.layout.yaxis.title.text == "points vs control"


def test_arm_values_over_time_has_one_line_per_arm(
    histories: dict[str, list[ExperimentResult]],
) -> None:
    history = histories["proactive-shipping-email"]
    fig = charts.arm_values_over_time(history, "nps")
    assert [t.name for t in fig.data] == ["control", "proactive_email"]
    nps = history[-1].result("nps")
    assert fig.data[0].y[-1] == pytest.approx(nps.control.value)
    assert fig.data[1].y[-1] == pytest.approx(nps.treatment.value)


@pytest.mark.parametrize("direction", ["increase", "decrease"])
def test_posterior_shades_the_probability_of_being_better(
    email: ExperimentResult, direction: str
) -> None:
    bayes = email.result("contact_rate").bayesian
    fig = charts.posterior(bayes, direction)
    shaded, curve = fig.data
    area = float(np.trapezoid(shaded.y, shaded.x))
    mass_up = sps.norm.sf(0, bayes.posterior_mean, bayes.posterior_sd)
    expected = mass_up if direction == "increase" else 1 - mass_up
    assert area == pytest.approx(expected, abs=0.01)
    assert curve.x[int(np.argmax(curve.y))] == pytest.approx(
        bayes.posterior_mean, abs=bayes.posterior_sd / 20
    )


def test_nps_split_shares_add_up_per_arm(email: ExperimentResult) -> None:
    fig = charts.nps_split(email)
    assert [t.name for t in fig.data] == [
        "detractors (0-6)",
        "passives (7-8)",
        "promoters (9-10)",
    ]
    totals = np.sum([t.x for t in fig.data], axis=0)
    assert totals == pytest.approx([1.0, 1.0])
    control = email.result("nps").control.stats
    assert fig.data[2].x[0] == pytest.approx(control.promoters / control.n)
    frame = charts.nps_response_frame(email, "nps")
    assert frame["response rate"][0] == pytest.approx(
        control.n / email.users["control"]
    )


def test_exposures_per_day_sums_new_users_per_arm() -> None:
    frame = pl.DataFrame(
        {
            "experiment_id": ["x", "x", "x", "x", "y"],
            "variant": ["a", "b", "a", "b", "a"],
            "day": [dt.date(2026, 9, 1)] * 2 + [dt.date(2026, 9, 2)] * 2 + [None],
            "d_users": [10, 12, 5, 4, 99],
        }
    )
    fig = charts.exposures_per_day(frame, "x")
    assert [t.name for t in fig.data] == ["a", "b"]
    assert [sum(t.y) for t in fig.data] == [15, 16]


def test_scorecard_frame_switches_columns_with_the_method(
    email: ExperimentResult,
) -> None:
    seq = charts.scorecard_frame(email, "sequential")
    bayes = charts.scorecard_frame(email, "bayesian", "abs")
    assert "p (always-valid, adjusted)" in seq.columns
    assert "P(better)" in bayes.columns
    # NPS is in points on the relative scale too, never a relative %.
    assert seq.filter(pl.col("metric") == "NPS")["delta"][0].endswith(" pts")
    assert seq["role"].to_list()[0] == "Primary"
    contacts = seq.row(0, named=True)
    assert contacts["metric"] == "Contacts per order"
    assert contacts["verdict"] == "● win"
    assert charts.cell_style(contacts["verdict"]).startswith(f"color: {charts.GOOD}")
    assert bayes.filter(pl.col("metric") == "NPS")["delta"][0].endswith(" pts")


def test_value_and_delta_formats() -> None:
    from cxlab.config import MetricDef

    rate = MetricDef(id="r", type="proportion", direction="decrease", event="c")
    money = MetricDef(
        id="m", type="mean", direction="increase", event="o", format="currency"
    )
    assert charts.format_value(rate, 0.06993) == "6.99%"
    assert charts.format_delta(rate, -0.0066, "abs") == "−0.66 pp"
    assert charts.format_delta(rate, -0.095, "rel") == "−9.5%"
    assert charts.format_delta(money, -0.5, "abs") == "−€0.50"
    assert charts.format_statistic("bayesian", 0.9684) == "96.8%"
    assert charts.format_statistic("fixed", 0.00001) == "<0.0001"


def test_charts_html_is_self_contained(email: ExperimentResult) -> None:
    page = charts.figures_html([charts.delta_forest(email, "fixed")] * 2, "t")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script src=" not in page  # plotly.js is inlined, not fetched
    assert page.count("Plotly.newPlot") == 2


@pytest.mark.skipif(
    not charts.png_export_available(), reason="kaleido or a Chromium is missing"
)
def test_png_export_renders_with_the_local_browser(email: ExperimentResult) -> None:
    png = charts.figure_png(charts.delta_forest(email, "fixed"), width=600, scale=1)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width = int.from_bytes(png[16:20], "big")  # IHDR: width, height as big-endian
    assert width == 600
