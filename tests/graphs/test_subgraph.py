"""Batch-local propagation gives the full propagation's rows and gradients, from fewer nodes."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sigerec.data.dataset import Dataset
from sigerec.graphs.interaction_graph import InteractionGraph
from sigerec.graphs.subgraph import layer_node_sets, local_lightgcn_rows, restricted_rows


def sparse_graph(n_users=300, n_items=200, per_user=3, seed=0):
    # A sparse random graph, so that a small batch's neighbourhood is a strict part of it.
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    items = rng.integers(0, n_items, len(users))
    return InteractionGraph(Dataset.interaction_matrix(users, items, n_users, n_items))


def test_layer_sets_grow_by_neighbours_and_stay_sorted():
    matrix = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], dtype=np.float32))
    sets = layer_node_sets(matrix, np.array([0, 0]), 2)
    assert [s.tolist() for s in sets] == [[0, 1, 2], [0, 1], [0]]


def test_restricted_rows_renumber_columns():
    matrix = sp.csr_matrix(np.arange(16, dtype=np.float32).reshape(4, 4) * (np.eye(4)[[1, 0, 3, 2]] + np.eye(4)))
    columns = np.array([0, 1, 2, 3])
    part = restricted_rows(matrix, np.array([2, 0]), columns)
    np.testing.assert_array_equal(part.toarray(), matrix.toarray()[[2, 0]])
    sub_columns = np.array([2, 3])
    np.testing.assert_array_equal(restricted_rows(matrix, np.array([2]), sub_columns).toarray(), [[10, 11]])


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
    sets = layer_node_sets(graph.normalized, np.array([0, 1]), 2)
    assert len(sets[0]) < (graph.n_users + graph.n_items) / 4
