"""Cumulative sufficient statistics per (experiment, metric, variant, day), by hand.

Experiment ``exp`` of the shared fixture runs 2026-10-01 .. 2026-10-05. For each metric
type the per-user values x (and y for ratios) are written down in the comments, and
n, Σx, Σx², Σy, Σy², Σxy follow by plain arithmetic. NPS rows carry counts: n
responders, Σx promoters, Σy detractors.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from cxlab.events import resolve_source
from cxlab.summaries import STAT_COLUMNS, summarize

DAYS = ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04", "2026-10-05"]


def sums(row: dict, *columns: str) -> tuple:
    return tuple(row[c] for c in columns)


@pytest.fixture
def orders_log(lab) -> list[dict]:
    e = lab.event
    return [
        # a (control): orders 10 on 10-01, 30 and 5 on 10-02, 20 on 10-04
        e("2026-10-01T09:00:00Z", "a", "exposure", "control"),
        e("2026-10-01T12:00:00Z", "a", "order", value=10),
        e("2026-10-02T08:00:00Z", "a", "order", value=30),
        e("2026-10-02T18:00:00Z", "a", "order", value=5),
        e("2026-10-04T12:00:00Z", "a", "order", value=20),
        # b (control): one order of 8 on 10-03, and one order without a value
        e("2026-10-01T09:00:00Z", "b", "exposure", "control"),
        e("2026-10-03T12:00:00Z", "b", "order", value=8),
        e("2026-10-03T13:00:00Z", "b", "order"),
        # c (control): no orders
        e("2026-10-02T09:00:00Z", "c", "exposure", "control"),
        # d (treatment): one order of 4
        e("2026-10-01T09:00:00Z", "d", "exposure", "treatment"),
        e("2026-10-01T10:00:00Z", "d", "order", value=4),
    ]


def test_daily_table_has_the_contract_columns(lab, orders_log) -> None:
    s = lab.summarize(orders_log)
    assert s.daily.columns == [
        "experiment_id",
        "metric",
        "variant",
        "day",
        *STAT_COLUMNS,
    ]
    # one metric (conversion) × two variants × five days
    assert s.daily.height == 10


def test_proportion_counts_users_with_at_least_one_event(
    lab, orders_log, row_of
) -> None:
    s = lab.summarize(orders_log)
    # control at the end: a 1, b 1, c 0 → n 3, Σx 2, Σx² 2
    assert sums(row_of(s, "conversion", "control"), "n", "sum_x", "sum_xx") == (
        3,
        2.0,
        2.0,
    )
    assert sums(row_of(s, "conversion", "treatment"), "n", "sum_x") == (1, 1.0)


def test_cumulative_rows_for_every_day_including_days_without_new_users(
    lab, orders_log, row_of
) -> None:
    s = lab.summarize(orders_log)
    by_day = [sums(row_of(s, "conversion", "control", d), "n", "sum_x") for d in DAYS]
    # 10-01: a, b in; a converted. 10-02: c joins. 10-03: b converts. then unchanged
    assert by_day == [(2, 1.0), (3, 1.0), (3, 2.0), (3, 2.0), (3, 2.0)]


def test_mean_with_sum_aggregate(lab, orders_log, row_of) -> None:
    s = lab.summarize(orders_log, secondary_metrics=["revenue"])
    # x: a 10+30+5+20 = 65, b 8 (the order without a value adds nothing), c 0
    # Σx = 73, Σx² = 4225 + 64 = 4289
    assert sums(row_of(s, "revenue", "control"), "n", "sum_x", "sum_xx") == (
        3,
        73.0,
        4289.0,
    )
    # as of 10-02: a 45, b 0, c 0 → Σx 45, Σx² 2025
    assert sums(
        row_of(s, "revenue", "control", "2026-10-02"), "n", "sum_x", "sum_xx"
    ) == (
        3,
        45.0,
        2025.0,
    )
    assert sums(row_of(s, "revenue", "treatment"), "sum_x", "sum_xx") == (4.0, 16.0)


def test_mean_with_count_aggregate_counts_orders_without_value(
    lab, orders_log, row_of
) -> None:
    s = lab.summarize(orders_log, secondary_metrics=["orders"])
    # x: a 4 orders, b 2 (one without a value still is an order), c 0 → Σx 6, Σx² 20
    assert sums(row_of(s, "orders", "control"), "n", "sum_x", "sum_xx") == (
        3,
        6.0,
        20.0,
    )


def test_mean_with_max_aggregate(lab, orders_log, row_of) -> None:
    s = lab.summarize(orders_log, secondary_metrics=["max_order"])
    # as of 10-01: a 10; 10-02: a max(10, 30, 5) = 30; end: a 30 (20 < 30), b 8, c 0
    assert row_of(s, "max_order", "control", "2026-10-01")["sum_x"] == 10.0
    assert row_of(s, "max_order", "control", "2026-10-02")["sum_x"] == 30.0
    assert sums(row_of(s, "max_order", "control"), "n", "sum_x", "sum_xx") == (
        3,
        38.0,
        964.0,  # 900 + 64
    )


def test_mean_with_last_aggregate(lab, orders_log, row_of) -> None:
    s = lab.summarize(orders_log, secondary_metrics=["last_order"])
    # 10-01: a 10; 10-02: a 5 (18:00 is later than 08:00); end: a 20, b 8, c 0
    assert row_of(s, "last_order", "control", "2026-10-01")["sum_x"] == 10.0
    assert row_of(s, "last_order", "control", "2026-10-02")["sum_x"] == 5.0
    assert sums(row_of(s, "last_order", "control"), "n", "sum_x", "sum_xx") == (
        3,
        28.0,
        464.0,  # 400 + 64
    )


def test_ratio_sums_of_numerator_and_denominator(lab, row_of) -> None:
    e = lab.event
    rows = [
        # a: 2 contacts, 1 order; b: 0 contacts, 2 orders; c: 1 contact, 0 orders
        e("2026-10-01T09:00:00Z", "a", "exposure", "control"),
        e("2026-10-01T10:00:00Z", "a", "contact"),
        e("2026-10-02T10:00:00Z", "a", "contact"),
        e("2026-10-02T11:00:00Z", "a", "order", value=20),
        e("2026-10-01T09:00:00Z", "b", "exposure", "control"),
        e("2026-10-01T10:00:00Z", "b", "order", value=5),
        e("2026-10-03T10:00:00Z", "b", "order", value=5),
        e("2026-10-01T09:00:00Z", "c", "exposure", "control"),
        e("2026-10-04T10:00:00Z", "c", "contact"),
    ]
    s = lab.summarize(rows, primary_metric="contacts_per_order")
    row = row_of(s, "contacts_per_order", "control")
    # Σx = 2+0+1 = 3, Σx² = 4+0+1 = 5, Σy = 1+2+0 = 3, Σy² = 1+4+0 = 5,
    # Σxy = 2·1 + 0·2 + 1·0 = 2; n = 3 exposed users
    assert sums(row, "n", "sum_x", "sum_xx", "sum_y", "sum_yy", "sum_xy") == (
        3,
        3.0,
        5.0,
        3.0,
        5.0,
        2.0,
    )
    # as of 10-01: a (1, 0), b (0, 1), c (0, 0) → Σx 1, Σy 1, Σxy 0
    first = row_of(s, "contacts_per_order", "control", "2026-10-01")
    assert sums(first, "sum_x", "sum_y", "sum_xy") == (1.0, 1.0, 0.0)


def test_simultaneous_answers_resolve_to_the_later_row_of_the_log(lab, row_of) -> None:
    # Two answers in the same second: "last" is the one written later in the log,
    # whatever the order rows take inside the engine.
    e = lab.event
    rows = [
        e("2026-10-01T09:00:00Z", "a", "exposure", "treatment"),
        e("2026-10-02T10:00:00Z", "a", "nps_response", value=10),
        e("2026-10-02T10:00:00Z", "a", "nps_response", value=3),  # later row: −100
        e("2026-10-01T09:00:00Z", "b", "exposure", "treatment"),
        e("2026-10-02T10:00:00Z", "b", "nps_response", value=2),
        e("2026-10-02T10:00:00Z", "b", "nps_response", value=9),  # later row: +100
    ]
    s = lab.summarize(rows, primary_metric="nps")
    row = row_of(s, "nps", "treatment", "2026-10-05")
    # a detractor (3), b promoter (9)
    assert sums(row, "n", "sum_x", "sum_y") == (2, 1.0, 1.0)
    # Swapping each pair swaps each user's answer, and the counts again tie:
    # a promoter, b detractor — so check a alone.
    alone = lab.summarize(rows[:3], primary_metric="nps")
    a_alone = row_of(alone, "nps", "treatment", "2026-10-05")
    assert sums(a_alone, "n", "sum_x", "sum_y") == (1, 0.0, 1.0)


def test_nps_counts_responders_and_their_last_answer(lab, row_of) -> None:
    e = lab.event
    rows = [
        e("2026-10-01T09:00:00Z", "a", "exposure", "treatment"),
        e("2026-10-01T10:00:00Z", "a", "nps_response", value=10),  # promoter …
        e("2026-10-03T10:00:00Z", "a", "nps_response", value=4),  # … then detractor
        e("2026-10-01T09:00:00Z", "b", "exposure", "treatment"),
        e("2026-10-02T10:00:00Z", "b", "nps_response", value=7),  # passive: 0
        e("2026-10-01T09:00:00Z", "c", "exposure", "treatment"),
        e("2026-10-02T10:00:00Z", "c", "nps_response", value=9),  # promoter: +100
        e("2026-10-01T09:00:00Z", "d", "exposure", "treatment"),  # never answered
        e("2026-10-01T09:00:00Z", "e", "exposure", "treatment"),
        e("2026-10-02T10:00:00Z", "e", "nps_response", value=6),  # detractor: −100
        e("2026-10-02T11:00:00Z", "e", "nps_response", value=8),  # last: passive 0
    ]
    s = lab.summarize(rows, primary_metric="nps")

    def counts(day: str | None = None) -> tuple:
        return sums(row_of(s, "nps", "treatment", day), "n", "sum_x", "sum_y")

    # 10-01: a promoter → n 1, 1 promoter, 0 detractors
    assert counts("2026-10-01") == (1, 1.0, 0.0)
    # 10-02: a promoter, b passive, c promoter, e passive (last answer 8)
    assert counts("2026-10-02") == (4, 2.0, 0.0)
    # 10-03 on: a turns detractor (n stays 4; d never answered)
    assert counts() == (4, 1.0, 1.0)
    assert row_of(s, "nps", "control")["n"] == 0


def test_cuped_pre_period_sums_with_cuped_days(lab, row_of) -> None:
    e = lab.event
    rows = [
        # a exposed 10-01 10:00 → pre-period [09-24 10:00, 10-01 10:00)
        e("2026-09-20T10:00:00Z", "a", "order", value=3),  # too early: not pre
        e("2026-09-28T10:00:00Z", "a", "order", value=5),  # pre
        e("2026-10-01T09:00:00Z", "a", "order", value=2),  # pre
        e("2026-10-01T10:00:00Z", "a", "exposure", "control"),
        e("2026-10-02T10:00:00Z", "a", "order", value=10),  # x
        # b exposed 10-02 10:00 → pre-period from 09-25 10:00 (inclusive)
        e("2026-09-25T10:00:00Z", "b", "order", value=4),  # pre
        e("2026-10-02T10:00:00Z", "b", "exposure", "control"),
    ]
    s = lab.summarize(rows, primary_metric="revenue", cuped_days=7)
    # a: pre 5+2 = 7, x 10; b: pre 4, x 0
    # pre_x 11, pre_xx 49+16 = 65, pre_xy 7·10 + 4·0 = 70
    end = row_of(s, "revenue", "control")
    assert sums(end, "n", "sum_x", "pre_x", "pre_xx", "pre_xy") == (
        2,
        10.0,
        11.0,
        65.0,
        70.0,
    )
    # 10-01: only a, no post order yet → pre_x 7, pre_xx 49, pre_xy 0
    first = row_of(s, "revenue", "control", "2026-10-01")
    assert sums(first, "n", "pre_x", "pre_xx", "pre_xy") == (1, 7.0, 49.0, 0.0)


def test_cuped_pre_period_of_a_proportion_is_whether_the_user_converted(
    lab, row_of
) -> None:
    e = lab.event
    rows = [
        e("2026-09-28T10:00:00Z", "a", "order", value=5),
        e("2026-09-29T10:00:00Z", "a", "order", value=5),
        e("2026-10-01T10:00:00Z", "a", "exposure", "control"),
        e("2026-10-02T10:00:00Z", "a", "order", value=10),
        e("2026-09-30T10:00:00Z", "b", "order", value=4),
        e("2026-10-01T10:00:00Z", "b", "exposure", "control"),
        e("2026-10-01T10:00:00Z", "c", "exposure", "control"),
    ]
    s = lab.summarize(rows, cuped_days=7)
    # pre: a 1, b 1, c 0; x: a 1, b 0, c 0 → pre_x 2, pre_xx 2, pre_xy 1
    end = row_of(s, "conversion", "control")
    assert sums(end, "n", "sum_x", "pre_x", "pre_xx", "pre_xy") == (
        3,
        1.0,
        2.0,
        2.0,
        1.0,
    )


def test_cuped_sums_of_a_ratio_cross_numerator_and_denominator(lab, row_of) -> None:
    e = lab.event
    rows = [
        # a: pre x₀ 1 contact, y₀ 2 orders; in period x 1, y 3
        e("2026-09-28T10:00:00Z", "a", "order"),
        e("2026-09-29T10:00:00Z", "a", "order"),
        e("2026-09-29T11:00:00Z", "a", "contact"),
        e("2026-10-01T10:00:00Z", "a", "exposure", "control"),
        e("2026-10-02T10:00:00Z", "a", "order"),
        e("2026-10-02T11:00:00Z", "a", "order"),
        e("2026-10-03T10:00:00Z", "a", "order"),
        e("2026-10-03T11:00:00Z", "a", "contact"),
        # b: pre x₀ 0, y₀ 1; in period x 2, y 1
        e("2026-09-30T10:00:00Z", "b", "order"),
        e("2026-10-01T10:00:00Z", "b", "exposure", "control"),
        e("2026-10-02T10:00:00Z", "b", "order"),
        e("2026-10-02T11:00:00Z", "b", "contact"),
        e("2026-10-02T12:00:00Z", "b", "contact"),
        # c: no pre-period (x₀ = y₀ = 0); in period y 1
        e("2026-10-01T10:00:00Z", "c", "exposure", "control"),
        e("2026-10-04T10:00:00Z", "c", "order"),
    ]
    s = lab.summarize(rows, primary_metric="contacts_per_order", cuped_days=7)
    end = row_of(s, "contacts_per_order", "control")
    # pre: Σx₀ 1, Σy₀ 3, Σx₀² 1, Σy₀² 4+1 = 5, Σx₀y₀ 2
    assert sums(end, "pre_x", "pre_y", "pre_xx", "pre_yy", "pre_x0y0") == (
        1.0,
        3.0,
        1.0,
        5.0,
        2.0,
    )
    # Σx·x₀ = 1·1, Σx·y₀ = 1·2 + 2·1 = 4, Σy·x₀ = 3·1 = 3, Σy·y₀ = 3·2 + 1·1 = 7
    assert sums(end, "pre_xy", "pre_xy0", "pre_yx0", "pre_yy0") == (1.0, 4.0, 3.0, 7.0)
    # 10-02: a has y 2, x 0; b has y 1, x 2: Σx·y₀ = 2, Σy·x₀ = 2, Σy·y₀ = 5
    first = row_of(s, "contacts_per_order", "control", "2026-10-02")
    assert sums(first, "pre_xy", "pre_xy0", "pre_yx0", "pre_yy0") == (
        0.0,
        2.0,
        2.0,
        5.0,
    )
    assert sums(first, "pre_x", "pre_y") == (1.0, 3.0)  # entered on 10-01


def test_cuped_sums_of_nps_run_over_responders_with_their_last_earlier_answer(
    lab, row_of
) -> None:
    e = lab.event
    rows = [
        # a: answered 3 then 9 before exposure (last: promoter, x₀ +100); 2 after
        e("2026-09-27T10:00:00Z", "a", "nps_response", value=3),
        e("2026-09-28T10:00:00Z", "a", "nps_response", value=9),
        e("2026-10-01T10:00:00Z", "a", "exposure", "control"),
        e("2026-10-03T10:00:00Z", "a", "nps_response", value=2),  # s −100
        # b: detractor before (x₀ −100), never answers after: not a responder
        e("2026-09-29T10:00:00Z", "b", "nps_response", value=1),
        e("2026-10-01T10:00:00Z", "b", "exposure", "control"),
        # c: never answered before (x₀ 0); promoter after (s +100)
        e("2026-10-01T10:00:00Z", "c", "exposure", "control"),
        e("2026-10-02T10:00:00Z", "c", "nps_response", value=10),
    ]
    s = lab.summarize(rows, primary_metric="nps", cuped_days=7)
    end = row_of(s, "nps", "control")
    # responders a, c: Σx₀ 100, Σx₀² 100², Σs·x₀ = −100·100 + 100·0
    assert sums(end, "n", "pre_x", "pre_xx", "pre_xy") == (
        2,
        100.0,
        10_000.0,
        -10_000.0,
    )
    # 10-02: only c has answered
    first = row_of(s, "nps", "control", "2026-10-02")
    assert sums(first, "n", "pre_x", "pre_xx", "pre_xy") == (1, 0.0, 0.0, 0.0)


def test_without_cuped_days_pre_sums_are_zero(lab, row_of) -> None:
    e = lab.event
    rows = [
        e("2026-09-28T10:00:00Z", "a", "order", value=5),
        e("2026-10-01T10:00:00Z", "a", "exposure", "control"),
        e("2026-10-02T10:00:00Z", "a", "order", value=10),
    ]
    s = lab.summarize(rows, primary_metric="revenue")
    assert sums(row_of(s, "revenue", "control"), "pre_x", "pre_xx", "pre_xy") == (
        0.0,
        0.0,
        0.0,
    )


def test_exposures_table_has_new_users_per_variant_and_day(lab, orders_log) -> None:
    s = lab.summarize(orders_log)
    assert s.exposures.select("variant", "day", "d_users", "d_conflicts").rows() == [
        ("control", dt.date(2026, 10, 1), 2, 0),
        ("control", dt.date(2026, 10, 2), 1, 0),
        ("treatment", dt.date(2026, 10, 1), 1, 0),
    ]


def test_by_dimension_sums_per_segment_at_the_as_of_day(lab, row_of) -> None:
    e = lab.event
    rows = [
        e("2026-10-01T09:00:00Z", "a", "exposure", "control", platform="ios"),
        e("2026-10-01T10:00:00Z", "a", "order", value=10),
        e("2026-10-01T09:00:00Z", "b", "exposure", "control", platform="ios"),
        e("2026-10-02T10:00:00Z", "b", "order", value=6),
        e("2026-10-01T09:00:00Z", "c", "exposure", "control", platform="web"),
        e("2026-10-01T09:00:00Z", "d", "exposure", "treatment", platform="web"),
        e("2026-10-03T10:00:00Z", "d", "order", value=1),
    ]
    s = lab.summarize(
        rows,
        as_of=dt.date(2026, 10, 2),
        secondary_metrics=["revenue"],
        dimensions=["platform"],
    )
    table = s.by_dimension.filter(pl.col("metric") == "revenue")
    # as of 10-02: ios control a 10, b 6 → n 2, Σx 16, Σx² 136; web control c 0;
    # web treatment d 0 (its order on 10-03 is after the as-of day)
    assert table.select("segment", "variant", "n", "sum_x", "sum_xx").rows() == [
        ("ios", "control", 2, 16.0, 136.0),
        ("web", "control", 1, 0.0, 0.0),
        ("web", "treatment", 1, 0.0, 0.0),
    ]


def test_by_dimension_leaves_out_users_with_two_variants(lab) -> None:
    e = lab.event
    rows = [
        e("2026-10-01T09:00:00Z", "a", "exposure", "control", platform="ios"),
        e("2026-10-01T10:00:00Z", "a", "order", value=10),
        e("2026-10-02T09:00:00Z", "a", "exposure", "treatment", platform="ios"),
        e("2026-10-01T09:00:00Z", "b", "exposure", "control", platform="ios"),
    ]
    s = lab.summarize(rows, secondary_metrics=["revenue"], dimensions=["platform"])
    table = s.by_dimension.filter(pl.col("metric") == "revenue")
    assert table.select("segment", "variant", "n", "sum_x").rows() == [
        ("ios", "control", 1, 0.0)
    ]


def test_health_counts_exposures_users_and_set_aside_rows(lab, orders_log) -> None:
    e = lab.event
    rows = [
        *orders_log,
        e("2026-10-03T09:00:00Z", "c", "exposure", "treatment"),  # c now conflicts
        e("2026-10-09T09:00:00Z", "f", "exposure", "control"),  # after the end
        e("2026-09-30T09:00:00Z", "a", "order", value=1),  # before a's exposure
    ]
    s = lab.summarize(rows)
    h = s.health["exp"]
    # exposure rows: a, b, c, d, c again, f = 6; f's is outside the window
    assert h.exposure_rows == 6
    assert h.exposures_outside_window == 1
    assert h.exposed_users == 4  # a, b, c, d
    assert h.multiple_exposures == 1  # c
    assert h.pre_exposure_events == 1
    assert s.log.rows == len(rows)
    assert s.log.users == 5  # a, b, c, d, f
    by_type = dict(s.log.events_by_type.select("event", "rows").iter_rows())
    assert by_type == {"exposure": 6, "order": 8}


def test_one_scan_summarises_two_experiments_independently(lab) -> None:
    e = lab.event
    rows = [
        e("2026-10-01T09:00:00Z", "a", "exposure", "control"),
        e("2026-10-01T09:00:00Z", "a", "exposure", "green", experiment_id="other"),
        e("2026-10-01T09:00:00Z", "b", "exposure", "treatment"),
        e("2026-10-03T10:00:00Z", "a", "order", value=7),
    ]
    path = lab.log(rows)
    exp, catalog = lab.load(lab.experiment(secondary_metrics=["revenue"]))
    other, _ = lab.load(
        lab.experiment(
            id="other",
            start="2026-10-02",
            end="2026-10-04",
            variants=["green", "blue"],
            primary_metric="revenue",
            secondary_metrics=None,
        )
    )
    s = summarize(resolve_source(path), [exp, other], catalog)
    # in "exp" a entered 10-01 and ordered 7
    exp_end = s.daily.filter(
        (pl.col("experiment_id") == "exp")
        & (pl.col("metric") == "revenue")
        & (pl.col("variant") == "control")
        & (pl.col("day") == dt.date(2026, 10, 5))
    )
    assert exp_end.select("n", "sum_x").rows() == [(1, 7.0)]
    # in "other" a's exposure on 10-01 is before its start: nobody is in it
    other_daily = s.daily.filter(pl.col("experiment_id") == "other")
    assert other_daily["day"].min() == dt.date(2026, 10, 2)
    assert other_daily["n"].max() == 0
    assert s.health["other"].exposures_outside_window == 1


def test_user_with_two_variants_leaves_nps_and_cuped_sums_on_the_conflict_day(
    lab, row_of
) -> None:
    e = lab.event
    rows = [
        e("2026-09-28T10:00:00Z", "a", "order", value=5),  # a's pre-period
        e("2026-10-01T10:00:00Z", "a", "exposure", "control"),
        e("2026-10-01T11:00:00Z", "a", "nps_response", value=10),
        e("2026-10-02T11:00:00Z", "a", "order", value=7),
        e("2026-10-03T10:00:00Z", "a", "exposure", "treatment"),
        e("2026-09-29T10:00:00Z", "b", "order", value=2),  # b's pre-period
        e("2026-10-01T10:00:00Z", "b", "exposure", "control"),
        e("2026-10-01T12:00:00Z", "b", "nps_response", value=0),
    ]
    s = lab.summarize(
        rows, primary_metric="revenue", secondary_metrics=["nps"], cuped_days=7
    )
    # 10-02: a (pre 5, x 7) and b (pre 2, x 0): pre_x 7, pre_xx 29, pre_xy 35
    day2 = row_of(s, "revenue", "control", "2026-10-02")
    assert sums(day2, "n", "sum_x", "pre_x", "pre_xx", "pre_xy") == (
        2,
        7.0,
        7.0,
        29.0,
        35.0,
    )
    # 10-03 on, only b: pre_x 2, pre_xx 4, x 0
    end = row_of(s, "revenue", "control")
    assert sums(end, "n", "sum_x", "pre_x", "pre_xx", "pre_xy") == (
        1,
        0.0,
        2.0,
        4.0,
        0.0,
    )
    # NPS: a promoter, b detractor until 10-02; then b alone
    nps_day2 = row_of(s, "nps", "control", "2026-10-02")
    assert sums(nps_day2, "n", "sum_x", "sum_y") == (2, 1.0, 1.0)
    assert sums(row_of(s, "nps", "control"), "n", "sum_x", "sum_y") == (1, 0.0, 1.0)


def test_filters_on_metric_and_ratio_side_and_carried_values_on_quiet_days(
    lab, row_of
) -> None:
    lab.catalog_path.write_text(
        lab.catalog_path.read_text() + "phone_per_order:\n"
        "  type: ratio\n"
        "  numerator: {event: contact, aggregate: count, filter: {channel: phone}}\n"
        "  denominator: {event: order, aggregate: count}\n"
        "  direction: decrease\n"
        "web_revenue:\n"
        "  type: mean\n"
        "  event: order\n"
        "  filter: {channel: web}\n"
        "  direction: increase\n"
    )
    e = lab.event
    rows = [
        e("2026-10-01T10:00:00Z", "a", "exposure", "control", channel=None),
        e("2026-10-01T11:00:00Z", "a", "order", value=10, channel="web"),
        e("2026-10-02T11:00:00Z", "a", "contact", channel="phone"),
        e("2026-10-03T11:00:00Z", "a", "order", value=5, channel="app"),
        e("2026-10-03T12:00:00Z", "a", "contact", channel="chat"),
        e("2026-10-04T11:00:00Z", "a", "contact", channel="phone"),
    ]
    metrics = ["max_order", "last_order", "phone_per_order", "web_revenue"]
    s = lab.summarize(rows, secondary_metrics=metrics)

    def x(metric: str) -> list[float]:
        return [row_of(s, metric, "control", d)["sum_x"] for d in DAYS]

    # 10-02 has no order: max and last carry the 10 of 10-01; 10-03 adds the 5
    assert x("max_order") == [10.0, 10.0, 10.0, 10.0, 10.0]
    assert x("last_order") == [10.0, 10.0, 5.0, 5.0, 5.0]
    # only the web order counts: 10 throughout
    assert x("web_revenue") == [10.0] * 5
    # phone contacts (x) over orders (y): (0, 1), (1, 1), (1, 2), (2, 2), (2, 2)
    ratio = [
        sums(row_of(s, "phone_per_order", "control", d), "sum_x", "sum_y", "sum_xy")
        for d in DAYS
    ]
    assert ratio == [
        (0.0, 1.0, 0.0),
        (1.0, 1.0, 1.0),
        (1.0, 2.0, 2.0),
        (2.0, 2.0, 4.0),
        (2.0, 2.0, 4.0),
    ]


def test_any_earlier_as_of_day_equals_a_fresh_scan_cut_at_that_day(lab) -> None:
    """at_day(full, d) == summarize(as_of=d) for every day, on a log with conflicts,
    pre-exposure rows, out-of-window exposures, segments, CUPED and every type."""
    import random

    from cxlab.summaries import at_day

    rng = random.Random(5)
    e = lab.event
    rows = []
    for u in range(60):
        user = f"u{u:02d}"
        platform = rng.choice(["ios", "web", None])
        day = rng.randint(0, 6)  # 09-30 .. 10-06: some before the start / after end
        first = dt.datetime(2026, 9, 30, 8) + dt.timedelta(days=day, minutes=u)
        arm = rng.choice(["control", "treatment"])
        rows.append(
            e(f"{first:%Y-%m-%dT%H:%M}Z", user, "exposure", arm, platform=platform)
        )
        if rng.random() < 0.15:  # meets the other arm later: excluded from then on
            later = first + dt.timedelta(days=rng.randint(0, 3), hours=1)
            other = "treatment" if arm == "control" else "control"
            rows.append(e(f"{later:%Y-%m-%dT%H:%M}Z", user, "exposure", other))
        for _ in range(rng.randint(0, 6)):
            when = first + dt.timedelta(hours=rng.randint(-90, 150))
            kind = rng.choice(["order", "order", "contact", "nps_response"])
            value = rng.randint(0, 10) if kind == "nps_response" else rng.randint(1, 90)
            rows.append(
                e(f"{when:%Y-%m-%dT%H:%M}Z", user, kind, value=value, channel="phone")
            )
    fields = {
        "secondary_metrics": ["revenue", "nps", "contacts_per_order", "max_order"],
        "guardrail_metrics": ["conversion_2d", "phone_contact_rate", "last_order"],
        "dimensions": ["platform"],
        "cuped_days": 3,
    }
    full = lab.summarize(rows, **fields)
    _, catalog = lab.load()
    for day in [dt.date(2026, 9, 30) + dt.timedelta(days=k) for k in range(8)]:
        fresh = lab.summarize(rows, as_of=day, **fields)
        cut = at_day(full, day, catalog)
        assert cut.daily.equals(fresh.daily), day
        assert cut.exposures.equals(fresh.exposures), day
        assert cut.by_dimension.equals(fresh.by_dimension), day
        assert cut.health == fresh.health, day
        assert cut.as_of == fresh.as_of, day
        assert cut.log.set_aside == fresh.log.set_aside, day
        assert cut.log.exposures_by_variant.equals(fresh.log.exposures_by_variant), day
        assert (cut.log.rows, cut.log.users) == (fresh.log.rows, fresh.log.users)
        assert cut.novelty.equals(fresh.novelty), day
    # the log spans several days of every kind, so the comparison is not vacuous
    assert set(full.novelty["bucket"]) == {0, 1}  # events up to 150 h: 2 buckets
    assert full.novelty.filter(pl.col("sum_x") != 0).height > 10
    assert full.health["exp"].multiple_exposures > 0
    assert full.health["exp"].pre_exposure_events > 0
    assert full.health["exp"].exposures_outside_window > 0
    assert full.by_dimension.height > 0


def test_an_experiment_starting_after_the_data_gets_its_zero_days_at_a_later_day(
    lab,
) -> None:
    """No end and a start after the last day of data: the cached scan has no daily
    rows for it, yet a later as-of day must show its days so far, all zero."""
    from cxlab.summaries import at_day

    e = lab.event
    rows = [
        e("2026-10-01T09:00Z", "u1", "exposure", "control"),
        e("2026-10-02T09:00Z", "u1", "order", value=20),
    ]
    full = lab.summarize(rows, start="2026-10-04", end=None)
    _, catalog = lab.load()
    assert full.daily.height == 0  # its start is after the last day of data
    for day in [dt.date(2026, 10, 2) + dt.timedelta(days=k) for k in range(5)]:
        fresh = lab.summarize(rows, start="2026-10-04", end=None, as_of=day)
        cut = at_day(full, day, catalog)
        assert cut.daily.equals(fresh.daily), day
        assert cut.exposures.equals(fresh.exposures), day
        assert cut.health == fresh.health, day
    # on 10-06 every metric and variant has three all-zero days
    assert fresh.daily.height == 3 * 2 * 1  # days × variants × metrics
    assert fresh.daily["n"].to_list() == [0] * 6
