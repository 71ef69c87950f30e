"""Significance of a difference between two models on the same test users.

``sigerec compare`` pairs users: each user's metric under one model against the same user's
metric under the other, so the test sees how consistently one model is better across users,
not only whether the means differ. The Wilcoxon signed-rank test asks that of the paired
differences without assuming they are normal (per-user Recall and NDCG are far from normal:
mostly zeros, a few ones). Comparing the best model with several others makes several tests,
so their p-values are Holm-corrected (Holm, 1979), which keeps the chance of any false
"significant" at most alpha without assuming the tests are independent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Users whose two values are equal are dropped before ranking (Wilcoxon's original rule,
# scipy's default): they say nothing about which model is better. Per-user metrics hold many
# such users (both models miss every held-out item), so the test is over the users on which
# the models differ.
ZERO_METHOD = "wilcox"


def paired_wilcoxon(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test on the pairs ``(a[i], b[i])``.

    Zero differences are dropped (:data:`ZERO_METHOD`); when every difference is zero the two
    samples are identical and the p-value is 1. ``scipy.stats.wilcoxon`` chooses the exact
    distribution for few users without ties and the normal approximation otherwise.
    """
    from scipy.stats import wilcoxon

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_wilcoxon: expected two 1-d samples of one length, got {a.shape} and {b.shape}")
    if not np.any(a != b):
        return 1.0  # scipy divides by a zero variance here
    return float(wilcoxon(a, b, zero_method=ZERO_METHOD, alternative="two-sided").pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given.

    Sorted ascending, the i-th smallest of m p-values (i from 0) is multiplied by m - i, capped
    at 1, and never allowed below the adjusted value before it, so rejecting at
    ``adjusted <= alpha`` is Holm's procedure.
    """
    m = len(p_values)
    adjusted = [0.0] * m
    running_max = 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running_max = max(running_max, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running_max
    return adjusted
