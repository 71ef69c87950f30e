"""Full-ranking evaluation: deterministic top K, masking, chunking and averaging."""

from math import log2

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sigerec.errors import SigerecError
from sigerec.evaluation.evaluator import evaluate
from sigerec.evaluation.metrics import metric_keys

NEG_INF = float("-inf")


def _csr(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    """Binary [len(rows), n_items] matrix whose row u holds the items rows[u]."""
    matrix = sp.lil_matrix((len(rows), n_items), dtype=np.float32)
    for user, items in enumerate(rows):
        for item in items:
            matrix[user, item] = 1.0
    return matrix.tocsr()


def _scorer(scores: list[list[float]] | torch.Tensor):
    """score_users over a fixed score table; returns a fresh tensor as the evaluator expects."""
    table = torch.as_tensor(scores, dtype=torch.float32)
    return lambda users: table[users].clone()


# --- evaluate --------------------------------------------------------------------------

# Three users, five items. User 0 trained on item 0 and holds out items 2 and 4; user 1
# holds out item 4; user 2 holds out nothing and must not count.
SCORES = [
    [0.9, 0.8, 0.7, 0.6, 0.5],
    [0.1, 0.2, 0.3, 0.4, 0.5],
    [0.5, 0.4, 0.3, 0.2, 0.1],
]
TRAIN = _csr([[0], [], [1]], 5)
TEST = _csr([[2, 4], [4], []], 5)


def test_evaluate_averages_each_metric_over_users_with_held_out_items():
    metrics = evaluate(_scorer(SCORES), TEST, TRAIN, ks=(1, 3))
    # User 0 ranks [1, 2, 3, 4] after masking item 0: a hit at rank 1 of 2 held out.
    # User 1 ranks [4, 3, 2, 1, 0]: a hit at rank 0 of 1 held out.
    assert metrics["recall@1"] == pytest.approx((0 + 1) / 2)
    assert metrics["recall@3"] == pytest.approx((1 / 2 + 1) / 2)
    assert metrics["ndcg@3"] == pytest.approx(((1 / log2(3)) / (1 / log2(2) + 1 / log2(3)) + 1) / 2)
    assert metrics["precision@3"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert metrics["map@3"] == pytest.approx(((1 / 2) / 2 + 1 / 1) / 2)
    assert metrics["hit@1"] == pytest.approx((0 + 1) / 2)


def test_evaluate_returns_exactly_the_metric_at_k_keys():
    assert list(evaluate(_scorer(SCORES), TEST, TRAIN, ks=(3, 1))) == metric_keys([1, 3])


def test_users_without_held_out_items_are_neither_scored_nor_averaged():
    scored_users = []

    def score_users(users):
        scored_users.extend(users.tolist())
        return _scorer(SCORES)(users)

    with_user_2 = evaluate(score_users, TEST, TRAIN, ks=(1,))
    without_user_2 = evaluate(_scorer(SCORES[:2]), TEST[:2], TRAIN[:2], ks=(1,))
    assert sorted(scored_users) == [0, 1]
    assert with_user_2 == without_user_2


def test_training_items_are_masked_before_ranking():
    # Item 0 outscores the held-out item 1, but the user trained on item 0.
    metrics = evaluate(_scorer([[0.9, 0.5, 0.1]]), _csr([[1]], 3), _csr([[0]], 3), ks=(1,))
    assert metrics["recall@1"] == 1.0


def test_without_a_mask_training_items_compete_for_the_top_k():
    metrics = evaluate(_scorer([[0.9, 0.5, 0.1]]), _csr([[1]], 3), None, ks=(1,))
    assert metrics["recall@1"] == 0.0


def test_a_masked_item_never_counts_as_a_hit_even_when_held_out():
    # Items 0 and 1 are trained on; item 0 is also held out. Masked to -inf, items 0
    # and 1 tie and the lower id, item 0, ranks second: in the top 2 but not a hit.
    metrics = evaluate(_scorer([[0.9, 0.5, 0.1]]), _csr([[0, 2]], 3), _csr([[0, 1]], 3), ks=(2,))
    assert metrics["hit@2"] == 1.0
    assert metrics["recall@2"] == pytest.approx(1 / 2)
    assert metrics["precision@2"] == pytest.approx(1 / 2)


def test_user_whose_whole_catalogue_is_masked_has_no_hits():
    everything = _csr([[0, 1, 2, 3]], 4)
    metrics = evaluate(_scorer([[0.4, 0.3, 0.2, 0.1]]), _csr([[0, 3]], 4), everything, ks=(1, 4))
    assert set(metrics.values()) == {0.0}


def test_k_larger_than_the_catalogue_ranks_every_item():
    metrics = evaluate(_scorer([[0.9, 0.5, 0.1]]), _csr([[2]], 3), None, ks=(10,))
    assert metrics["recall@10"] == 1.0
    assert metrics["precision@10"] == pytest.approx(1 / 10)
    assert metrics["ndcg@10"] == pytest.approx((1 / log2(4)) / (1 / log2(2)))


def test_chunk_size_does_not_change_the_results():
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(30, 200, generator=generator).round(decimals=1)  # with ties
    rng = np.random.default_rng(0)
    train = sp.csr_matrix((rng.random((30, 200)) < 0.3).astype(np.float32))
    test = sp.csr_matrix((rng.random((30, 200)) < 0.05).astype(np.float32))
    results = [evaluate(_scorer(scores), test, train, ks=(1, 5, 20), chunk_size=size) for size in (1, 2, 7, 1000)]
    for other in results[1:]:
        assert other == pytest.approx(results[0], rel=1e-12, abs=1e-15)


def test_no_chunk_scores_more_users_than_chunk_size():
    chunk_lengths = []

    def score_users(users):
        chunk_lengths.append(len(users))
        return _scorer(SCORES)(users)

    evaluate(score_users, TEST, TRAIN, ks=(1,), chunk_size=1)
    assert chunk_lengths == [1, 1]


def test_scoring_runs_without_autograd():
    grad_enabled = []

    def score_users(users):
        grad_enabled.append(torch.is_grad_enabled())
        return _scorer(SCORES)(users)

    evaluate(score_users, TEST, TRAIN, ks=(1,))
    assert grad_enabled == [False]


def test_ground_truth_without_any_held_out_item_is_an_error():
    with pytest.raises(SigerecError, match="no user has a held-out item"):
        evaluate(_scorer(SCORES), _csr([[], [], []], 5), TRAIN)


def test_mask_of_another_shape_is_an_error():
    with pytest.raises(SigerecError, match="mask has shape"):
        evaluate(_scorer(SCORES), TEST, _csr([[0]], 5))


def test_non_positive_k_is_an_error():
    with pytest.raises(SigerecError, match="positive integers"):
        evaluate(_scorer(SCORES), TEST, TRAIN, ks=(0, 10))


def test_held_out_items_of_one_chunk_are_not_hits_in_the_next():
    # User 0 holds out item 2, user 1 item 0; both rank item 2 first. With one user per
    # chunk, user 1's top item must not count as a hit.
    scores = [[0.1, 0.2, 0.9], [0.5, 0.1, 0.9]]
    metrics = evaluate(_scorer(scores), _csr([[2], [0]], 3), None, ks=(1, 2), chunk_size=1)
    assert metrics["hit@1"] == pytest.approx(0.5)
    assert metrics["recall@2"] == pytest.approx(1.0)
