"""The metric-type registry: one entry per type, each tested on hand-built rows.

Summary rows are written down by hand with the per-user values in the comments;
means and variances follow by plain arithmetic (the formulas of stats.aggregates:
Bernoulli p(1 − p), the unbiased sample variance, Deng et al. 2018's delta method
for ratios, the multinomial variance of ±100 scores for NPS).
"""

from __future__ import annotations

from typing import get_args

import polars as pl
import pytest

from cxlab.config import EventSpec, MetricDef, MetricType
from cxlab.metrics import (
    RESPONDERS,
    TYPES,
    arm_stats,
    covariate_stats,
    metric_type,
)
from cxlab.stats.aggregates import CovariateStats, NpsStats, RatioCovariateStats

METRICS = {
    "proportion": MetricDef("conversion", "proportion", "increase", event="order"),
    "mean": MetricDef("revenue", "mean", "increase", event="order", aggregate="sum"),
    "ratio": MetricDef(
        "contacts_per_order",
        "ratio",
        "decrease",
        numerator=EventSpec("contact"),
        denominator=EventSpec("order"),
    ),
    "nps": MetricDef("nps", "nps", "increase", event="nps_response"),
    "categorical": MetricDef(
        "contact_reasons", "categorical", "decrease", event="contact", category="reason"
    ),
    "time_to_event": MetricDef(
        "time_to_resolution",
        "time_to_event",
        "decrease",
        start_event="contact",
        end_event="contact_resolved",
        horizon_hours=72.0,
    ),
}


def test_every_metric_type_of_the_config_has_one_entry() -> None:
    assert set(TYPES) == set(get_args(MetricType))
    assert all(kind.name == name for name, kind in TYPES.items())
    assert set(METRICS) == set(TYPES)  # this file tests every entry


def test_proportion_arm_is_bernoulli_of_users_with_the_event() -> None:
    # 10 users, 3 with an order: p = 0.3, p(1 − p) = 0.21
    row = {"n": 10, "sum_x": 3.0, "sum_xx": 3.0}
    stats = arm_stats(METRICS["proportion"], row)
    assert stats.n == 10
    assert stats.mean == pytest.approx(0.3)
    assert stats.var == pytest.approx(0.21)


def test_mean_arm_has_the_sample_mean_and_unbiased_variance() -> None:
    # x = 1, 2, 3, 6: Σx 12, Σx² 50 → mean 3, var (50 − 144/4) / 3 = 14/3
    row = {"n": 4, "sum_x": 12.0, "sum_xx": 50.0}
    stats = arm_stats(METRICS["mean"], row)
    assert stats.mean == pytest.approx(3.0)
    assert stats.var == pytest.approx(14 / 3)


def test_ratio_arm_has_the_ratio_of_sums_and_delta_method_variance() -> None:
    # x = 1, 2, 0, 3 and y = 2, 2, 1, 3: Σx 6, Σy 8, Σx² 14, Σy² 18, Σxy 15.
    # R = 0.75; var_x 5/3, var_y 2/3, cov 1; (5/3 − 2·0.75·1 + 0.75²·2/3) / 2² = 13/96
    row = {"n": 4, "sum_x": 6.0, "sum_y": 8.0, "sum_xx": 14.0, "sum_yy": 18.0}
    stats = arm_stats(METRICS["ratio"], {**row, "sum_xy": 15.0})
    assert stats.mean == pytest.approx(0.75)
    assert stats.var == pytest.approx(13 / 96)


def test_nps_arm_reads_promoter_and_detractor_counts() -> None:
    # 10 responders: 5 promoters, 3 passives, 2 detractors → NPS 30,
    # var 100² [(0.5 + 0.2) − (0.5 − 0.2)²] = 6100
    stats = arm_stats(METRICS["nps"], {"n": 10, "sum_x": 5.0, "sum_y": 2.0})
    assert stats == NpsStats(promoters=5, passives=3, detractors=2)
    assert stats.mean == pytest.approx(30.0)
    assert stats.var == pytest.approx(6100.0)


