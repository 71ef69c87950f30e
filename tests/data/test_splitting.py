"""Per-user splits: MMRec's random rule, temporal leave-one-out, and given labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sigerec.data.splitting import (
    TEST,
    TRAIN,
    VALID,
    labels_from_column,
    mmrec_split,
    temporal_leave_one_out_split,
)


def split_sizes(labels: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(n) for n in np.bincount(labels, minlength=3))


@pytest.mark.parametrize(
    ("n_interactions", "expected"),
    [
        (3, (1, 1, 1)),  # n < 10: n-2 train, 1 valid, 1 test
        (5, (3, 1, 1)),
        (9, (7, 1, 1)),
        (10, (8, 1, 1)),  # held = int(0.2 * 10) = 2 -> valid 1, test 1
        (15, (12, 1, 2)),  # held = 3 -> valid 3 // 2 = 1, test 2
        (23, (19, 2, 2)),  # held = int(4.6) = 4 -> valid 2, test 2
    ],
)
def test_mmrec_split_sizes_follow_mmrec_rule(n_interactions, expected):
    users = np.zeros(n_interactions, dtype=np.int64)
    assert split_sizes(mmrec_split(users, seed=0).labels) == expected


def test_mmrec_split_counts_each_user_separately_when_rows_interleave():
    users = np.array([0, 1] * 10 + [1] * 5)  # user 0: 10 rows, user 1: 15 rows, mixed order
    labels = mmrec_split(users, seed=3).labels
    assert split_sizes(labels[users == 0]) == (8, 1, 1)
    assert split_sizes(labels[users == 1]) == (12, 1, 2)


def test_users_with_fewer_than_three_interactions_stay_in_train_and_are_counted():
    users = np.array([0, 0, 1, 2, 2, 2])
    result = mmrec_split(users, seed=0)
    assert result.labels[users != 2].tolist() == [TRAIN, TRAIN, TRAIN]
    assert result.users_only_in_train == 2


def test_mmrec_split_is_deterministic_for_a_seed():
    users = np.repeat(np.arange(20), 12)
    assert np.array_equal(mmrec_split(users, seed=7).labels, mmrec_split(users, seed=7).labels)


def test_mmrec_split_differs_across_seeds():
    users = np.repeat(np.arange(20), 12)
    assert not np.array_equal(mmrec_split(users, seed=7).labels, mmrec_split(users, seed=8).labels)


def test_temporal_loo_holds_out_the_last_two_by_time():
    users = np.array([0, 0, 0, 0, 1, 1, 1])
    times = np.array([40, 10, 30, 20, 5, 7, 6])
    labels = temporal_leave_one_out_split(users, times).labels
    assert labels.tolist() == [TEST, TRAIN, VALID, TRAIN, TRAIN, TEST, VALID]


def test_temporal_loo_keeps_file_order_for_equal_times():
    users = np.zeros(4, dtype=np.int64)
    times = np.array([1, 1, 1, 1])
    assert temporal_leave_one_out_split(users, times).labels.tolist() == [TRAIN, TRAIN, VALID, TEST]


def test_given_labels_accept_numbers_and_names():
    values = pd.Series(["0", "1", "2", "train", "Valid", " TEST ", "val"])
    assert labels_from_column(values).tolist() == [TRAIN, VALID, TEST, TRAIN, VALID, TEST, -1]
