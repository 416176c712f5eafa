"""Segment breakdowns: the fixed test per dimension value, adjusted across segments."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest
from scipy import stats as sps

from cxlab.config import Experiment, MetricDef, Variant
from cxlab.segments import SEGMENT_COLUMNS, comparisons_note, segment_results

CONVERSION = MetricDef(
    id="conversion", type="proportion", direction="increase", event="order"
)
EXP = Experiment(
    id="exp",
    variants=(Variant("control", 0.5), Variant("treatment", 0.5)),
    control="control",
    start=dt.date(2026, 9, 1),
    primary_metrics=("conversion",),
    dimensions=("platform",),
)


def by_dimension(rows: list[tuple[str, str, str, int, float]]) -> pl.DataFrame:
    """(dimension, segment, variant, n, successes) → a by_dimension table."""
    return pl.DataFrame(
        [
            {
                "experiment_id": "exp",
                "metric": "conversion",
                "variant": variant,
                "dimension": dim,
                "segment": seg,
                "n": n,
                "sum_x": x,
                "sum_xx": x,  # a 0/1 value: x² = x
                "sum_y": 0.0,
                "sum_yy": 0.0,
                "sum_xy": 0.0,
            }
            for dim, seg, variant, n, x in rows
        ]
    )


TABLE = by_dimension(
    [
        ("platform", "web", "control", 1000, 100.0),
        ("platform", "web", "treatment", 1000, 130.0),
        ("platform", "ios", "control", 2000, 200.0),
        ("platform", "ios", "treatment", 2000, 210.0),
        ("platform", "ios", "other_arm", 2000, 500.0),  # another treatment: ignored
    ]
)


def wald(p_c: float, n_c: int, p_t: float, n_t: int) -> float:
    """Two-sided unpooled two-proportion z-test p-value, written out by hand."""
    se = math.sqrt(p_c * (1 - p_c) / n_c + p_t * (1 - p_t) / n_t)
    return 2 * sps.norm.sf(abs(p_t - p_c) / se)


def test_each_segment_gets_the_fixed_test_of_its_own_arms() -> None:
    out = segment_results(TABLE, EXP, CONVERSION, "treatment")
    assert tuple(out.columns) == SEGMENT_COLUMNS
    assert out["segment"].to_list() == ["ios", "web"]
    web = out.row(1, named=True)
    assert web["control_n"] == 1000
    assert web["treatment_n"] == 1000
    assert web["control_value"] == pytest.approx(0.10)
    assert web["treatment_value"] == pytest.approx(0.13)
    assert web["abs_delta"] == pytest.approx(0.03)
    assert web["rel_delta"] == pytest.approx(0.30)
    # 0.10 vs 0.13 on 1000 each: se = sqrt(.09/1000 + .1131/1000) = 0.014252, z = 2.105
    assert web["p_value"] == pytest.approx(wald(0.10, 1000, 0.13, 1000), rel=1e-9)
    assert web["p_value"] == pytest.approx(0.03529, abs=1e-4)


def test_p_values_are_holm_adjusted_across_segments() -> None:
    out = segment_results(TABLE, EXP, CONVERSION, "treatment")
    p_ios = wald(0.10, 2000, 0.105, 2000)
    p_web = wald(0.10, 1000, 0.13, 1000)
    assert p_web < p_ios
    # Holm with 2 tests: the smallest × 2, the next max(previous, itself × 1).
    assert out["adjusted_p_value"].to_list() == pytest.approx(
        [max(2 * p_web, p_ios), 2 * p_web]
    )
    # 2 × 0.0353 = 0.0706 ≥ 0.05: the raw web win does not survive adjustment.
    assert out["significant"].to_list() == [False, False]
    none = segment_results(TABLE, EXP, CONVERSION, "treatment", correction="none")
    assert none["significant"].to_list() == [False, True]


def test_experiment_without_dimension_rows_gives_an_empty_typed_frame() -> None:
    out = segment_results(TABLE.clear(), EXP, CONVERSION, "treatment")
    assert out.is_empty()
    assert tuple(out.columns) == SEGMENT_COLUMNS
    assert out.schema["significant"] == pl.Boolean


def test_comparisons_note_states_the_expected_false_positives() -> None:
    note = comparisons_note(8, 0.05, "holm")
    assert note.startswith("8 segment tests")
    assert "about 0.4 of them" in note  # 8 × 0.05
    assert "Holm" in note
    assert "not adjusted" in comparisons_note(3, 0.05, "none")
