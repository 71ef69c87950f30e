"""Candidate sets of the evaluation: every item, the cold items only, or the warm items only.

The item cold-start protocol (LATTICE, MMHCL) ranks each user's held-out items among the items
no one trained on: a cold item has no training interaction and appears in valid or test; a warm
item has at least one training interaction. Both follow from the dataset's splits, so no extra
file says which items are cold. Restricted to a set, a user's ranking holds only that set's
items and only the user's held-out items in it count as relevant; a user with none is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from sigerec.data.dataset import Dataset
from sigerec.errors import SigerecError

CANDIDATE_SETS = ("all", "cold", "warm")


@dataclass(frozen=True)
class ItemTemperature:
    """The dataset's cold and warm item ids (int64, ascending); computed once per dataset."""

    cold: np.ndarray
    warm: np.ndarray

    @classmethod
    def of(cls, dataset: Dataset) -> ItemTemperature:
        trained = np.diff(dataset.train.tocsc().indptr) > 0  # [n_items]
        held_out = np.diff((dataset.valid + dataset.test).tocsc().indptr) > 0  # [n_items]
        return cls(cold=np.flatnonzero(~trained & held_out), warm=np.flatnonzero(trained))

    def candidates(self, candidate_set: str) -> np.ndarray | None:
        """The item ids of ``candidate_set`` (``all``: None, every item)."""
        check_candidate_set(candidate_set)
        return None if candidate_set == "all" else getattr(self, candidate_set)


def check_candidate_set(candidate_set: str) -> None:
    """Refuse a candidate set other than all, cold and warm."""
    if candidate_set not in CANDIDATE_SETS:
        raise SigerecError(f"--candidates must be one of {', '.join(CANDIDATE_SETS)}, got {candidate_set!r}.")


def users_with_relevant_items(ground_truth: sp.csr_matrix, candidates: np.ndarray | None) -> tuple[int, int]:
    """``(evaluated, skipped)``: users with a held-out item among ``candidates``, and users with
    held-out items but none among them (left out of that set's means)."""
    held_out_users = int((np.diff(ground_truth.indptr) > 0).sum())
    if candidates is None:
        return held_out_users, 0
    evaluated = int((np.diff(ground_truth.tocsc()[:, candidates].tocsr().indptr) > 0).sum())
    return evaluated, held_out_users - evaluated
