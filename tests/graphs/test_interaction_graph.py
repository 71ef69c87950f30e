"""InteractionGraph (graphs/interaction_graph.py): the one user-item graph object models use."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sigerec.data.dataset import Dataset
from sigerec.graphs.adjacency import normalized_interaction_adjacency
from sigerec.graphs.dataset_graphs import interaction_graph
from sigerec.graphs.interaction_graph import InteractionGraph
from sigerec.graphs.propagation import lightgcn_propagate


def _train() -> sp.csr_matrix:
    """3 users x 4 items; user 0 bought item 1 twice (a repeat counts once)."""
    return sp.csr_matrix(np.array([[1, 2, 0, 0], [0, 1, 1, 0], [1, 0, 0, 1]], dtype=np.float32))


def test_the_graph_is_the_normalised_binary_adjacency_of_users_then_items():
    graph = InteractionGraph(_train())
    expected = normalized_interaction_adjacency(_train()).toarray()
    assert (graph.n_users, graph.n_items) == (3, 4)
    np.testing.assert_allclose(graph.normalized.toarray(), expected)
    np.testing.assert_allclose(graph.adjacency.to_dense().numpy(), expected)
    # user 0 - item 1: both have degree 2 when the repeat counts once, so the edge weighs 1/sqrt(2 * 2)
    assert graph.normalized[0, 3 + 1] == pytest.approx(1 / np.sqrt(2 * 2))


def test_propagate_layer_and_rows_agree_with_the_propagation_functions():
    graph = InteractionGraph(_train())
    embeddings = torch.randn(7, 4, generator=torch.Generator().manual_seed(0))
    full = graph.propagate(embeddings, 2)
    assert torch.equal(full, lightgcn_propagate(graph.adjacency, embeddings, 2))
    assert torch.allclose(graph.layer(embeddings), torch.tensor(graph.normalized.toarray()) @ embeddings, atol=1e-6)
    rows = torch.tensor([0, 4, 6])
    restricted, ego = graph.propagate_rows(embeddings, 2, rows)
    assert torch.allclose(restricted, full[rows], atol=1e-6) and torch.equal(ego, embeddings[rows])


def test_user_item_is_the_user_to_item_block():
    graph = InteractionGraph(_train())
    items = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    block = torch.tensor(graph.normalized[:3, 3:].toarray())
    assert torch.allclose(graph.user_item @ items, block @ items, atol=1e-6)
    assert torch.allclose(graph.user_item.rows(torch.tensor([2, 0]), items), (block @ items)[[2, 0]], atol=1e-6)


def test_a_dataset_hands_out_the_graph_of_its_training_split():
    train = _train()
    dataset = Dataset("hand", 3, 4, train, train.copy(), train.copy())
    np.testing.assert_allclose(
        interaction_graph(dataset).normalized.toarray(), InteractionGraph(train).normalized.toarray()
    )
