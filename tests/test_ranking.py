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


def _full_stable_ranking(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The reference tie rule: sort the whole row, equal scores keep ascending item ids."""
    return torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]


# --- top_k_items on score matrices (the evaluator's form) -----------------------------------------------------------------------


def test_top_k_ranks_items_by_descending_score():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7], [4.0, 3.0, 2.0, 1.0]])
    assert top_k_items(scores, 3).tolist() == [[1, 3, 2], [0, 1, 2]]


def test_equal_scores_inside_the_top_k_rank_the_lower_item_id_first():
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.9, 0.1]])
    assert top_k_items(scores, 4).tolist() == [[1, 3, 0, 2]]


def test_ties_across_the_top_k_boundary_keep_the_lower_item_ids():
    scores = torch.tensor([[1.0, 5.0, 1.0, 1.0, 5.0, 1.0]])
    assert top_k_items(scores, 3).tolist() == [[1, 4, 0]]
    assert top_k_items(scores, 4).tolist() == [[1, 4, 0, 2]]


def test_top_k_of_a_large_catalogue_with_many_ties_matches_a_full_stable_sort():
    generator = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 6, (50, 3000), generator=generator).float()  # hundreds of ties per row
    scores[:5] = torch.randn(5, 3000, generator=generator)  # and a few rows without ties
    for k in (1, 7, 50, 200):
        assert torch.equal(top_k_items(scores, k), _full_stable_ranking(scores, k))


def test_rows_of_only_minus_infinity_rank_items_by_id():
    scores = torch.full((2, 1000), float("-inf"))
    scores[1, 500] = 0.0
    assert top_k_items(scores, 3).tolist() == [[0, 1, 2], [500, 0, 1]]


def test_k_larger_than_the_catalogue_returns_every_item():
    scores = torch.tensor([[0.2, 0.8, 0.5]])
    assert top_k_items(scores, 10).tolist() == [[1, 2, 0]]
