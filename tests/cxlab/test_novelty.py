"""The novelty check: per exposure-age bucket, sums from the one scan and lifts."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest
from statsmodels.stats import proportion as sm_proportion

from cxlab.analysis import analyze
from cxlab.novelty import novelty_checks
from cxlab.summaries import at_day

OCTOBER = {"start": "2026-10-01", "end": "2026-10-31"}
SPLIT = ["revenue", "conversion_2d", "nps", "contact_reasons"]


def _at(start: str, hours: float) -> str:
    moment = dt.datetime.fromisoformat(start) + dt.timedelta(hours=hours)
    return f"{moment:%Y-%m-%dT%H:%M}Z"


def _small_log(e) -> list[dict]:
    """Four users at known exposure ages, their orders in known buckets."""
    u1, u2, u3, u4 = (
        "2026-10-01T10:00",
        "2026-10-02T00:00",
        "2026-10-20T12:00",
        ("2026-10-03T08:00"),
    )
    return [
        # u1, control: an order in each bucket (hours 2, 30, 200, 400)
        e(_at(u1, 0), "u1", "exposure", "control"),
        e(_at(u1, 2), "u1", "order", value=10),
        e(_at(u1, 30), "u1", "order", value=5),
        e(_at(u1, 200), "u1", "order", value=3),
        e(_at(u1, 400), "u1", "order", value=1),
        # u2, treatment: two orders in day 1 (one the next calendar day), one at
        # exactly 24 h (days 2–7 start there)
        e(_at(u2, 0), "u2", "exposure", "treatment"),
        e(_at(u2, 1), "u2", "order", value=4),
        e(_at(u2, 23.99), "u2", "order", value=6),
        e(_at(u2, 24), "u2", "order", value=8),
        # u3, treatment: exposed late, no orders, has reached days 2–7 by 10-25
        e(_at(u3, 0), "u3", "exposure", "treatment"),
        e(_at(u3, 1), "u3", "contact", reason="delivery"),
        # u4, control: an order, then meets the treatment on 10-05: out from then
        e(_at(u4, 0), "u4", "exposure", "control"),
        e(_at(u4, 1), "u4", "order", value=50),
        e(_at(u4, 50), "u4", "exposure", "treatment"),
    ]


def _totals(novelty: pl.DataFrame, metric: str, day: dt.date) -> dict:
    """(variant, bucket) → (users, Σx) summed up to ``day``."""
    rows = (
        novelty.filter((pl.col("metric") == metric) & (pl.col("day") <= day))
        .group_by("variant", "bucket")
        .agg(pl.col("users", "sum_x").sum())
        .sort("variant", "bucket")
    )
    return {(v, b): (n, x) for v, b, n, x in rows.iter_rows()}


def test_bucket_sums_count_each_users_events_by_hours_since_first_exposure(
    lab,
) -> None:
    s = lab.summarize(
        _small_log(lab.event),
        as_of=dt.date(2026, 10, 25),
        **OCTOBER,
        secondary_metrics=SPLIT,
    )
    # Hand-counted. Day 1: control u1 (10; u4 left on 10-05), treatment u2
    # (4 + 6) and u3 (0). Days 2–7: u1 (5), u2 (8), u3 (reached 10-21, 0).
    # Days 8–14: u1 (3, from 10-08), u2 (0, from 10-09); u3 reaches it on 10-27.
    # Day 15+: u1 (1, from 10-15), u2 (0, from 10-16).
    assert _totals(s.novelty, "revenue", dt.date(2026, 10, 25)) == {
        ("control", 0): (1, 10.0),
        ("control", 1): (1, 5.0),
        ("control", 2): (1, 3.0),
        ("control", 3): (1, 1.0),
        ("treatment", 0): (2, 10.0),
        ("treatment", 1): (2, 8.0),
        ("treatment", 2): (1, 0.0),
        ("treatment", 3): (1, 0.0),
    }
    # Before u4 met the treatment (10-04): u4 is in control's day 1 with 50.
    assert _totals(s.novelty, "revenue", dt.date(2026, 10, 4))[("control", 0)] == (
        2,
        60.0,
    )
    # window_days 2 (48 h): only day 1 and days 2–7 exist, u1's hour-30 order counts
    assert set(s.novelty.filter(pl.col("metric") == "conversion_2d")["bucket"]) == {
        0,
        1,
    }
    assert _totals(s.novelty, "conversion_2d", dt.date(2026, 10, 25))[
        ("control", 1)
    ] == (1, 1.0)
    # a categorical metric is not split
    assert s.novelty.filter(pl.col("metric") == "contact_reasons").height == 0


def test_the_checks_arms_are_the_buckets_users_and_values(lab) -> None:
    s = lab.summarize(
        _small_log(lab.event),
        as_of=dt.date(2026, 10, 25),
        **OCTOBER,
        secondary_metrics=SPLIT,
    )
    exp, catalog = lab.load()
    checks = {c.metric.id: c for c in novelty_checks(exp, catalog, s, s.as_of["exp"])}
    revenue = checks["revenue"]
    assert [b.label for b in revenue.buckets] == [
        "day 1",
        "days 2–7",
        "days 8–14",
        "day 15+",
    ]
    assert [(b.control_n, b.treatment_n) for b in revenue.buckets] == [
        (1, 2),
        (1, 2),
        (1, 1),
        (1, 1),
    ]
    assert [(b.control_value, b.treatment_value) for b in revenue.buckets] == [
        (10.0, 5.0),
        (5.0, 4.0),
        (3.0, 0.0),
        (1.0, 0.0),
    ]
    # one control user per bucket: no interval anywhere
    assert revenue.pattern == "too little data"
    assert checks["contact_reasons"].pattern == "not applicable"
    assert checks["contact_reasons"].buckets == ()
    assert "categorical" in checks["contact_reasons"].sentence


def _fading_log(e, users: int = 200) -> list[dict]:
    """Per arm ``users`` users exposed on 10-01; converting on day 1: control 20%,
    treatment 60%; from day 15: both 30% (user i converts when i % 10 < 10 p)."""
    rows = []
    for arm, day_one in (("control", 2), ("treatment", 6)):
        for i in range(users):
            user = f"{arm}{i}"
            start = f"2026-10-01T{i % 24:02d}:{i % 60:02d}"
            rows.append(e(_at(start, 0), user, "exposure", arm))
            if i % 10 < day_one:
                rows.append(e(_at(start, 3), user, "order", value=1))
            if i % 10 < 3:
                rows.append(e(_at(start, 400), user, "order", value=1))
    return rows


def test_a_lift_that_fades_after_day_one_is_called_so_with_statsmodels_intervals(
    lab,
) -> None:
    s = lab.summarize(_fading_log(lab.event), **OCTOBER, primary_metric="conversion")
    exp, catalog = lab.load()
    result = analyze(exp, catalog, s)
    (check,) = result.novelty
    day1, week, fortnight, later = check.buckets
    assert (day1.control_n, day1.treatment_n) == (200, 200)
    assert (day1.control_value, day1.treatment_value) == (0.2, 0.6)
    assert (week.control_value, week.treatment_value) == (0.0, 0.0)
    assert (later.control_value, later.treatment_value) == (0.3, 0.3)
    # statsmodels confint_proportions_2indep(120, 200, 40, 200, method="wald",
    # compare="diff", alpha=0.05): the day-1 difference's interval
    low, high = sm_proportion.confint_proportions_2indep(
        120, 200, 40, 200, method="wald", compare="diff", alpha=0.05
    )
    assert day1.fixed.abs_ci == pytest.approx((low, high), rel=1e-10)
    assert day1.fixed.rel_delta == pytest.approx(2.0)
    assert later.fixed.rel_delta == pytest.approx(0.0)
    # the delta method's relative interval: Deng, Knoblich & Lu (2018)
    v_c, v_t = 0.2 * 0.8 / 200, 0.6 * 0.4 / 200
    rel_se = math.sqrt(v_t / 0.2**2 + 0.6**2 * v_c / 0.2**4)
    assert day1.fixed.rel_se == pytest.approx(rel_se, rel=1e-12)
    assert check.pattern == "fades"
    assert check.sentence == "The effect fades: +200.0% on day 1, +0.0% from day 15."
    assert not math.isfinite(fortnight.fixed.rel_ci[0])  # zero control mean


def test_an_effect_steady_across_ages_shows_no_sign_of_novelty(lab) -> None:
    e = lab.event
    rows = []
    for arm, rate in (("control", 2), ("treatment", 4)):
        for i in range(200):
            user, start = f"{arm}{i}", "2026-10-01T00:00"
            rows.append(e(_at(start, i / 10), user, "exposure", arm))
            if i % 10 < rate:
                rows += [
                    e(_at(start, i / 10 + hours), user, "order", value=1)
                    for hours in (3, 100, 400)
                ]
    s = lab.summarize(rows, **OCTOBER)
    exp, catalog = lab.load()
    (check,) = analyze(exp, catalog, s).novelty
    assert check.pattern == "steady"
    assert check.sentence == (
        "No sign of novelty: +100.0% on day 1, +100.0% from day 15; the intervals "
        "overlap."
    )


def test_nps_buckets_count_responders_and_read_in_points(lab) -> None:
    e = lab.event
    rows = []
    for arm, promoters in (("control", 3), ("treatment", 6)):
        for i in range(100):
            user, start = f"{arm}{i}", "2026-10-01T06:00"
            rows.append(e(_at(start, 0), user, "exposure", arm))
            if i % 2 == 0:  # half answer on day 1; their last answer counts
                rows.append(e(_at(start, 1), user, "nps_response", value=0))
                score = 10 if i % 10 < promoters else 5
                rows.append(e(_at(start, 2), user, "nps_response", value=score))
            elif i % 4 == 1:  # a quarter answer once in days 8–14
                rows.append(e(_at(start, 200), user, "nps_response", value=10))
    s = lab.summarize(rows, **OCTOBER, primary_metric="nps")
    exp, catalog = lab.load()
    (check,) = analyze(exp, catalog, s).novelty
    by_label = {b.label: b for b in check.buckets}
    day1 = by_label["day 1"]
    # 50 responders per arm on day 1 (the even i): control promoters i % 10 in
    # {0, 2}: 40%, detractors 60% (NPS −20); treatment {0, 2, 4}: 60% / 40%
    # (NPS +20): +40 points
    assert (day1.control_n, day1.treatment_n) == (50, 50)
    assert (day1.control_value, day1.treatment_value) == pytest.approx((-20.0, 20.0))
    assert day1.fixed.abs_delta == pytest.approx(40.0)
    assert by_label["days 2–7"].control_n == 0  # no answers there
    assert (by_label["days 8–14"].control_n, by_label["days 8–14"].control_value) == (
        25,
        100.0,
    )
    # fewer than 100 responders per arm in every bucket: nothing to quote
    assert check.pattern == "too little data"


def test_an_earlier_as_of_day_cut_from_the_one_scan_gives_the_same_check(
    lab,
) -> None:
    rows = _fading_log(lab.event, users=60)
    full = lab.summarize(rows, start="2026-10-01", end=None)
    exp, catalog = lab.load()
    for day in (dt.date(2026, 10, 1), dt.date(2026, 10, 9), dt.date(2026, 10, 20)):
        fresh = lab.summarize(rows, start="2026-10-01", end=None, as_of=day)
        cut = at_day(full, day, catalog)
        assert cut.novelty.equals(fresh.novelty), day
        # repr: NaN fields (no interval yet) compare equal as text
        assert repr(novelty_checks(exp, catalog, cut, day)) == repr(
            novelty_checks(exp, catalog, fresh, day)
        )
    # an open experiment keeps the entries after the last day of data (10-17):
    # 10-20 counts users who reached day 15+ on 10-15..10-16, 10-31 the same
    late = _totals(
        at_day(full, dt.date(2026, 11, 1), catalog).novelty,
        "conversion",
        dt.date(2026, 11, 1),
    )
    assert late[("control", 3)] == (60, 18.0)


def test_the_buckets_come_from_the_one_scan_of_the_log(lab, monkeypatch) -> None:
    reads = []
    original = pl.scan_csv

    def counted(*args, **kwargs):
        reads.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(pl, "scan_csv", counted)
    log = _small_log(lab.event)
    lab.summarize(log, **OCTOBER, primary_metric="contact_reasons")
    unsplit = len(reads)  # a categorical metric alone: nothing split by age
    s = lab.summarize(log, **OCTOBER, secondary_metrics=SPLIT)
    assert len(reads) == 2 * unsplit  # four metrics split: not one more read
    exp, catalog = lab.load()
    checks = analyze(exp, catalog, s).novelty
    assert len(reads) == 2 * unsplit  # the checks read the summaries, never the log
    assert {c.metric.id for c in checks if c.buckets} == {
        "conversion",
        "revenue",
        "conversion_2d",
        "nps",
    }


def test_the_chart_draws_each_bucket_with_its_interval_or_none(lab) -> None:
    from cxlab import charts

    s = lab.summarize(_fading_log(lab.event), **OCTOBER, primary_metric="conversion")
    exp, catalog = lab.load()
    (check,) = analyze(exp, catalog, s).novelty
    points = charts.novelty_lifts(check, "rel")["data"]["values"]
    assert [p["bucket"] for p in points] == [
        "day 1",
        "days 2–7",
        "days 8–14",
        "day 15+",
    ]
    day1 = check.buckets[0].fixed
    assert points[0]["value"] == pytest.approx(2.0)
    assert (points[0]["low"], points[0]["high"]) == pytest.approx(day1.rel_ci)
    # days 8–14: no orders in either arm, no lift and no interval
    assert points[2]["value"] is None
    assert points[2]["low"] is None
    assert points[2]["high"] is None
    assert points[2]["estimate"] == "— no interval"
    assert points[0]["users"] == "control 200 · treatment 200"
    absolute = charts.novelty_lifts(check, "abs")["data"]["values"]
    assert absolute[0]["value"] == pytest.approx(0.4)  # 60% − 20%, in the metric's unit


@pytest.mark.parametrize("aggregate", ["count", "sum", "max", "last"])
def test_a_units_running_value_equals_the_aggregate_of_its_rows_so_far(
    aggregate: str,
) -> None:
    from cxlab.metrics import Component

    component = Component("order", (), None, aggregate)
    name = component.name
    # two users (uk 0, 1); user 0's rows in buckets 0, 0, 1, 1, 3; user 1's in 1, 1
    raw = [2.0, None, 5.0, 1.0, 4.0, None, 7.0]
    if aggregate == "count":  # a count's row value is 1 for an event, else null
        raw = [None if v is None else 1.0 for v in raw]
    frame = pl.DataFrame(
        {"uk": [0, 0, 0, 0, 0, 1, 1], "bucket": [0, 0, 1, 1, 3, 1, 1], name: raw}
    )
    unit = pl.col("uk") * 4 + pl.col("bucket")
    got = (
        frame.with_columns(component.cumulative().alias("running"))
        .select(component.cumulative_since(unit, pl.col("running"), pl.col(name)))
        .to_series()
        .to_list()
    )
    # each unit's rows so far, aggregated by hand
    expected = {
        "count": [1.0, 1.0, 1.0, 2.0, 1.0, 0.0, 1.0],
        "sum": [2.0, 2.0, 5.0, 6.0, 4.0, 0.0, 7.0],
        "max": [2.0, 2.0, 5.0, 5.0, 4.0, None, 7.0],
        "last": [2.0, 2.0, 5.0, 1.0, 4.0, None, 7.0],
    }[aggregate]
    assert got == expected
