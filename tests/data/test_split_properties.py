"""Properties of ``data import``'s filters and splits: no row is lost or invented.

- the k-core keeps exactly the largest set of rows in which every user and item meets its
  threshold (every kept row qualifies; no removed row could be put back);
- a split labels every row, fills valid and test by MMRec's sizes for each user with 3 or more
  rows, and keeps smaller users wholly in train (counted);
- a given split column maps only 0/1/2 and train/valid/test; anything else is flagged, never guessed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from sigerec.data.kcore import kcore_filter
from sigerec.data.splitting import (
    TEST,
    TRAIN,
    UNRECOGNISED_LABEL,
    VALID,
    labels_from_column,
    mmrec_held_out_sizes,
    mmrec_split,
    temporal_leave_one_out_split,
)

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None)
CODES = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=40)


def counts_meet(users: np.ndarray, items: np.ndarray, min_user: int, min_item: int) -> bool:
    return bool(
        (np.bincount(users)[np.unique(users)] >= min_user).all()
        and (np.bincount(items)[np.unique(items)] >= min_item).all()
    )


@PROPERTY
@given(CODES, st.integers(0, 4), st.integers(0, 4))
def test_kcore_keeps_the_largest_set_of_rows_meeting_both_thresholds(pairs, min_user, min_item):
    users, items = (np.array(column) for column in zip(*pairs))
    core = kcore_filter(users, items, min_user, min_item)
    kept = core.keep
    assert counts_meet(users[kept], items[kept], min_user, min_item) or not kept.any()
    for row in np.flatnonzero(~kept):  # putting any removed row back breaks a threshold, alone or not
        with_row = kept.copy()
        with_row[row] = True
        assert not counts_meet(users[with_row], items[with_row], min_user, min_item)
    assert core.removed_rows == len(users) - kept.sum()
    assert core.removed_users == len(set(users)) - len(set(users[kept]))


@PROPERTY
@given(st.lists(st.integers(0, 5), min_size=1, max_size=60), st.integers(0, 2**32 - 1))
def test_mmrec_split_labels_every_row_with_mmrecs_sizes(users, seed):
    users = np.array(users)
    result = mmrec_split(users, seed)
    assert len(result.labels) == len(users) and set(result.labels.tolist()) <= {TRAIN, VALID, TEST}
    small = 0
    for user in np.unique(users):
        labels = result.labels[users == user]
        if len(labels) < 3:
            assert (labels == TRAIN).all()
            small += 1
            continue
        valid, test = mmrec_held_out_sizes(np.array([len(labels)]))
        assert ((labels == VALID).sum(), (labels == TEST).sum()) == (valid[0], test[0])
    assert result.users_only_in_train == small


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 5)), min_size=1, max_size=40))
def test_temporal_split_holds_out_each_users_last_two_rows_in_time(rows):
    users, times = (np.array(column) for column in zip(*rows))
    labels = temporal_leave_one_out_split(users, times).labels
    for user in np.unique(users):
        mine = np.flatnonzero(users == user)
        if len(mine) < 3:
            assert (labels[mine] == TRAIN).all()
            continue
        in_time_order = mine[np.argsort(times[mine], kind="stable")]  # ties: file order
        assert labels[in_time_order].tolist() == [TRAIN] * (len(mine) - 2) + [VALID, TEST]


@PROPERTY
@given(st.lists(st.one_of(st.sampled_from(["0", "1", "2", "train", "Valid", " TEST "]), st.text(max_size=4))))
def test_a_split_column_maps_only_known_labels_and_flags_the_rest(values):
    labels = labels_from_column(pd.Series(values, dtype=object))
    known = {"0": TRAIN, "1": VALID, "2": TEST, "train": TRAIN, "valid": VALID, "test": TEST}
    assert labels.tolist() == [known.get(v.strip().lower(), UNRECOGNISED_LABEL) for v in values]
