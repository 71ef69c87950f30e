"""Iterative k-core filtering of an interaction list.

Removing a sparse user can push an item below its threshold and vice versa, so MMRec's
preprocessing (``0rating2inter.ipynb``) repeats the filter until nothing changes. The
fixed point is the unique largest sub-graph meeting both thresholds, whatever the order
of removal, so this vectorised version gives the same rows as MMRec's loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KCoreResult:
    """Which rows survive, and how much the filter removed (for the import summary)."""

    keep: np.ndarray  # [n_rows] bool
    rounds: int
    removed_users: int
    removed_items: int

    @property
    def removed_rows(self) -> int:
        return int(len(self.keep) - self.keep.sum())


def kcore_filter(users: np.ndarray, items: np.ndarray, min_user: int, min_item: int) -> KCoreResult:
    """Keep rows until every user has >= ``min_user`` and every item >= ``min_item`` rows.

    ``users`` and ``items`` are integer codes from 0 (e.g. from ``pandas.factorize``).
    A threshold of 0 or 1 leaves that side unconstrained.
    """
    n_users = int(users.max()) + 1 if len(users) else 0
    n_items = int(items.max()) + 1 if len(items) else 0
    keep = np.ones(len(users), dtype=bool)
    rounds = 0
    while True:
        user_counts = np.bincount(users[keep], minlength=n_users)
        item_counts = np.bincount(items[keep], minlength=n_items)
        still_kept = keep & (user_counts[users] >= min_user) & (item_counts[items] >= min_item)
        if still_kept.sum() == keep.sum():
            break
        keep = still_kept
        rounds += 1
    return KCoreResult(
        keep=keep,
        rounds=rounds,
        removed_users=len(np.unique(users)) - len(np.unique(users[keep])),
        removed_items=len(np.unique(items)) - len(np.unique(items[keep])),
    )
