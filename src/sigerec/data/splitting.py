"""Per-user train/valid/test splits, as ``x_label`` values (0 train, 1 valid, 2 test).

Every split works on integer user codes and returns one label per row, vectorised:
rows are ordered within each user (randomly or by time), each row gets its rank in that
order, and the rank decides the label. Users too small to give one valid and one test row
stay wholly in train and are counted, so the caller can say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
import pandas as pd

TRAIN, VALID, TEST = 0, 1, 2
UNRECOGNISED_LABEL = -1
MIN_INTERACTIONS_TO_SPLIT = 3  # one train, one valid and one test row
LABEL_NAMES = {"train": TRAIN, "valid": VALID, "test": TEST, "0": TRAIN, "1": VALID, "2": TEST}


class SplitMethod(str, Enum):
    """How ``sigerec data import`` assigns x_label."""

    MMREC = "mmrec"
    TEMPORAL_LOO = "temporal-loo"
    NONE = "none"


@dataclass(frozen=True)
class SplitResult:
    labels: np.ndarray  # [n_rows] int8, 0/1/2 = train/valid/test
    users_only_in_train: int  # users with < 3 interactions, all their rows in train


def mmrec_held_out_sizes(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(valid, test) sizes of users with ``counts`` interactions, by MMRec's rule.

    From MMRec's ``preprocessing/1splitting.ipynb``: fewer than 10 interactions hold out
    one valid and one test row; otherwise ``int(0.2 * n)`` rows are held out, half
    (rounded down) to valid and the rest to test. ``n // 5`` equals ``int(n * 0.2)`` for
    every integer n and avoids float rounding.
    """
    held = np.where(counts < 10, 2, counts // 5)
    valid = np.where(counts < 10, 1, held // 2)
    return valid, held - valid


def mmrec_split(users: np.ndarray, seed: int) -> SplitResult:
    """MMRec's per-user random split: shuffle each user's rows, then train, valid, test.

    Upstream shuffles with an unseeded ``df.sample``; here the order comes from
    ``numpy.random.default_rng(seed)`` so that a seed reproduces the split.
    """
    random_key = np.random.default_rng(seed).permutation(len(users))
    order = np.lexsort((random_key, users))
    rank, counts = _rank_within_user(users, order)
    valid, test = mmrec_held_out_sizes(counts)
    return _labels_by_rank(users, rank, counts, valid, test)


def temporal_leave_one_out_split(users: np.ndarray, timestamps: np.ndarray) -> SplitResult:
    """Each user's last interaction is test, the second-last valid, the rest train.

    Ties in time keep their order in the file (the sort is stable).
    """
    order = np.lexsort((timestamps, users))
    rank, counts = _rank_within_user(users, order)
    one = np.ones_like(counts)
    return _labels_by_rank(users, rank, counts, one, one)


def labels_from_column(values: pd.Series) -> np.ndarray:
    """A given split column (0/1/2 or train/valid/test, any case) as labels; -1 where unrecognised."""
    normalised = values.astype(str).str.strip().str.lower()
    return normalised.map(LABEL_NAMES).fillna(UNRECOGNISED_LABEL).to_numpy(dtype=np.int8)


def _rank_within_user(users: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: its 0-based position in its user's ``order``, and the user's row count."""
    _, user_index, rows_per_user = np.unique(users, return_inverse=True, return_counts=True)
    first_position = np.concatenate(([0], np.cumsum(rows_per_user)[:-1]))  # in the sorted order
    rank = np.empty(len(users), dtype=np.int64)
    rank[order] = np.arange(len(users)) - first_position[user_index[order]]
    return rank, rows_per_user[user_index]


def _labels_by_rank(
    users: np.ndarray, rank: np.ndarray, counts: np.ndarray, valid: np.ndarray, test: np.ndarray
) -> SplitResult:
    """Train for the first ``n - valid - test`` ranks, then valid, then test."""
    too_small = counts < MIN_INTERACTIONS_TO_SPLIT
    valid = np.where(too_small, 0, valid)
    test = np.where(too_small, 0, test)
    labels = np.full(len(rank), TRAIN, dtype=np.int8)
    labels[rank >= counts - valid - test] = VALID
    labels[rank >= counts - test] = TEST
    return SplitResult(labels=labels, users_only_in_train=len(np.unique(users[too_small])))
