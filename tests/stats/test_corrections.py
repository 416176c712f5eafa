from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

from cxlab.stats.corrections import adjust_p_values

P_VALUES = [0.01, 0.04, 0.03, 0.2, 0.04, 0.5, 0.001]


@pytest.mark.parametrize(("method", "sm_method"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_agrees_with_statsmodels_multipletests(method, sm_method) -> None:
    # statsmodels.stats.multitest.multipletests(P_VALUES, method=sm_method)[1]
    expected = multipletests(P_VALUES, method=sm_method)[1]
    assert adjust_p_values(P_VALUES, method) == pytest.approx(list(expected), rel=1e-12)


def test_holm_golden_values_by_hand() -> None:
    # Holm (1979): sorted 0.01, 0.03, 0.04 -> 3·0.01, max(2·0.03, 0.03), max(0.04, 0.06)
    assert adjust_p_values([0.01, 0.04, 0.03], "holm") == pytest.approx(
        [0.03, 0.06, 0.06]
    )


def test_nan_entries_pass_through_and_are_left_out_of_the_family() -> None:
    got = adjust_p_values([0.01, math.nan, 0.04], "holm")
    assert math.isnan(got[1])
    assert got[0] == pytest.approx(0.02)  # family of 2, not 3
    assert got[2] == pytest.approx(0.04)


def test_none_returns_raw_values_and_empty_input_is_fine() -> None:
    assert adjust_p_values([0.3, 0.01], "none") == [0.3, 0.01]
    assert adjust_p_values([], "holm") == []
    assert math.isnan(adjust_p_values([math.nan], "bh")[0])


def test_unknown_method_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown correction"):
        adjust_p_values([0.1], "bonferroni")  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(0, 1) | st.just(math.nan), min_size=1, max_size=12),
    st.sampled_from([("holm", "holm"), ("bh", "fdr_bh")]),
)
def test_random_families_agree_with_statsmodels(p_values, methods) -> None:
    method, sm_method = methods
    got = np.array(adjust_p_values(p_values, method))
    keep = ~np.isnan(np.array(p_values))
    assert np.array_equal(np.isnan(got), ~keep)
    if keep.any():
        expected = multipletests(np.array(p_values)[keep], method=sm_method)[1]
        np.testing.assert_allclose(got[keep], expected, rtol=1e-12, atol=1e-15)
        assert np.all(got[keep] >= np.array(p_values)[keep] - 1e-15)
