"""LightGCN propagation and sparse operators (graphs/propagation.py): values and gradients."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sigerec.graphs.adjacency import normalized_interaction_adjacency, to_torch_sparse
from sigerec.graphs.propagation import lightgcn_propagate, lightgcn_propagate_rows


def test_one_lightgcn_layer_averages_self_and_normalised_neighbours():
    train = sp.csr_matrix(np.array([[1, 1], [0, 1]], dtype=np.float32))
    adjacency = normalized_interaction_adjacency(train)
    embeddings = torch.tensor([[1.0], [2.0], [3.0], [4.0]])  # u0, u1, i0, i1
    final = lightgcn_propagate(to_torch_sparse(adjacency), embeddings, n_layers=1)
    u0 = (1.0 + 3.0 / math.sqrt(2) + 4.0 / 2) / 2
    i1 = (4.0 + 1.0 / 2 + 2.0 / math.sqrt(2)) / 2
    assert final[0, 0].item() == pytest.approx(u0, rel=1e-6)
    assert final[3, 0].item() == pytest.approx(i1, rel=1e-6)


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_row_restricted_propagation_equals_full_propagation_and_its_gradient(n_layers):
    rng = np.random.default_rng(0)
    train = sp.random(30, 20, density=0.2, random_state=1, format="csr")
    adjacency = normalized_interaction_adjacency(train)
    embeddings = torch.tensor(rng.normal(size=(50, 8)), dtype=torch.float32, requires_grad=True)
    rows = torch.tensor([0, 3, 3, 31, 49, 7])
    weights = torch.tensor(rng.normal(size=(6, 8)), dtype=torch.float32)
    full = lightgcn_propagate(to_torch_sparse(adjacency), embeddings, n_layers)[rows]
    (full * weights).sum().backward()
    full_grad, embeddings.grad = embeddings.grad.clone(), None
    restricted, ego = lightgcn_propagate_rows(to_torch_sparse(adjacency), adjacency, embeddings, n_layers, rows)
    assert torch.equal(ego, embeddings[rows])
    (restricted * weights).sum().backward()
    assert torch.allclose(full, restricted, atol=1e-6)
    assert torch.allclose(full_grad, embeddings.grad, atol=1e-6)


@pytest.mark.parametrize("symmetric", [True, False])
def test_sparse_operator_gives_the_dense_product_and_its_gradient(symmetric):
    from sigerec.graphs.propagation import SparseOperator

    matrix = sp.random(7, 7, density=0.4, random_state=3, format="csr", dtype=np.float32)
    if symmetric:
        matrix = (matrix + matrix.T).tocsr()
    operator = SparseOperator(matrix)
    assert operator.symmetric is symmetric
    dense = torch.randn(7, 3, requires_grad=True)
    weights = torch.randn(7, 3)
    (operator @ dense * weights).sum().backward()
    expected = torch.tensor(matrix.toarray())
    assert torch.allclose(operator @ dense.detach(), expected @ dense.detach(), atol=1e-6)
    assert torch.allclose(dense.grad, expected.T @ weights, atol=1e-6)


def test_row_restricted_layer_repeats_rows_bit_for_bit():
    """Repeated rows are computed once and copied: the same sums in the same order as slicing
    every row, so the values are bit-identical (training numbers do not move)."""
    rng = np.random.default_rng(2)
    train = sp.random(40, 25, density=0.3, random_state=4, format="csr")
    adjacency = normalized_interaction_adjacency(train)
    embeddings = torch.tensor(rng.normal(size=(65, 16)), dtype=torch.float32)
    rows = torch.tensor([41, 3, 41, 41, 0, 3, 64])
    final, ego = lightgcn_propagate_rows(to_torch_sparse(adjacency), adjacency, embeddings, 1, rows)
    sliced = torch.from_numpy(np.asarray(adjacency[rows.numpy()] @ embeddings.numpy()))
    assert torch.equal(ego, embeddings[rows])
    assert torch.equal(final, (embeddings[rows] + sliced) * 0.5)
