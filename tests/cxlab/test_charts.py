"""Chart and table builders, checked against the engine results they draw."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import itertools
import json
import re
import threading
import time
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


def rows(chart: charts.Chart) -> list[dict]:
    """The data rows a chart draws."""
    return chart["data"]["values"]


def points(forest: list[charts.Chart]) -> dict[str, tuple[float, float, float, str]]:
    """Forest label → (estimate, low, high, colour): a row and its legend colour."""
    out = {}
    for chart in forest:
        scale = chart["layer"][-1]["encoding"]["color"]["scale"]
        colours = dict(zip(scale["domain"], scale["range"], strict=True))
        for r in rows(chart):
            out[r["label"]] = (r["value"], r["low"], r["high"], colours[r["verdict"]])
    return out


@pytest.mark.parametrize("method", METHODS)
def test_forest_points_are_the_calls_estimate_and_interval(
    email: ExperimentResult, method: str
) -> None:
    forest = charts.delta_forest(email, method)
    drawn = points(forest)
    assert len(drawn) == len(email.results)
    for row in email.results:
        x, low, high, _ = drawn[f"{row.metric.label} ({row.role})"]
        call = row.calls[method]
        in_points = row.metric.id == "nps"  # NPS is drawn in points
        lo, hi = call.abs_ci if in_points else call.rel_ci
        assert x == pytest.approx(call.abs_delta if in_points else call.rel_delta)
        assert (low, high) == pytest.approx((lo, hi))
    # NPS gets a chart of its own, in points; every interval fits its axis.
    relative, in_points = forest
    assert [r["label"] for r in rows(in_points)] == ["NPS (secondary)"]
    assert rows(relative)[0]["label"] == "Contacts per order (primary)"
    for chart in forest:
        lo, hi = chart["layer"][-1]["encoding"]["x"]["scale"]["domain"]
        for r in rows(chart):
            assert lo < min(r["value"], r["low"])
            assert max(r["value"], r["high"]) < hi


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
    drawn = points(charts.delta_forest(carousel, "sequential"))
    assert {colour for *_, colour in drawn.values()} == {charts.MUTED}
    forest = charts.delta_forest(carousel, "sequential")
    names = {r["verdict"] for chart in forest for r in rows(chart)}
    assert all(name.startswith("untrusted: ") for name in names)


def test_a_long_metric_name_is_cut_on_the_forest_not_by_vega(
    email: ExperimentResult,
) -> None:
    row = email.result("contacts_per_order")
    long_name = "Contacts per order within fourteen days of the first delivery attempt"
    metric = dataclasses.replace(row.metric, name=long_name)
    renamed = dataclasses.replace(
        email,
        results=[dataclasses.replace(row, metric=metric), *email.results[1:]],
    )
    forest = charts.delta_forest(renamed, "sequential")[0]
    label = rows(forest)[0]["label"]
    assert label == "Contacts per order within fourteen days of the… (primary)"
    assert charts.LABEL_CHARS == 48  # 47 characters, less the space, then "…"
    y = forest["layer"][1]["encoding"]["y"]
    assert y["sort"][0] == label
    assert y["axis"]["labelLimit"] == 0  # no limit for Vega to measure against
    assert rows(forest)[1]["label"] == "Contact rate (secondary)"  # short: whole


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
    days = rows(charts.cumulative_lift(history, "contacts_per_order"))
    assert [d["day"] for d in days] == [h.as_of.isoformat() for h in history]
    last = history[-1].result("contacts_per_order")
    assert days[-1]["lift"] == pytest.approx(last.call.rel_delta)
    assert (days[-1]["seq_low"], days[-1]["seq_high"]) == pytest.approx(
        last.sequential.rel_ci
    )
    assert (days[-1]["fixed_low"], days[-1]["fixed_high"]) == pytest.approx(
        last.fixed.rel_ci
    )
    # the sequential band is the wider one: valid at every look
    assert days[-1]["seq_low"] < days[-1]["fixed_low"]


def test_legends_show_areas_as_squares_and_lines_as_strokes_once_each(
    histories: dict[str, list[ExperimentResult]],
) -> None:
    import vl_convert

    history = histories["proactive-shipping-email"]
    lift = charts.cumulative_lift(history, "contacts_per_order")
    bayes = history[-1].result("contacts_per_order")
    post = charts.posterior(bayes.bayesian, bayes.metric.direction)
    bands, _zero, line = lift["layer"]
    area, density, _zero = post["layer"]
    for layer, symbol in [
        *((band, "square") for band in bands["layer"]),
        (line, "stroke"),
        (area, "square"),
        (density, "stroke"),
    ]:
        assert layer["encoding"]["color"]["legend"]["symbolType"] == symbol
    # Rendered: one legend entry each (a scale per kind of mark, not per layer).
    for chart, labels in [
        (lift, (charts.SEQUENTIAL_NAME, charts.FIXED_NAME, "relative lift")),
        (
            post,
            (
                f"P(better) = {bayes.bayesian.prob_beat_control:.1%}",
                "posterior density",
            ),
        ),
    ]:
        svg = vl_convert.vegalite_to_svg(chart | {"width": 600})
        assert [svg.count(f">{label}<") for label in labels] == [1] * len(labels)


def test_the_absolute_toggle_and_nps_change_the_lift_chart(
    histories: dict[str, list[ExperimentResult]],
) -> None:
    history = histories["proactive-shipping-email"]
    absolute = rows(charts.cumulative_lift(history, "contacts_per_order", scale="abs"))
    last = history[-1].result("contacts_per_order")
    assert absolute[-1]["lift"] == pytest.approx(last.call.abs_delta)
    assert (absolute[-1]["seq_low"], absolute[-1]["seq_high"]) == pytest.approx(
        last.sequential.abs_ci
    )
    # NPS is in points whatever the toggle: its axis spans points, not ±300%.
    nps = history[-1].result("nps")
    for scale in ("rel", "abs"):
        chart = charts.cumulative_lift(history, "nps", scale=scale)
        assert rows(chart)[-1]["lift"] == pytest.approx(nps.call.abs_delta)
        line = chart["layer"][-1]["encoding"]["y"]
        assert line["title"] == "points vs control"
        assert "axis" not in line  # plain numbers, no % format


def test_arm_values_over_time_has_one_line_per_arm(
    histories: dict[str, list[ExperimentResult]],
) -> None:
    history = histories["proactive-shipping-email"]
    chart = charts.arm_values_over_time(history, "nps")
    assert chart["encoding"]["color"]["scale"]["domain"] == [
        "control",
        "proactive_email",
    ]
    last = {r["arm"]: r["value"] for r in rows(chart)[-2:]}
    nps = history[-1].result("nps")
    assert last["control"] == pytest.approx(nps.control.value)
    assert last["proactive_email"] == pytest.approx(nps.treatment.value)
    assert len(rows(chart)) == 2 * len(history)


@pytest.mark.parametrize("direction", ["increase", "decrease"])
def test_posterior_shades_the_probability_of_being_better(
    email: ExperimentResult, direction: str
) -> None:
    bayes = email.result("contact_rate").bayesian
    grid = rows(charts.posterior(bayes, direction))
    shaded = [(r["lift"], r["good"]) for r in grid if r["good"] is not None]
    area = float(np.trapezoid([y for _, y in shaded], [x for x, _ in shaded]))
    mass_up = sps.norm.sf(0, bayes.posterior_mean, bayes.posterior_sd)
    expected = mass_up if direction == "increase" else 1 - mass_up
    assert area == pytest.approx(expected, abs=0.01)
    densities = [r["density"] for r in grid]
    assert densities == pytest.approx(
        sps.norm.pdf(
            [r["lift"] for r in grid], bayes.posterior_mean, bayes.posterior_sd
        )
    )


def test_posterior_without_a_spread_says_so(email: ExperimentResult) -> None:
    bayes = email.result("contact_rate").bayesian
    unknown = dataclasses.replace(bayes, posterior_sd=float("nan"))
    assert rows(charts.posterior(unknown, "increase")) == [{"text": "not enough data"}]


def test_nps_split_shares_add_up_per_arm(email: ExperimentResult) -> None:
    split = rows(charts.nps_split(email))
    assert [r["part"] for r in split[:3]] == [
        "detractors (0-6)",
        "passives (7-8)",
        "promoters (9-10)",
    ]
    for arm in ("control", "proactive_email"):
        parts = [r for r in split if r["arm"] == arm]
        assert sum(r["share"] for r in parts) == pytest.approx(1.0)
        assert parts[-1]["end"] == pytest.approx(1.0)  # bars stack to 100%
    control = email.result("nps").control.stats
    assert split[2]["share"] == pytest.approx(control.promoters / control.n)
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
    chart = charts.exposures_per_day(frame, "x")
    assert chart["encoding"]["color"]["scale"]["domain"] == ["a", "b"]
    by_arm = {
        arm: sum(r["users"] for r in rows(chart) if r["arm"] == arm) for arm in "ab"
    }
    assert by_arm == {"a": 15, "b": 16}
    assert {r["day"] for r in rows(chart)} == {"2026-09-01", "2026-09-02"}


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
    assert charts.badge_colour(contacts["verdict"]) == "green"
    assert bayes.filter(pl.col("metric") == "NPS")["delta"][0].endswith(" pts")


def test_scorecard_table_is_the_frame_as_markdown_its_verdicts_coloured() -> None:
    frame = pl.DataFrame(
        {
            "role": ["Primary", "Secondary"],
            "metric": ["Contacts | order", "NPS"],
            "variant": ["email", "email"],
            "control": ["0.46", "34.3"],
            "treatment": ["0.41", "38.7"],
            "verdict": ["● win", "○ inconclusive"],
        }
    )
    assert charts.scorecard_table(frame).splitlines() == [
        "| role | metric | control | email | verdict |",
        "| --- | --- | --- | --- | --- |",
        "| Primary | Contacts \\| order | 0.46 | 0.41 | :green[● win] |",
        "| Secondary | NPS | 34.3 | 38.7 | :gray[○ inconclusive] |",
    ]
    two = pl.concat([frame, frame.with_columns(variant=pl.lit("sms"))])
    lines = charts.scorecard_table(two).splitlines()
    assert lines[0] == "| role | metric | variant | control | treatment | verdict |"
    assert [line.split(" | ")[2] for line in lines[2:]] == ["email"] * 2 + ["sms"] * 2
    directed = frame.with_columns(pl.Series("good direction", ["↓ lower", "↑ higher"]))
    assert charts.scorecard_table(directed).splitlines() == [  # arrows, no column
        "| role | metric | control | email | verdict |",
        "| --- | --- | --- | --- | --- |",
        "| Primary | Contacts \\| order ↓ | 0.46 | 0.41 | :green[● win] |",
        "| Secondary | NPS ↑ | 34.3 | 38.7 | :gray[○ inconclusive] |",
    ]
    assert charts.badge_colour("● loss") == "red"
    assert charts.badge_colour("◌ untrusted (win)") == "gray"


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
    forest = charts.delta_forest(email, "fixed")[0]
    page = charts.figures_html([forest, charts.nps_split(email)], "t")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script src=" not in page  # Vega is inlined, not fetched
    assert "cdn." not in page
    specs = json.loads(page[page.rindex("<script>") + 8 : page.rindex(".forEach(")])
    assert [s["title"] for s in specs] == [forest["title"], "NPS answers per arm"]
    assert specs[1]["width"] == charts.EXPORT_WIDTH  # "container" means nothing there
    assert specs[1]["data"] == charts.nps_split(email)["data"]


def test_an_export_leaves_the_servers_other_threads_running() -> None:
    # vl-convert keeps the GIL for a whole render: in the server's process every
    # session would stall until it ends. Rendered in the export process, the
    # caller's other threads go on meanwhile.
    points = [{"x": i, "y": (i * 7919) % 1000} for i in range(5000)]
    chart = {
        "data": {"values": points},
        "mark": "point",
        "encoding": {
            "x": {"field": "x", "type": "quantitative"},
            "y": {"field": "y", "type": "quantitative"},
        },
    }
    charts.figure_png(chart)  # the export process is up and has rendered once
    ticks: list[float] = []
    done = threading.Event()

    def tick() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    ticker = threading.Thread(target=tick)
    ticker.start()
    start = time.perf_counter()
    png = charts.figure_png(chart, scale=3)
    end = time.perf_counter()
    done.set()
    ticker.join()
    assert png.startswith(b"\x89PNG")
    moments = [start, *(t for t in ticks if start < t < end), end]
    longest = max(b - a for a, b in itertools.pairwise(moments))
    assert longest < (end - start) / 2  # in-process: one stall as long as the render


def test_png_export_renders_at_the_asked_width(email: ExperimentResult) -> None:
    def size(png: bytes) -> tuple[int, int]:
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        # IHDR: width and height as big-endian integers
        return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")

    chart = charts.nps_split(email)
    narrow = size(charts.figure_png(chart, width=600, scale=1))
    wide = size(charts.figure_png(chart, width=800, scale=1))
    sharp = size(charts.figure_png(chart, width=600, scale=2))
    assert wide[0] - narrow[0] == 200  # the axes and labels keep their room
    assert wide[1] == narrow[1]
    assert sharp == (2 * narrow[0], 2 * narrow[1])


def test_a_picture_is_as_wide_as_asked_and_holds_its_spec(
    email: ExperimentResult,
) -> None:
    forest = charts.delta_forest(email, "fixed")[0]  # long labels beside the plot
    tricky = {**forest, "title": 'Lift < 0 & "</metadata><script>alert(1)</script>'}
    for chart, width in [(forest, 980), (tricky, 600)]:
        svg = charts.figure_svg(chart, width=width)
        head = svg[: svg.index(">")]
        assert f'width="{width}"' in head
        assert f'viewBox="0 0 {width} ' in head
        spec = svg.split(charts.SPEC_METADATA, 1)[1].split("</metadata>", 1)[0]
        assert json.loads(html.unescape(spec)) == chart
        assert svg.count("</metadata>") == 1
        assert "<script" not in svg
        assert "http://" not in svg.replace('"http://www.w3.org/', "")
        fonts = set(re.findall(r'font-family="([^"]*)"', svg))
        assert fonts == {charts.CONFIG["font"]}  # the font vl-convert measured
