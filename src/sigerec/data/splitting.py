"""Train/valid/test splits, as ``x_label`` values (0 train, 1 valid, 2 test).

The per-user splits work on integer user codes and return one label per row, vectorised:
rows are ordered within each user (randomly or by time), each row gets its rank in that
order, and the rank decides the label. Users too small to give one valid and one test row
stay wholly in train and are counted, so the caller can say so. The cold-item split
holds out whole items instead (item cold-start, as LATTICE and MMHCL evaluate it).
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
    COLD_ITEMS = "cold-items"
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


def cold_item_split(items: np.ndarray, fraction: float, seed: int, eligible: np.ndarray | None = None) -> SplitResult:
    """Hold out :func:`cold_item_count` random items entirely: every row of one half goes to
    valid, of the other half to test, and every row of the other (warm) items to train.

    This is the item cold-start protocol of LATTICE and MMHCL (their Clothing release holds out
    20%: 2,303 valid and 2,303 test items). ``items`` are codes 0..n_items-1; ``eligible``
    (bool per item code) limits the cold items to some items, e.g. those with content. The
    valid half is the smaller one when the count is odd.
    """
    n_items = int(items.max()) + 1
    candidates = np.arange(n_items) if eligible is None else np.flatnonzero(eligible)
    # The caller checks that there are enough candidates (it can name the option to change).
    cold = np.random.default_rng(seed).choice(candidates, size=cold_item_count(n_items, fraction), replace=False)
    split_of_item = np.full(n_items, TRAIN, dtype=np.int8)
    split_of_item[cold[: len(cold) // 2]] = VALID
    split_of_item[cold[len(cold) // 2 :]] = TEST
    return SplitResult(labels=split_of_item[items], users_only_in_train=0)


def cold_item_count(n_items: int, fraction: float) -> int:
    """How many items :func:`cold_item_split` holds out of ``n_items``."""
    return int(fraction * n_items)


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
