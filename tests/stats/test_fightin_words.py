from __future__ import annotations

import math

import numpy as np
import pytest

from cxlab.stats.fightin_words import log_odds_z


def test_hand_worked_two_words_with_pooled_prior() -> None:
    # a = (3, 1), b = (1, 3), prior α = pooled counts (4, 4), α₀ = 8, n_a = n_b = 4.
    # Word 1: δ = log[(3+4)/(4+8−3−4)] − log[(1+4)/(4+8−1−4)] = log(7/5) − log(5/7)
    #         σ² = 1/(3+4) + 1/(1+4); z = δ/σ = 1.149271... (Monroe et al. 2008 eq. 22)
    expected = (math.log(7 / 5) - math.log(5 / 7)) / math.sqrt(1 / 7 + 1 / 5)
    z = log_odds_z([3, 1], [1, 3], [4, 4])
    assert z == pytest.approx([expected, -expected], rel=1e-12)
    assert expected == pytest.approx(1.1492714809, rel=1e-9)


def test_rare_words_do_not_dominate_frequent_ones() -> None:
    # "late" 60 vs 20 of 200 words each; "zebra" 2 vs 0. Raw log-odds of zebra
    # would be infinite; with the pooled prior its z stays below late's.
    a = np.array([60.0, 2.0, 138.0])
    b = np.array([20.0, 0.0, 180.0])
    z = log_odds_z(a, b, a + b)
    assert z[0] > 3 > z[1] > 0
    assert z[2] < 0


def test_swapping_groups_flips_the_sign_and_empty_input_is_empty() -> None:
    a, b = [5.0, 1.0, 9.0], [2.0, 4.0, 9.0]
    prior = np.add(a, b)
    np.testing.assert_allclose(log_odds_z(a, b, prior), -log_odds_z(b, a, prior))
    assert log_odds_z([], [], []).size == 0


def test_non_positive_prior_or_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        log_odds_z([1.0], [0.0], [0.0])
    with pytest.raises(ValueError, match="one length"):
        log_odds_z([1.0, 2.0], [0.0], [1.0, 1.0])
