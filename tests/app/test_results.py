"""The results page: verdicts, colours, the method switch and the deep link."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from cxlab import charts
from cxlab.analysis import ExperimentResult
from tests.app.conftest import drawn, scorecard_shown

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "results.py")
Results = dict[str, ExperimentResult]
# the charts' titles (cxlab.charts), by which the page's charts are found
FOREST = "Estimates vs control"
POINTS = "for metrics read in points"  # the forest's second chart
LIFT = "Cumulative "
NPS_SPLIT = "NPS answers per arm"
REASONS = "Why customers contacted us"
SURVIVAL = "share still unresolved"
NOVELTY = "Does the effect fade?"


def open_results(experiment_id: str, timeout: int) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=timeout)
    at.query_params["experiment"] = experiment_id
    at.run()
    assert not at.exception
    return at


@pytest.fixture(scope="module")
def email(timeout: int, sample_log: Path) -> AppTest:
    return open_results("proactive-shipping-email", timeout)


def scorecard(at: AppTest):
    return scorecard_shown(at).set_index("metric")


def titles(at: AppTest) -> list[str]:
    return [spec["title"] for spec in drawn(at)]


def figure(at: AppTest, title: str) -> dict[str, Any]:
    """The one chart drawn whose title contains ``title``.

    ``st.image`` has no key: a chart is known by its title (its picture's text).
    """
    (spec,) = [s for s in drawn(at) if title in s["title"]]
    return spec


def forest_rows(at: AppTest) -> list[dict[str, Any]]:
    """The scorecard's rows as the forest draws them: relative lifts, then points."""
    relative = rows(figure(at, FOREST))
    return relative + [r for s in drawn(at) if POINTS in s["title"] for r in rows(s)]


def rows(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return spec["data"]["values"]


def colours(spec: dict[str, Any]) -> dict[str, str]:
    """The colour each legend name is drawn in: every colour scale's domain → range."""
    found: dict[str, str] = {}

    def walk(node: object) -> None:
        if isinstance(node, dict):
            colour = node.get("color")
            if isinstance(colour, dict) and "domain" in colour.get("scale", {}):
                scale = colour["scale"]
                found.update(zip(scale["domain"], scale["range"], strict=True))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    return found


def open_view(at: AppTest, view: str) -> None:
    """Click a tab below the metric in depth (a tab's click reruns the page)."""
    at.session_state["results_view"] = view
    at.run()
    assert not at.exception


def open_box(at: AppTest, key: str) -> None:
    """Open an expander drawn only while open (its click reruns the page)."""
    at.session_state[key] = True
    at.run()
    assert not at.exception


def test_deep_link_opens_the_experiment(email: AppTest) -> None:
    assert email.title[0].value == "Proactive shipping e-mail"
    assert email.selectbox(key="results_experiment").value == "proactive-shipping-email"


def test_shipping_email_is_recommended_to_ship_with_its_reason(
    email: AppTest, engine_results: Results
) -> None:
    reason = engine_results["proactive-shipping-email"].recommendation.reason
    assert [s.value for s in email.success] == [f"**Recommendation: Ship.** {reason}"]
    assert not email.error  # a healthy experiment: no red banner


def test_contacts_per_order_is_a_win_with_a_negative_lift_coloured_good(
    email: AppTest, engine_results: Results
) -> None:
    expected = engine_results["proactive-shipping-email"].result("contacts_per_order")
    row = scorecard(email).loc["Contacts per order"]
    assert row["role"] == "Primary"
    assert row["verdict"] == "● win"
    assert row["good direction"] == "↓"  # fewer contacts are better
    assert scorecard(email).loc["Conversion", "good direction"] == "↑"
    assert row["delta"] == f"{expected.call.rel_delta * 100:+.1f}%".replace("-", "−")
    assert row["delta"].startswith("−")
    forest = figure(email, FOREST)
    wins = [
        r for r in forest_rows(email) if r["verdict"] == "significant, good direction"
    ]
    assert {r["label"] for r in wins} == {
        f"{r.metric.label} ({r.role})"
        for r in engine_results["proactive-shipping-email"].results
        if r.call.verdict == "win"
    }
    assert colours(forest)["significant, good direction"] == charts.GOOD
    (drawn_row,) = [r for r in wins if r["label"] == "Contacts per order (primary)"]
    assert drawn_row["value"] == pytest.approx(expected.call.rel_delta)


def test_scorecard_lists_primary_then_secondary_then_guardrails(email: AppTest) -> None:
    roles = list(scorecard(email)["role"])
    assert roles == sorted(roles, key=["Primary", "Secondary", "Guardrail"].index)
    assert roles[0] == "Primary"
    assert roles[-1] == "Guardrail"


def test_switching_the_method_changes_the_shown_column(
    timeout: int, engine_results: Results
) -> None:
    at = open_results("proactive-shipping-email", timeout)
    before = scorecard(at)
    seq_column = "p (always-valid, adjusted)"
    assert seq_column in before.columns  # the config's decision: sequential
    at.segmented_control(key="results_method_proactive-shipping-email").set_value(
        "bayesian"
    ).run()
    after = scorecard(at)
    assert "P(better)" in after.columns
    assert seq_column not in after.columns
    expected = engine_results["proactive-shipping-email"].result("contacts_per_order")
    prob = after.loc["Contacts per order", "P(better)"]
    assert prob == f"{expected.bayesian.prob_beat_control * 100:.1f}%"
    assert list(before["interval"]) != list(after["interval"])
    assert after.loc["Contacts per order", "interval"] == charts.ci_text(
        expected, expected.calls["bayesian"], "rel"
    )
    assert any("what-if" in c.value for c in at.caption)


def test_absolute_toggle_shows_deltas_in_the_metrics_units(timeout: int) -> None:
    at = open_results("proactive-shipping-email", timeout)
    at.segmented_control(key="results_scale").set_value("abs").run()
    table = scorecard(at)
    assert table.loc["Contact rate", "delta"].endswith(" pp")
    assert table.loc["NPS", "delta"].endswith(" pts")
    assert table.loc["Revenue per user", "delta"].lstrip("+−").startswith("€")


def test_sample_ratio_mismatch_shows_a_red_banner_and_greys_verdicts(
    timeout: int,
) -> None:
    at = open_results("recommendations-carousel", timeout)
    assert any("Sample-ratio mismatch" in e.value for e in at.error)
    assert all(v.startswith("◌ untrusted") for v in scorecard(at)["verdict"])
    forest = figure(at, FOREST)
    assert forest_rows(at)
    assert all(r["verdict"].startswith("untrusted: ") for r in forest_rows(at))
    assert {r["verdict"] for r in rows(forest)} <= set(colours(forest))
    assert set(colours(forest).values()) == {charts.MUTED}
    assert any("Review" in w.value for w in at.warning)


def test_nps_tab_shows_the_split_and_response_rate_per_arm(
    timeout: int, engine_results: Results
) -> None:
    at = open_results("proactive-shipping-email", timeout)
    at.selectbox(key="results_metric_proactive-shipping-email").select("nps").run()
    # only the open tab is drawn: the split waits for its tab
    assert any(t.startswith(LIFT) for t in titles(at))
    assert NPS_SPLIT not in titles(at)
    open_view(at, "NPS answers")
    assert not any(t.startswith(LIFT) for t in titles(at))
    result = engine_results["proactive-shipping-email"]
    nps = result.result("nps")
    frame = next(d.value for d in at.dataframe if "response rate" in d.value.columns)
    control = frame.set_index("arm").loc["control"]
    assert control["responders"] == nps.control.n
    assert control["response rate"] == pytest.approx(
        nps.control.n / result.users["control"]
    )
    split = figure(at, NPS_SPLIT)
    parts = ["detractors (0-6)", "passives (7-8)", "promoters (9-10)"]
    assert list(colours(split)) == parts
    for arm, stats in (
        ("control", nps.control.stats),
        ("proactive_email", nps.treatment.stats),
    ):
        bars = [r for r in rows(split) if r["arm"] == arm]
        assert [r["part"] for r in bars] == parts
        counts = (stats.detractors, stats.passives, stats.promoters)
        assert [r["share"] for r in bars] == pytest.approx(
            [c / stats.n for c in counts]
        )
        assert bars[0]["start"] == 0.0
        assert bars[-1]["end"] == pytest.approx(1.0)
    # a metric without that tab: the first tab opens, nothing fails
    at.selectbox(key="results_metric_proactive-shipping-email").select(
        "contacts_per_order"
    ).run()
    assert not at.exception
    assert [t.label for t in at.tabs] == [
        "Lift over time",
        "Per arm",
        "Posterior",
        NOVELTY,
        "Segments",
    ]
    assert rows(figure(at, LIFT))


def test_choosing_another_experiment_updates_the_shareable_url(timeout: int) -> None:
    at = open_results("proactive-shipping-email", timeout)
    at.selectbox(key="results_experiment").select("click-to-call").run()
    assert (
        at.query_params["experiment"] == ["click-to-call"]
        or at.query_params["experiment"] == "click-to-call"
    )
    assert at.title[0].value == "Click-to-call button in the app"


def test_segments_carry_a_multiple_comparisons_note_and_downloads_exist(
    timeout: int,
) -> None:
    at = open_results("proactive-shipping-email", timeout)
    assert not any("segment tests" in c.value for c in at.caption)  # tab closed
    assert not [s for s in drawn(at) if "Lift by segment" in s["title"]]
    open_view(at, "Segments")
    assert any("segment tests" in c.value for c in at.caption)
    (segment_rows,) = [rows(s) for s in drawn(at) if "Lift by segment" in s["title"]]
    table = next(d.value for d in at.dataframe if "segment" in d.value.columns)
    assert len(segment_rows) == len(table) > 1
    assert not at.get("download_button")  # drawn when their expander is opened
    open_box(at, "results_downloads")
    buttons = at.get("download_button")
    labels = {b.label for b in buttons}
    assert {"Results (CSV)", "Results (JSON)", "Charts (HTML)", "Chart (PNG)"} <= labels
    # a download reruns nothing: a rerun's start could drop the file's answer
    assert all(b.proto.ignore_rerun for b in buttons)


def test_exposures_per_day_are_drawn_when_their_box_is_opened(timeout: int) -> None:
    at = open_results("free-shipping-threshold", timeout)
    assert not [t for t in titles(at) if t == "New users per day"]
    open_box(at, "results_exposures")
    arms = {r["arm"] for r in rows(figure(at, "New users per day"))}
    assert arms == {"control", "threshold_25", "threshold_35"}


def test_a_treatment_is_chosen_only_when_there_are_several(timeout: int) -> None:
    email = open_results("proactive-shipping-email", timeout)
    assert [b.label for b in email.selectbox] == ["Experiment", "Metric"]
    three = open_results("free-shipping-threshold", timeout)
    assert three.selectbox(key="results_variant_free-shipping-threshold").options == [
        "threshold_25",
        "threshold_35",
    ]


@pytest.mark.parametrize("metric_id", ["contact_rate", "nps"])
def test_scorecard_sentence_and_charts_show_one_delta_and_one_interval(
    timeout: int, engine_results: Results, metric_id: str
) -> None:
    # The contradictions: the scorecard, the sentence under it, the forest
    # and the lift chart must show the same estimate and interval (NPS in points).
    at = open_results("proactive-shipping-email", timeout)
    at.selectbox(key="results_metric_proactive-shipping-email").select(metric_id).run()
    row = engine_results["proactive-shipping-email"].result(metric_id)
    call = row.call
    shown = scorecard(at).loc[row.metric.label]
    lo, hi = (v.removesuffix(" pts") for v in shown["interval"].strip("[]").split(", "))
    sentence = next(m.value for m in at.markdown if row.summary in m.value)
    assert f"{shown['level']} {lo} to {hi})" in sentence
    points = metric_id == "nps"
    estimate = call.abs_delta if points else call.rel_delta
    ci = call.abs_ci if points else call.rel_ci
    assert shown["delta"] == charts.format_delta(row.metric, estimate, "rel")
    (drawn_row,) = [
        r for r in forest_rows(at) if r["label"] == f"{row.metric.label} ({row.role})"
    ]
    assert drawn_row["panel"] == ("points" if points else "relative lift")
    assert drawn_row["value"] == pytest.approx(estimate)
    assert (drawn_row["low"], drawn_row["high"]) == pytest.approx(ci)
    last = rows(figure(at, LIFT))[-1]
    assert last["lift"] == pytest.approx(estimate)
    assert (last["seq_low"], last["seq_high"]) == pytest.approx(
        row.calls["sequential"].abs_ci if points else row.calls["sequential"].rel_ci
    )


def test_contact_reasons_tab_draws_the_calls_intervals_sorted_by_effect(
    timeout: int, engine_results: Results
) -> None:
    at = open_results("proactive-shipping-email", timeout)
    key = "results_metric_proactive-shipping-email"
    at.selectbox(key=key).select("contact_reasons").run()
    open_view(at, "Contact reasons")
    result = engine_results["proactive-shipping-email"]
    reasons = [r for r in result.results if r.metric.id == "contact_reasons"]
    chart = figure(at, REASONS)
    method = result.experiment.decision
    # sorted by the call's relative effect: the biggest cut ("where is my order") on
    # top. Vega-Lite draws a nominal y axis in its explicit sort order, top first.
    order = sorted(reasons, key=lambda r: r.calls[method].rel_delta)
    assert order[0].category == "where is my order"
    (axis,) = {json.dumps(layer["encoding"]["y"]["sort"]) for layer in chart["layer"]}
    assert json.loads(axis) == [r.category for r in order]
    drawn_rows = {r["reason"]: r for r in rows(chart)}
    assert set(drawn_rows) == {r.category for r in reasons}
    top = order[0]
    call = top.calls[method]
    assert drawn_rows["where is my order"]["control"] == pytest.approx(
        top.control.value
    )
    assert drawn_rows["where is my order"]["value"] == pytest.approx(
        top.treatment.value
    )
    assert (
        drawn_rows["where is my order"]["low"],
        drawn_rows["where is my order"]["high"],
    ) == pytest.approx([top.control.value + bound for bound in call.abs_ci])
    assert "χ² =" in " ".join(c.value for c in at.caption)


def test_time_to_resolution_tab_draws_two_curves_and_the_share_still_open(
    timeout: int, engine_results: Results
) -> None:
    at = open_results("help-centre-redesign", timeout)
    key = "results_metric_help-centre-redesign"
    at.selectbox(key=key).select("time_to_resolution").run()
    open_view(at, "Time to event")
    row = engine_results["help-centre-redesign"].result("time_to_resolution")
    chart = figure(at, SURVIVAL)
    arms = list(dict.fromkeys(r["arm"] for r in rows(chart)))
    assert [name.split(" ")[0] for name in arms] == ["control", "new_help_centre"]
    assert list(colours(chart)) == arms
    control = [r for r in rows(chart) if r["arm"] == arms[0]]
    assert control[0]["share"] == 1.0
    assert control[0]["hours"] == 0.0
    assert control[-1]["hours"] == 72.0
    share = row.control.stats.censored / row.control.n
    assert f"control {share:.1%}" in " ".join(c.value for c in at.caption)


def test_the_nps_lift_by_exposure_age_is_drawn_in_points_with_its_users(
    timeout: int, engine_results: Results
) -> None:
    at = open_results("proactive-shipping-email", timeout)
    at.selectbox(key="results_metric_proactive-shipping-email").select("nps").run()
    assert not at.exception
    check = engine_results["proactive-shipping-email"].novelty_check(
        "nps", "proactive_email"
    )
    assert check is not None
    # day 1 has fewer than 100 responders per arm: drawn, but not quoted
    assert check.pattern == "too little data"
    assert f"*{NOVELTY}* {check.sentence}" in [m.value for m in at.markdown]
    assert not [s for s in drawn(at) if NOVELTY in s["title"]]  # its tab is closed
    open_view(at, NOVELTY)
    points = rows(figure(at, NOVELTY))
    assert [p["bucket"] for p in points] == [b.label for b in check.buckets]
    # NPS in points even on the relative scale, each bucket's own interval
    assert [p["value"] for p in points] == pytest.approx(
        [b.fixed.abs_delta for b in check.buckets]
    )
    first = check.buckets[0]
    assert (points[0]["low"], points[0]["high"]) == pytest.approx(first.fixed.abs_ci)
    assert (
        points[0]["users"]
        == f"control {first.control_n:,} · proactive_email {first.treatment_n:,}"
    )
    assert any("no multiplicity correction" in c.value for c in at.caption)


def test_the_novelty_check_follows_the_delta_scale_and_says_where_it_does_not_apply(
    timeout: int, engine_results: Results
) -> None:
    at = open_results("proactive-shipping-email", timeout)
    check = engine_results["proactive-shipping-email"].novelty_check(
        "contacts_per_order", "proactive_email"
    )
    assert check is not None
    open_view(at, NOVELTY)
    assert [p["value"] for p in rows(figure(at, NOVELTY))] == pytest.approx(
        [b.fixed.rel_delta for b in check.buckets]
    )
    at.segmented_control(key="results_scale").set_value("abs").run()
    assert [p["value"] for p in rows(figure(at, NOVELTY))] == pytest.approx(
        [b.fixed.abs_delta for b in check.buckets]
    )
    key = "results_metric_proactive-shipping-email"
    at.selectbox(key=key).select("contact_reasons").run()
    assert any("does not apply to categorical" in m.value for m in at.markdown)


def test_a_capped_mean_states_its_cap_beside_the_metric(lab, timeout: int) -> None:
    lab.catalog_path.write_text(
        lab.catalog_path.read_text()
        + "capped_revenue:\n  type: mean\n  event: order\n  cap: {percentile: 0.9}\n"
        "  direction: increase\n"
    )
    e = lab.event
    rows = []
    for arm, prefix, values in (
        ("control", "a", [10, 20, 30, 40, 1000]),
        ("treatment", "b", [5, 15, 25, 35, 45]),
    ):
        for i, value in enumerate(values):
            rows.append(e("2026-10-01T09:00Z", f"{prefix}{i}", "exposure", arm))
            rows.append(e("2026-10-02T09:00Z", f"{prefix}{i}", "order", value=value))
    path = lab.log(rows)
    lab.experiment(primary_metric="capped_revenue")
    at = AppTest.from_file(PAGE, default_timeout=timeout)
    at.session_state["events_path"] = str(path)
    at.session_state["experiments_dir"] = str(lab.experiments_dir)
    at.query_params["experiment"] = "exp"
    at.run()
    assert not at.exception
    # numpy's linear 90th percentile of the ten values: 45 + 0.1 · 955 = 140.5
    assert any(
        c.value.startswith("Each user's value is capped at 140.5: the 90th percentile")
        for c in at.caption
    )
