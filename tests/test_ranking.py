"""The one top-k rule (sigerec.ranking): best first, equal scores to the lower id, in every form."""

import numpy as np
import pytest
import torch

from sigerec.ranking import top_k, top_k_entries, top_k_items


def _scores_with_ties() -> np.ndarray:
    """[20, 3000] scores of six values, so every row ties hundreds of times inside and across any top k."""
    scores = np.random.default_rng(0).integers(0, 6, (20, 3000)).astype(np.float32)
    scores[0, :5] = 9.0  # a row whose top 5 tie with one another
    scores[1] = -np.inf  # a row of only -inf (masked items)
    scores[1, 2000] = 0.0
    return scores


def _top_k_entries_as_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """``top_k_entries`` of the matrix's entries, given in a shuffled order, as [n, k] ids."""
    order = np.random.default_rng(1).permutation(scores.size)
    rows, cols = np.divmod(order, scores.shape[1])
    best_rows, best_cols, _ = top_k_entries(rows, cols, scores[rows, cols], k)
    assert np.array_equal(best_rows, np.repeat(np.arange(len(scores)), k))
    return best_cols.reshape(len(scores), k)


def _top_k_of_shuffled_ids(scores: np.ndarray, k: int) -> np.ndarray:
    """``top_k`` of each row's scores handed over with their ids in a shuffled order."""
    shuffle = np.random.default_rng(2).permutation(scores.shape[1])
    return np.stack([top_k(row[shuffle], k, ids=shuffle)[0] for row in scores])


FORMS = {
    "torch rows": lambda scores, k: top_k_items(torch.from_numpy(scores), k).numpy(),
    "numpy rows": top_k_items,
    "integer tensor rows": lambda scores, k: top_k_items(torch.from_numpy(scores).clamp(-1).long(), k).numpy(),
    "one vector": lambda scores, k: np.stack([top_k(row, k)[0] for row in scores]),
    "one vector with ids": _top_k_of_shuffled_ids,
    "sparse entries": _top_k_entries_as_rows,
}


@pytest.mark.parametrize("form", FORMS)
def test_every_form_ranks_best_first_and_equal_scores_by_the_lower_id(form):
    scores = _scores_with_ties()
    for k in (1, 5, 7, 50, 1000):  # 1000: too few items per block, the rows are ranked without a bound
        # The rule's definition: a stable sort of the whole row keeps ascending ids among equal scores.
        expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        assert np.array_equal(FORMS[form](scores, k), expected), f"k={k}"
