"""The cold-item neighbour rule shared by models and serving."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sigerec.graphs.cold_neighbours import cold_item_weights, neighbour_vectors, warm_neighbour_weights
from sigerec.graphs.propagation import SparseOperator


def test_each_query_averages_its_k_most_similar_warm_items_then_the_modalities():
    text = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [1, 0.05]], dtype=np.float32)
    genre = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [0, 1]], dtype=np.float32)
    warm = np.array([True, True, True, True, False])
    cold, weights = cold_item_weights([text, genre], warm, k=2)
    assert cold.tolist() == [4]
    row = weights.toarray()[0]
    # text: items 0 and 1 (closest to [1, .05]); genre: items 2 and 3 -> each 1/2 * 1/2
    np.testing.assert_allclose(row, [0.25, 0.25, 0.25, 0.25, 0.0])


def test_only_warm_items_lend_vectors_and_ties_go_to_the_lower_index():
    features = np.array([[1, 0], [1, 0], [1, 0], [1, 0]], dtype=np.float32)
    warm = np.array([False, True, True, False])
    cold, weights = cold_item_weights([features], warm, k=1)
    assert cold.tolist() == [0, 3]
    assert weights.toarray().tolist() == [[0, 1, 0, 0], [0, 1, 0, 0]]


def test_a_query_without_content_gets_no_neighbours_from_that_modality():
    items = np.eye(3, dtype=np.float32)
    weights = warm_neighbour_weights([np.zeros((1, 3), np.float32)], [items], np.array([0, 1, 2]), 3, k=2)
    assert weights.nnz == 0
    partial = warm_neighbour_weights(
        [np.zeros((1, 3), np.float32), np.array([[0, 0, 1]], np.float32)], [items, items], np.array([0, 1, 2]), 3, k=1
    )
    assert partial.toarray().tolist() == [[0, 0, 1]]  # the modality with content alone decides


def test_k_above_the_number_of_warm_items_uses_them_all():
    items = np.eye(3, dtype=np.float32)
    weights = warm_neighbour_weights([np.ones((1, 3), np.float32)], [items], np.array([0, 2]), 3, k=10)
    np.testing.assert_allclose(weights.toarray(), [[0.5, 0, 0.5]])
    with pytest.raises(ValueError):
        warm_neighbour_weights([items], [items], np.array([0]), 3, k=0)


def test_neighbours_norm_keeps_the_mean_direction_at_the_neighbours_mean_length():
    vectors = np.array([[3.0, 0.0], [0.0, 1.0], [5.0, 5.0]], dtype=np.float32)
    weights = sp.csr_matrix(np.array([[0.5, 0.5, 0.0]], dtype=np.float32))
    plain = neighbour_vectors(weights, vectors, "mean")
    np.testing.assert_allclose(plain, [[1.5, 0.5]])
    scaled = neighbour_vectors(weights, vectors, "neighbours")
    np.testing.assert_allclose(np.linalg.norm(scaled), 2.0, rtol=1e-6)  # (3 + 1) / 2
    np.testing.assert_allclose(scaled / np.linalg.norm(scaled), plain / np.linalg.norm(plain), rtol=1e-6)
    with pytest.raises(ValueError):
        neighbour_vectors(weights, vectors, "longest")


def test_numpy_and_torch_give_the_same_vectors():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(6, 4)).astype(np.float32)
    weights = sp.csr_matrix(rng.random((3, 6)) * (rng.random((3, 6)) > 0.5), dtype=np.float32)
    for norm in ("mean", "neighbours"):
        expected = neighbour_vectors(weights, vectors, norm)
        got = neighbour_vectors(SparseOperator(weights), torch.from_numpy(vectors), norm)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)
