"""Batch-local propagation gives the full propagation's rows and gradients, from fewer nodes."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sigerec.data.dataset import Dataset
from sigerec.graphs.interaction_graph import InteractionGraph
from sigerec.graphs.subgraph import local_lightgcn_rows, neighbourhood, renumber_columns, sampled_rows


def sparse_graph(n_users=300, n_items=200, per_user=3, seed=0):
    # A sparse random graph, so that a small batch's neighbourhood is a strict part of it.
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    items = rng.integers(0, n_items, len(users))
    return InteractionGraph(Dataset.interaction_matrix(users, items, n_users, n_items))


def test_layer_sets_grow_by_neighbours_and_stay_sorted():
    matrix = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], dtype=np.float32))
    sets, steps = neighbourhood(matrix, np.array([0, 0]), 2)
    assert [s.tolist() for s in sets] == [[0, 1, 2], [0, 1], [0]]
    np.testing.assert_array_equal(steps[1].toarray(), [[0, 1]])  # row 0 over columns {0, 1}


def test_renumbered_columns_keep_each_rows_values():
    matrix = sp.csr_matrix(np.arange(16, dtype=np.float32).reshape(4, 4) * (np.eye(4)[[1, 0, 3, 2]] + np.eye(4)))
    columns = np.array([0, 1, 2, 3])
    part = renumber_columns(matrix[np.array([2, 0])], columns)
    np.testing.assert_array_equal(part.toarray(), matrix.toarray()[[2, 0]])
    sub_columns = np.array([2, 3])
    np.testing.assert_array_equal(renumber_columns(matrix[np.array([2])], sub_columns).toarray(), [[10, 11]])


@pytest.mark.parametrize("n_layers", [0, 1, 2, 3])
def test_local_rows_and_gradients_equal_the_full_propagation(n_layers):
    graph = sparse_graph()
    torch.manual_seed(0)
    table = torch.nn.Parameter(torch.randn(graph.n_users + graph.n_items, 8))
    rows = torch.tensor([0, 5, 5, 17, graph.n_users + 3, graph.n_users + 150])
    weights = torch.randn(len(rows), 8)

    final, ego = graph.propagate_rows(table, n_layers, rows)
    ((final * weights).sum() + ego.square().sum()).backward()
    full_grad, table.grad = table.grad.clone(), None

    local_final, local_ego = local_lightgcn_rows(graph.normalized, table, n_layers, rows)
    ((local_final * weights).sum() + local_ego.square().sum()).backward()
    assert table.grad.is_sparse  # no full-size gradient buffer
    torch.testing.assert_close(local_final, final, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(local_ego, ego)
    torch.testing.assert_close(table.grad.to_dense(), full_grad, rtol=1e-5, atol=1e-6)


def test_a_small_batch_touches_only_its_neighbourhood():
    graph = sparse_graph()
    sets, _ = neighbourhood(graph.normalized, np.array([0, 1]), 2)
    assert len(sets[0]) < (graph.n_users + graph.n_items) / 4


def test_sampled_rows_keep_short_rows_and_estimate_long_ones_without_bias():
    rng = np.random.default_rng(0)
    dense = np.zeros((3, 50), dtype=np.float32)
    dense[0, :40] = rng.random(40)  # a hub: 40 neighbours
    dense[1, [3, 7]] = [0.5, 0.25]  # short: kept exactly
    matrix = sp.csr_matrix(dense)
    vector = rng.random(50)
    np.testing.assert_allclose(sampled_rows(matrix, np.array([1, 2]), 4, rng).toarray(), dense[[1, 2]])
    draws = [sampled_rows(matrix, np.array([0]), 4, rng) for _ in range(4000)]
    assert all(d.nnz == 4 for d in draws)  # bounded work per row
    estimate = np.mean([(d @ vector)[0] for d in draws])
    assert estimate == pytest.approx(dense[0] @ vector, rel=0.03)


def test_sampled_lightgcn_rows_train_and_are_seeded_by_torch():
    graph = sparse_graph(per_user=8)
    table = torch.nn.Parameter(torch.randn(graph.n_users + graph.n_items, 4))
    rows = torch.tensor([0, 1, graph.n_users + 2])
    torch.manual_seed(3)
    first, _ = local_lightgcn_rows(graph.normalized, table, 2, rows, fanout=2)
    torch.manual_seed(3)
    again, _ = local_lightgcn_rows(graph.normalized, table, 2, rows, fanout=2)
    torch.testing.assert_close(first, again)
    first.sum().backward()
    assert table.grad.is_sparse
