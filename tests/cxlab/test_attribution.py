"""Attribution (CONTRACT §1): who is in the experiment, from when, which events count.

The experiment of every test is ``exp`` from the shared fixture: 2026-10-01 ..
2026-10-05 (five whole UTC days), variants control / treatment. Metrics come from the
shared catalog: ``conversion`` (any order), ``revenue`` (Σ order value), ``orders``
(count), ``conversion_2d`` (order within 2 days), ``phone_contact_rate`` (contact with
channel = phone). Expected numbers are worked out by hand in the comments.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

END_DAY = "2026-10-05"


def test_user_enters_at_first_exposure_with_its_variant(lab, row_of) -> None:
    e = lab.event
    rows = [
        e("2026-10-02T08:00:00Z", "a", "exposure", "treatment"),
        e("2026-10-02T09:00:00Z", "a", "exposure", "treatment"),
        e("2026-10-04T09:00:00Z", "a", "exposure", "treatment"),
    ]
    s = lab.summarize(rows)
    # one user, entering treatment on 10-02 (repeat exposures to the same arm are fine)
    assert s.exposures.select("variant", "day", "d_users", "d_conflicts").rows() == [
        ("treatment", dt.date(2026, 10, 2), 1, 0)
    ]
    assert row_of(s, "conversion", "treatment", "2026-10-01")["n"] == 0
    assert row_of(s, "conversion", "treatment", "2026-10-02")["n"] == 1
    assert row_of(s, "conversion", "control")["n"] == 0
    assert s.health["exp"].multiple_exposures == 0


def test_events_before_first_exposure_never_count(lab, row_of) -> None:
    e = lab.event
    rows = [
        e("2026-09-20T10:00:00Z", "a", "order", value=100),  # before the start
        e("2026-10-02T07:59:59Z", "a", "order", value=40),  # same day, before exposure
        e("2026-10-02T08:00:00Z", "a", "exposure", "control"),
        e("2026-10-02T08:00:00Z", "a", "order", value=3),  # at the exposure: counts
        e("2026-10-03T08:00:00Z", "a", "order", value=4),
        e("2026-10-01T10:00:00Z", "b", "order", value=50),  # b never ordered after
        e("2026-10-01T11:00:00Z", "b", "exposure", "control"),
    ]
    s = lab.summarize(rows, secondary_metrics=["revenue", "orders"])
    # a: 3 + 4 = 7 from two orders; b: nothing after 11:00 → 0
    revenue = row_of(s, "revenue", "control")
    assert (revenue["n"], revenue["sum_x"], revenue["sum_xx"]) == (2, 7.0, 49.0)
    orders = row_of(s, "orders", "control")
    assert (orders["sum_x"], orders["sum_xx"]) == (2.0, 4.0)
    # conversion: only a converted (1 of 2)
    assert row_of(s, "conversion", "control")["sum_x"] == 1.0
    # three order rows before a first exposure (100, 40, 50) are set aside and counted
    assert s.health["exp"].pre_exposure_events == 3
    assert s.log.set_aside["events_before_first_exposure"] == 3


def test_whole_end_day_counts_in_utc(lab, row_of) -> None:
    e = lab.event
    rows = [
        e("2026-10-01T10:00:00Z", "a", "exposure", "control"),
        e(f"{END_DAY}T23:59:59Z", "a", "order", value=5),  # last second: counts
        e("2026-10-06T00:00:00Z", "a", "order", value=1000),  # next day: doesn't
        # 01:30 at +02:00 is 23:30 UTC on the end day: counts
        e("2026-10-06T01:30:00+02:00", "a", "order", value=20),
        # 20:00 at −05:00 is 01:00 UTC on 10-06: doesn't count
        e(f"{END_DAY}T20:00:00-05:00", "a", "order", value=300),
    ]
    s = lab.summarize(rows, secondary_metrics=["revenue"])
    assert row_of(s, "revenue", "control", END_DAY)["sum_x"] == 5.0 + 20.0
    assert s.daily["day"].max() == dt.date(2026, 10, 5)


def test_exposure_on_the_last_second_of_the_end_day_enters(lab, row_of) -> None:
    e = lab.event
    rows = [
        e(f"{END_DAY}T23:59:59Z", "a", "exposure", "control"),
        e("2026-10-06T00:00:00Z", "b", "exposure", "control"),  # after the end
        e("2026-09-30T23:59:59Z", "c", "exposure", "control"),  # before the start
    ]
    s = lab.summarize(rows)
    assert row_of(s, "conversion", "control")["n"] == 1
    assert s.health["exp"].exposures_outside_window == 2


def test_exposure_rows_outside_start_end_are_ignored_and_counted(lab, row_of) -> None:
    e = lab.event
    rows = [
        # exposed before the start as treatment, then in the window as control:
        # only the in-window exposure counts, so no conflict; enters control on 10-03
        e("2026-09-28T10:00:00Z", "a", "exposure", "treatment"),
        e("2026-10-01T10:00:00Z", "a", "order", value=9),  # before in-window exposure
        e("2026-10-03T10:00:00Z", "a", "exposure", "control"),
        e("2026-10-03T11:00:00Z", "a", "order", value=2),
        # in the window as control, then after the end as treatment: no conflict
        e("2026-10-02T10:00:00Z", "b", "exposure", "control"),
        e("2026-10-07T10:00:00Z", "b", "exposure", "treatment"),
    ]
    s = lab.summarize(rows, secondary_metrics=["revenue"])
    assert row_of(s, "revenue", "control")["n"] == 2
    assert row_of(s, "revenue", "control")["sum_x"] == 2.0
    assert row_of(s, "revenue", "treatment")["n"] == 0
    assert s.health["exp"].multiple_exposures == 0
    assert s.health["exp"].exposure_rows == 4
    assert s.health["exp"].exposures_outside_window == 2
    assert s.log.set_aside["exposure_rows_outside_window"] == 2


def test_user_exposed_to_two_variants_is_excluded_and_counted(lab, row_of) -> None:
    e = lab.event
    rows = [
        e("2026-10-01T10:00:00Z", "a", "exposure", "control"),
        e("2026-10-01T12:00:00Z", "a", "order", value=10),
        e("2026-10-03T10:00:00Z", "a", "exposure", "treatment"),
        e("2026-10-04T10:00:00Z", "a", "order", value=10),
        e("2026-10-01T10:00:00Z", "b", "exposure", "control"),
        e("2026-10-02T10:00:00Z", "b", "order", value=7),
        e("2026-10-01T10:00:00Z", "c", "exposure", "treatment"),
    ]
    s = lab.summarize(rows, secondary_metrics=["revenue"])
    # at the end: a is out; control = {b}, treatment = {c}
    control = row_of(s, "revenue", "control")
    assert (control["n"], control["sum_x"], control["sum_xx"]) == (1, 7.0, 49.0)
    assert row_of(s, "revenue", "treatment")["n"] == 1
    assert s.health["exp"].multiple_exposures == 1
    assert s.health["exp"].exposed_users == 3


def test_user_with_two_variants_counts_in_history_until_the_second_appears(
    lab, row_of
) -> None:
    e = lab.event
    rows = [
        e("2026-10-01T10:00:00Z", "a", "exposure", "control"),
        e("2026-10-01T12:00:00Z", "a", "order", value=10),
        e("2026-10-03T10:00:00Z", "a", "exposure", "treatment"),
        e("2026-10-01T10:00:00Z", "b", "exposure", "control"),
    ]
    s = lab.summarize(rows, secondary_metrics=["revenue"])
    history = [
        (
            row_of(s, "revenue", "control", day)["n"],
            row_of(s, "revenue", "control", day)["sum_x"],
        )
        for day in ("2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04")
    ]
    # a counts on 10-01 and 10-02 (n = 2, Σx = 10), is gone from 10-03 (n = 1, Σx = 0)
    assert history == [(2, 10.0), (2, 10.0), (1, 0.0), (1, 0.0)]
    assert row_of(s, "revenue", "treatment", "2026-10-03")["n"] == 0  # never joins it
    conflicts = s.exposures.filter(pl.col("d_conflicts") > 0)
    assert conflicts.select("variant", "day", "d_users", "d_conflicts").rows() == [
        ("control", dt.date(2026, 10, 3), -1, 1)
    ]


def test_conflict_on_the_day_of_first_exposure_never_counts(lab, row_of) -> None:
    e = lab.event
    rows = [
        e("2026-10-02T10:00:00Z", "a", "exposure", "treatment"),
        e("2026-10-02T10:30:00Z", "a", "order", value=10),
        e("2026-10-02T11:00:00Z", "a", "exposure", "control"),
    ]
    s = lab.summarize(rows, secondary_metrics=["revenue"])
    for day in ("2026-10-02", END_DAY):
        for variant in ("control", "treatment"):
            assert row_of(s, "revenue", variant, day)["n"] == 0
            assert row_of(s, "revenue", variant, day)["sum_x"] == 0.0
    assert s.health["exp"].multiple_exposures == 1


def test_window_days_limits_events_to_days_after_first_exposure(lab, row_of) -> None:
    e = lab.event
    rows = [
        # a: exposed 10-01 10:00; a 2-day window ends 10-03 10:00 (exclusive)
        e("2026-10-01T10:00:00Z", "a", "exposure", "control"),
        e("2026-10-03T10:00:00Z", "a", "order", value=1),  # exactly 2 days: outside
        # b: exposed 10-01 10:00, orders 10-03 09:59:59 → inside
        e("2026-10-01T10:00:00Z", "b", "exposure", "control"),
        e("2026-10-03T09:59:59Z", "b", "order", value=1),
        # c: exposed 10-04 00:00, orders 10-05 12:00 → inside (window cut by the end)
        e("2026-10-04T00:00:00Z", "c", "exposure", "control"),
        e("2026-10-05T12:00:00Z", "c", "order", value=1),
    ]
    s = lab.summarize(rows, secondary_metrics=["conversion_2d"])
    # conversion without a window: a, b, c all converted; within 2 days: b and c
    assert row_of(s, "conversion", "control")["sum_x"] == 3.0
    assert row_of(s, "conversion_2d", "control")["sum_x"] == 2.0
    assert row_of(s, "conversion_2d", "control")["n"] == 3


def test_metric_filter_keeps_only_matching_events(lab, row_of) -> None:
    e = lab.event
    rows = [
        e("2026-10-01T10:00:00Z", "a", "exposure", "control", channel=None),
        e("2026-10-01T11:00:00Z", "a", "contact", channel="phone"),
        e("2026-10-01T10:00:00Z", "b", "exposure", "control", channel=None),
        e("2026-10-01T11:00:00Z", "b", "contact", channel="chat"),
        e("2026-10-01T10:00:00Z", "c", "exposure", "control", channel=None),
    ]
    s = lab.summarize(rows, secondary_metrics=["phone_contact_rate"])
    # only a phoned: 1 of 3
    row = row_of(s, "phone_contact_rate", "control")
    assert (row["n"], row["sum_x"]) == (3, 1.0)


def test_dimension_values_come_from_the_first_exposure_row(lab) -> None:
    e = lab.event
    rows = [
        e("2026-10-01T10:00:00Z", "a", "exposure", "control", platform="ios"),
        e("2026-10-02T10:00:00Z", "a", "exposure", "control", platform="web"),
        e("2026-10-02T11:00:00Z", "a", "order", value=10, platform="android"),
        e("2026-10-01T12:00:00Z", "b", "exposure", "control", platform="web"),
    ]
    s = lab.summarize(rows, secondary_metrics=["revenue"], dimensions=["platform"])
    table = s.by_dimension.filter(pl.col("metric") == "revenue")
    # a → ios (first exposure row), with its 10; b → web, 0
    assert table.select("segment", "variant", "n", "sum_x").rows() == [
        ("ios", "control", 1, 10.0),
        ("web", "control", 1, 0.0),
    ]
    assert set(table["dimension"]) == {"platform"}


def test_users_with_a_missing_dimension_value_are_summed_in_missing_segment(
    lab,
) -> None:
    e = lab.event
    rows = [
        e("2026-10-01T10:00:00Z", "a", "exposure", "control", platform="ios"),
        e("2026-10-01T12:00:00Z", "a", "order", value=10),
        e("2026-10-01T10:00:00Z", "b", "exposure", "control", platform=None),
        e("2026-10-01T12:00:00Z", "b", "order", value=20),
    ]
    s = lab.summarize(rows, secondary_metrics=["revenue"], dimensions=["platform"])
    table = s.by_dimension.filter(pl.col("metric") == "revenue")
    # b has no platform on its exposure row: segment "(missing)", n 1, Σx 20
    assert table.select("segment", "n", "sum_x").rows() == [
        ("(missing)", 1, 20.0),
        ("ios", 1, 10.0),
    ]


def test_as_of_cuts_the_data_at_the_end_of_that_day(lab, row_of) -> None:
    e = lab.event
    rows = [
        e("2026-10-01T10:00:00Z", "a", "exposure", "control"),
        e("2026-10-02T23:59:59Z", "a", "order", value=5),  # on the as-of day: in
        e("2026-10-03T00:00:00Z", "a", "order", value=50),  # the day after: out
        e("2026-10-03T00:00:00Z", "b", "exposure", "control"),  # not yet exposed
        e("2026-10-03T00:00:00Z", "a", "exposure", "treatment"),  # conflict not yet
    ]
    s = lab.summarize(rows, as_of=dt.date(2026, 10, 2), secondary_metrics=["revenue"])
    assert s.as_of["exp"] == dt.date(2026, 10, 2)
    assert s.daily["day"].max() == dt.date(2026, 10, 2)
    row = row_of(s, "revenue", "control")
    assert (row["n"], row["sum_x"]) == (1, 5.0)
    assert s.health["exp"].multiple_exposures == 0


def test_as_of_before_the_start_gives_no_days(lab) -> None:
    rows = [lab.event("2026-10-01T10:00:00Z", "a", "exposure", "control")]
    s = lab.summarize(rows, as_of=dt.date(2026, 9, 30))
    assert s.daily.height == 0


def test_without_end_or_as_of_the_last_event_day_is_the_as_of(lab) -> None:
    e = lab.event
    rows = [
        e("2026-10-01T10:00:00Z", "a", "exposure", "control"),
        e("2026-10-09T10:00:00Z", "a", "page_view"),
    ]
    s = lab.summarize(rows, end=None)
    # no end: the as-of day is the day of the log's last event
    assert s.as_of["exp"] == dt.date(2026, 10, 9)
    assert s.daily["day"].max() == dt.date(2026, 10, 9)


def test_exposures_of_other_experiments_are_set_aside_and_counted(lab) -> None:
    e = lab.event
    rows = [
        e("2026-10-01T10:00:00Z", "a", "exposure", "control"),
        e("2026-10-01T10:00:00Z", "a", "exposure", "x", experiment_id="other"),
        e("2026-10-01T10:00:00Z", "z", "exposure", "y", experiment_id="other"),
        e("2026-10-01T11:00:00Z", "z", "order", value=1),
    ]
    s = lab.summarize(rows)
    assert s.log.set_aside["exposure_rows_of_other_experiments"] == 2
    # z is in no analysed experiment: its two rows
    assert s.log.set_aside["events_of_users_in_no_analysed_experiment"] == 2


def test_user_ids_sharing_a_hash_code_fall_back_to_exact_codes(
    lab, monkeypatch
) -> None:
    """Every user gets the same code but their own check: caught, numbers hold."""
    import cxlab.summaries.scan as scan
    from cxlab.attribution import USER_CODE, user_codes

    e = lab.event
    rows = [
        e("2026-10-01T09:00:00Z", "a", "exposure", "control"),
        e("2026-10-01T10:00:00Z", "b", "exposure", "treatment"),
        e("2026-10-02T09:00:00Z", "c", "exposure", "treatment"),
        e("2026-10-02T11:00:00Z", "a", "order", value=5),
        e("2026-10-03T11:00:00Z", "b", "order", value=8),
        e("2026-10-03T12:00:00Z", "b", "order", value=2),
        e("2026-10-01T08:00:00Z", "c", "order", value=9),  # before c's exposure
    ]
    honest = lab.summarize(rows, secondary_metrics=["revenue"])
    calls = []

    def colliding(*, exact: bool = False) -> list[pl.Expr]:
        calls.append(exact)
        codes = user_codes(exact=exact)
        return codes if exact else [pl.lit(7, pl.UInt64).alias(USER_CODE), codes[1]]

    monkeypatch.setattr(scan, "user_codes", colliding)
    patched = lab.summarize(rows, secondary_metrics=["revenue"])
    assert calls == [False, True]
    assert patched.daily.equals(honest.daily)
    revenue = patched.daily.filter(
        (pl.col("metric") == "revenue") & (pl.col("day") == dt.date(2026, 10, 5))
    ).sort("variant")
    # control: a with 5; treatment: b with 8 + 2, c with nothing after exposure
    assert revenue.select("variant", "n", "sum_x", "sum_xx").rows() == [
        ("control", 1, 5.0, 25.0),
        ("treatment", 2, 10.0, 100.0),
    ]
    assert patched.health["exp"].pre_exposure_events == 1


def _brute_first_at_or_after(times, lo, hi, targets):
    return [
        next((i for i in range(a, b) if times[i] >= t), b)
        for a, b, t in zip(lo, hi, targets, strict=True)
    ]


def test_slice_search_matches_a_brute_force_scan() -> None:
    """Random users and times, many in the same second, µs apart; edge targets."""
    import numpy as np

    from cxlab.attribution import first_at_or_after, user_runs

    rng = np.random.default_rng(7)
    codes = np.sort(rng.integers(0, 300, 4_000)).astype(np.uint64)
    seconds = rng.integers(1_790_000_000, 1_790_000_050, codes.size)
    times = seconds * 1_000_000 + rng.integers(0, 3, codes.size) * 250_000
    order = np.lexsort((times, codes))
    codes, times = codes[order], times[order]
    run_code, run_start, run_end = user_runs(codes)
    assert run_code.tolist() == np.unique(codes).tolist()
    assert run_start.tolist() == np.searchsorted(codes, run_code).tolist()
    assert run_end.tolist() == np.searchsorted(codes, run_code, "right").tolist()
    queries = rng.choice(np.append(run_code, [10_000]), 2_000)  # 10_000: no rows
    lo = np.searchsorted(codes, queries, side="left")
    hi = np.searchsorted(codes, queries, side="right")
    picked = times[np.minimum(lo + rng.integers(0, 5, lo.size), times.size - 1)]
    targets = np.where(
        rng.random(lo.size) < 0.8,
        picked + rng.integers(-1, 2, lo.size) * 250_000,  # equal, just before/after
        rng.choice([0, 4_000_000_000_000_000], lo.size),  # before / after all rows
    )
    expected = _brute_first_at_or_after(times, lo, hi, targets)
    assert first_at_or_after(times, lo, hi, targets).tolist() == expected
