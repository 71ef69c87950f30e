"""Holm's correction on hand-worked p-values and the Wilcoxon wrapper on data whose exact p is known."""

from __future__ import annotations

import pytest

from sigerec.evaluation.significance import holm, paired_wilcoxon

# --- holm ------------------------------------------------------------------------------------


def test_holm_multiplies_the_ith_smallest_by_m_minus_i_and_keeps_the_order_given():
    # Sorted: 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 = 0.04 -> raised to 0.06 (step-down).
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_holm_caps_adjusted_p_values_at_one():
    # 0.6 * 2 = 1.2 -> 1; 0.7 * 1 = 0.7 -> raised to 1 (never below the one before).
    assert holm([0.7, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([0.6, 0.2]) == pytest.approx([0.6, 0.4])


def test_holm_leaves_a_single_p_value_unchanged():
    assert holm([0.042]) == [0.042]
    assert holm([]) == []


def test_holm_keeps_equal_p_values_equal():
    assert holm([0.01, 0.01]) == pytest.approx([0.02, 0.02])


# --- paired_wilcoxon -------------------------------------------------------------------------


def test_wilcoxon_of_six_pairs_all_in_one_direction_is_two_over_two_to_the_sixth():
    # Exact null distribution: each of the 2^6 sign patterns is equally likely; "all positive"
    # and "all negative" are the two most extreme, so the two-sided p is 2 / 64.
    better = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    worse = [0.8, 0.6, 0.4, 0.2, 0.0, -0.2]  # differences 0.1 ... 0.6, no ties
    assert paired_wilcoxon(better, worse) == pytest.approx(2 / 64)


def test_wilcoxon_is_symmetric_in_its_two_samples():
    a, b = [0.3, 0.1, 0.5, 0.2, 0.9, 0.4], [0.1, 0.2, 0.1, 0.6, 0.3, 0.0]
    assert paired_wilcoxon(a, b) == pytest.approx(paired_wilcoxon(b, a))


def test_wilcoxon_drops_users_on_which_the_two_samples_agree():
    # zero_method="wilcox": pairs with equal values (e.g. both models miss every held-out item)
    # carry no sign, so adding them leaves the p of the six differing pairs unchanged.
    better = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.0, 0.0, 1.0]
    worse = [0.8, 0.6, 0.4, 0.2, 0.0, -0.2, 0.0, 0.0, 1.0]
    assert paired_wilcoxon(better, worse) == pytest.approx(2 / 64)


def test_wilcoxon_of_identical_samples_is_one():
    assert paired_wilcoxon([0.0, 0.5, 1.0], [0.0, 0.5, 1.0]) == 1.0


def test_wilcoxon_refuses_samples_of_different_lengths():
    with pytest.raises(ValueError, match="one length"):
        paired_wilcoxon([0.1, 0.2], [0.1])
