from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from cxlab.stats.srm import (
    sequential_srm,
    srm_log_bayes_factor,
    srm_p_values,
    srm_test,
)


def test_contract_example_srm_golden() -> None:
    # CONTRACT §4: users 10012 vs 9987 at 50/50 -> "srm": {"p_value": 0.860, "ok": true}
    # scipy.stats.chisquare([10012, 9987]) -> p 0.8596803
    res = srm_test([10_012, 9_987], [0.5, 0.5])
    assert res.p_value == pytest.approx(0.8596803, abs=1e-7)
    assert res.ok is True
    assert res.expected == pytest.approx((9_999.5, 9_999.5))


def test_agrees_with_scipy_chisquare_for_unequal_weights() -> None:
    observed, weights = [5_120, 2_400, 2_480], [2, 1, 1]
    expected = np.array([0.5, 0.25, 0.25]) * sum(observed)
    # scipy.stats.chisquare(observed, f_exp=expected)
    ref = sps.chisquare(observed, f_exp=expected).pvalue
    res = srm_test(observed, weights)
    assert res.p_value == pytest.approx(ref, rel=1e-12)
    assert res.ok is bool(ref >= 0.001)


def test_mismatch_is_flagged_below_threshold() -> None:
    res = srm_test([10_500, 9_500], [1, 1])
    assert res.p_value < 0.001
    assert res.ok is False


def test_all_zero_counts_give_nan_ok_and_reason() -> None:
    res = srm_test([0, 0], [1, 1])
    assert math.isnan(res.p_value)
    assert res.ok is True
    assert res.reason is not None


@pytest.mark.parametrize("weights", [[1, 1, 1], [1, 0], [1, -1], [1, math.nan]])
def test_bad_weights_are_rejected(weights) -> None:
    with pytest.raises(ValueError, match="weights"):
        srm_test([10, 10], weights)


def test_vectorised_p_values_equal_scalar_calls() -> None:
    counts = np.array([[[100, 120], [0, 0]], [[500, 480], [7, 3]]])
    p = srm_p_values(counts, [1, 1])
    assert p.shape == (2, 2)
    assert math.isnan(p[0, 1])
    assert p[1, 1] == pytest.approx(srm_test([7, 3], [1, 1]).p_value)


def test_bayes_factor_matches_dirichlet_multinomial_by_hand() -> None:
    # Lindon & Malek (2022) Dirichlet-multinomial BF; for k = 2 a beta-binomial:
    # BF = B(a+x, b+y) / B(a, b) / (θ^x (1−θ)^y), here a = b = 5
    # (concentration 10, θ = 1/2)
    x, y = 30, 12
    log_bf = (
        math.lgamma(5 + x)
        + math.lgamma(5 + y)
        - math.lgamma(10 + x + y)
        - (2 * math.lgamma(5) - math.lgamma(10))
        - (x + y) * math.log(0.5)
    )
    got = srm_log_bayes_factor([x, y], [1, 1], concentration=10.0)
    assert got == pytest.approx(log_bf, rel=1e-12)


def test_sequential_srm_uses_running_maximum_of_bayes_factor() -> None:
    history = [[500, 700], [1_000, 1_060], [2_000, 2_010]]
    res = sequential_srm(history, [1, 1])
    log_bf = srm_log_bayes_factor(np.array(history), [1, 1], concentration=1_000.0)
    assert res.p_value == pytest.approx(min(1.0, math.exp(-log_bf.max())), rel=1e-12)
    assert res.ok is (res.p_value >= 0.001)


def test_sequential_srm_flags_a_persistent_mismatch() -> None:
    history = [[k * 520, k * 480] for k in range(1, 29)]
    assert sequential_srm(history, [1, 1]).ok is False


def test_sequential_srm_on_balanced_counts_is_ok() -> None:
    history = [[k * 500, k * 500 + 3] for k in range(1, 29)]
    res = sequential_srm(history, [1, 1])
    assert res.p_value == 1.0
    assert res.ok is True


def test_sequential_srm_without_users_gives_nan_ok() -> None:
    res = sequential_srm([[0, 0]], [1, 1])
    assert math.isnan(res.p_value)
    assert res.ok is True
    assert res.reason is not None
    assert math.isnan(sequential_srm([], [1, 1]).p_value)
