"""Results are JSON-friendly: plain Python floats, ints, bools, strings, tuples."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import pytest

from cxlab.stats.aggregates import CovariateStats, ProportionStats
from cxlab.stats.bayesian import bayesian_test
from cxlab.stats.cuped import cuped_adjust
from cxlab.stats.fixed import fixed_test
from cxlab.stats.power import required_users, sequential_inflation
from cxlab.stats.sequential import group_sequential_test, sequential_test
from cxlab.stats.srm import sequential_srm, srm_test

C, T = ProportionStats(10_012, 1_202), ProportionStats(9_987, 1_252)
COV = CovariateStats(100, 50.0, 80.0, 40.0, 60.0, 30.0)


def _plain(value: object) -> bool:
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or type(value) in (float, int, bool, str)


@pytest.mark.parametrize(
    "result",
    [
        fixed_test(C, T, alpha=0.05),
        fixed_test(ProportionStats(1, 0), T, alpha=0.05),
        sequential_test(C, T, alpha=0.05),
        group_sequential_test([(C, T)], alpha=0.05, planned_users=40_000),
        group_sequential_test([(C, T)], alpha=0.05, planned_users=4_000),
        bayesian_test(C, T, alpha=0.05, direction="increase"),
        srm_test([10_012, 9_987], [1, 1]),
        sequential_srm([[10_012, 9_987]], [1, 1]),
        cuped_adjust(COV, COV),
        required_users(0.12, 0.1056, 0.05),
        sequential_inflation(0.12, 0.1056, 0.05),
    ],
    ids=lambda r: type(r).__name__,
)
def test_result_fields_are_plain_python_values(result) -> None:
    data = asdict(result)
    assert _plain(data), data
    text = json.dumps(data)  # NaN becomes NaN here; the serializer writes null
    assert json.loads(text).keys() == data.keys()


def test_degenerate_fields_are_nan_not_zero() -> None:
    res = fixed_test(ProportionStats(1, 0), T, alpha=0.05)
    assert math.isnan(res.abs_delta)
    assert math.isnan(res.p_value)