def test_nps_counts_stay_exact_where_scores_squared_would_not() -> None:
    # Σ score² = 100² (P + D) ≈ 2·10¹⁶ is past 2⁵³: decoding P and D from the
    # ±100 sums would need rounding. The counts themselves are exact floats.
    promoters, detractors = 10**12 + 1, 10**12 - 1
    row = {"n": 3 * 10**12, "sum_x": float(promoters), "sum_y": float(detractors)}
    stats = arm_stats(METRICS["nps"], row)
    assert (stats.promoters, stats.passives, stats.detractors) == (
        promoters,
        10**12,
        detractors,
    )


@pytest.mark.parametrize(
    ("type_name", "values", "expected"),
    [
        # counts of orders: none, 1, 3, no row → had the event 0, 1, 1, 0
        ("proportion", [[None, 1.0, 3.0, 0.0]], {"sum_x": [0.0, 1.0, 1.0, 0.0]}),
        # revenue: no order, 2.5 → 0, 2.5 (and squared)
        ("mean", [[None, 2.5]], {"sum_x": [0.0, 2.5], "sum_xx": [0.0, 6.25]}),
        # contacts 1, none; orders none, 2
        (
            "ratio",
            [[1.0, None], [None, 2.0]],
            {"sum_x": [1.0, 0.0], "sum_y": [0.0, 2.0], "sum_xy": [0.0, 0.0]},
        ),
        # contacts of the metric (all categories): none, 2 → 0, 2 (and squared)
        ("categorical", [[None, 2.0]], {"sum_x": [0.0, 2.0], "sum_xx": [0.0, 4.0]}),
        # start events: none, 0, 2 → the user had one: 0, 0, 1
        (
            "time_to_event",
            [[None, 0.0, 2.0], [1.0, None, 1.0]],
            {RESPONDERS: [0, 0, 1]},
        ),
        # last answers 10, 9, 8, 7, 6, 0, none
        (
            "nps",
            [[10.0, 9.0, 8.0, 7.0, 6.0, 0.0, None]],
            {
                RESPONDERS: [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
                "sum_x": [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                "sum_y": [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0],
            },
        ),
    ],
)
def test_user_values_from_component_values(
    type_name: str, values: list[list[float | None]], expected: dict[str, list]
) -> None:
    kind = TYPES[type_name]
    frame = pl.DataFrame(
        {f"c{i}": v for i, v in enumerate(values)},
        schema={f"c{i}": pl.Float64 for i in range(len(values))},
    )
    exprs = kind.user_values([pl.col(c) for c in frame.columns])
    population = {RESPONDERS} if kind.population == "responders" else set()
    assert set(exprs) == set(kind.columns) | population
    out = frame.select(**exprs)
    for column, want in expected.items():
        assert out[column].to_list() == want, column


def test_components_name_the_events_and_aggregates_of_each_type() -> None:
    def shape(type_name: str) -> list[tuple[str, str]]:
        metric = METRICS[type_name]
        return [(c.event, c.aggregate) for c in metric_type(metric).components(metric)]

    assert shape("proportion") == [("order", "count")]
    assert shape("mean") == [("order", "sum")]
    assert shape("ratio") == [("contact", "count"), ("order", "count")]
    assert shape("nps") == [("nps_response", "last")]
    assert shape("categorical") == [("contact", "count")]
    assert shape("time_to_event") == [("contact", "count")]
    metric = METRICS["time_to_event"]
    assert metric_type(metric).log_events(metric) == ("contact_resolved",)


def test_categorical_rows_carry_each_event_category_and_none_for_null() -> None:
    metric = METRICS["categorical"]
    ((name, expr),) = metric_type(metric).row_columns(metric).items()
    assert metric_type(metric).log_columns(metric) == ("reason",)
    rows = pl.DataFrame(
        {
            "event": ["contact", "order", "contact"],
            "reason": ["billing", "billing", None],
        }
    )
    assert rows.select(expr.alias(name))[name].to_list() == ["billing", None, "(none)"]


def test_time_to_event_rows_carry_start_and_end_moments() -> None:
    metric = METRICS["time_to_event"]
    columns = metric_type(metric).row_columns(metric)
    rows = pl.DataFrame(
        {"event": ["contact", "contact_resolved", "order"], "timestamp": [1, 2, 3]}
    )
    out = rows.select(**columns)
    assert out["start:time_to_resolution"].to_list() == [1, None, None]
    assert out["end:time_to_resolution"].to_list() == [None, 2, None]
    with pytest.raises(ValueError, match="survival summaries"):
        arm_stats(metric, {"n": 1})


def test_cuped_covariates_for_cuped_types_and_an_error_for_the_others() -> None:
    row = {"n": 3, "sum_x": 6.0, "sum_xx": 14.0}
    row |= {"pre_x": 3.0, "pre_xx": 5.0, "pre_xy": 9.0}
    cuped = {name for name, kind in TYPES.items() if kind.cuped}
    assert cuped == {"proportion", "mean", "ratio", "nps"}
    for name in ("proportion", "mean"):
        assert covariate_stats(METRICS[name], row) == CovariateStats(
            3, 6.0, 14.0, 3.0, 5.0, 9.0
        )
    for name in set(TYPES) - cuped:
        with pytest.raises(ValueError, match=f"CUPED does not apply to {name}"):
            covariate_stats(METRICS[name], row)


def test_nps_cuped_reads_responders_scores_from_the_counts() -> None:
    # 3 responders: 2 promoters (+100), 1 detractor (−100): Σs = 100, Σs² = 3·100².
    row = {"n": 3, "sum_x": 2.0, "sum_y": 1.0}
    row |= {"pre_x": -100.0, "pre_xx": 10_000.0, "pre_xy": 10_000.0}
    assert covariate_stats(METRICS["nps"], row) == CovariateStats(
        3, 100.0, 30_000.0, -100.0, 10_000.0, 10_000.0
    )


def test_nps_covariate_sums_run_over_responders_and_score_answers() -> None:
    kind = metric_type(METRICS["nps"])
    frame = pl.DataFrame({"now": [9.0, None, 3.0, 7.0], "pre": [2.0, 10.0, None, 8.0]})
    pre = kind.pre_values([pl.col("pre")])
    assert frame.select(**pre)["x0"].to_list() == [-100.0, 100.0, 0.0, 0.0]
    assert kind.entry_sums(pre) == {}
    sums = frame.select(**kind.cuped_sums([pl.col("now")], pre))
    assert sums["pre_x"].to_list() == [-100.0, 0.0, 0.0, 0.0]  # responders only
    assert sums["pre_xx"].to_list() == [10_000.0, 0.0, 0.0, 0.0]
    assert sums["pre_xy"].to_list() == [-10_000.0, 0.0, 0.0, 0.0]


def test_ratio_cuped_reads_every_cross_product() -> None:
    names = ("sum_x", "sum_y", "sum_xx", "sum_yy", "sum_xy", "pre_x", "pre_y")
    names += ("pre_xx", "pre_yy", "pre_x0y0", "pre_xy", "pre_xy0", "pre_yx0")
    row = {"n": 4, **{c: float(i) for i, c in enumerate([*names, "pre_yy0"])}}
    stats = covariate_stats(METRICS["ratio"], row)
    assert stats == RatioCovariateStats(4, *(float(i) for i in range(14)))


def test_only_nps_reads_its_deltas_in_points_and_counts_responders() -> None:
    assert {n for n, kind in TYPES.items() if kind.delta_in_points} == {"nps"}
    responders = {n for n, k in TYPES.items() if k.population == "responders"}
    assert responders == {"nps", "time_to_event"}
