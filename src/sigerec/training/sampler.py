"""Triples (user, positive, negative) for BPR-style training, one epoch at a time."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch


def epoch_generator(seed: int, epoch: int) -> np.random.Generator:
    """The RNG of one epoch: a function of (seed, epoch) only, so a resumed run draws
    exactly the batches an uninterrupted run would have drawn."""
    return np.random.default_rng([seed, epoch])


class TripletSampler:
    """Shuffled training pairs with one uniform negative each (MMRec's protocol).

    Negatives are drawn uniformly from the items that occur in training and redrawn
    while the user has interacted with them in training, all vectorised per epoch.
    """

    def __init__(self, train: sp.csr_matrix, batch_size: int):
        train = sp.csr_matrix(train)
        train.sort_indices()
        self.n_items = train.shape[1]
        self.batch_size = batch_size
        self.users = np.repeat(np.arange(train.shape[0], dtype=np.int64), np.diff(train.indptr))
        self.items = train.indices.astype(np.int64)
        self.candidate_items = np.unique(self.items)
        # A user who has every candidate item has no possible negative: skip their pairs
        # (counted, so callers can report them) rather than loop forever.
        full_users = np.flatnonzero(np.diff(train.indptr) >= len(self.candidate_items))
        self.skipped_users = len(full_users)
        self.skipped_pairs = 0
        if self.skipped_users:
            keep = ~np.isin(self.users, full_users)
            self.skipped_pairs = int((~keep).sum())
            self.users, self.items = self.users[keep], self.items[keep]
        # Sorted (user * n_items + item) keys make "does u have i" a binary search.
        self.train_keys = self.users * self.n_items + self.items

    def __len__(self) -> int:
        return math.ceil(len(self.users) / self.batch_size)

    def sample_negatives(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        negatives = self.candidate_items[rng.integers(0, len(self.candidate_items), len(users))]
        pending = np.flatnonzero(self._user_has(users, negatives))
        while len(pending):
            redraw = self.candidate_items[rng.integers(0, len(self.candidate_items), len(pending))]
            negatives[pending] = redraw
            pending = pending[self._user_has(users[pending], redraw)]
        return negatives

    def _user_has(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.n_items + items
        position = np.searchsorted(self.train_keys, keys)
        position = np.minimum(position, len(self.train_keys) - 1)
        return self.train_keys[position] == keys

    def epoch(self, seed: int, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Batches of (users, positives, negatives) as int64 tensors for one epoch."""
        rng = epoch_generator(seed, epoch)
        order = rng.permutation(len(self.users))
        users, positives = self.users[order], self.items[order]
        negatives = self.sample_negatives(users, rng)
        for start in range(0, len(users), self.batch_size):
            stop = start + self.batch_size
            yield (
                torch.from_numpy(users[start:stop]),
                torch.from_numpy(positives[start:stop]),
                torch.from_numpy(negatives[start:stop]),
            )
