"""Cold items in SIGE and MGCN (models/semantic_branch.py): the warm-neighbour rule, by hand."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from semantic_fixtures import N_ITEMS, N_USERS, hand_features
from sigerec.data.dataset import Dataset
from sigerec.models.bpr import BPR
from sigerec.models.lightgcn import LightGCN
from sigerec.models.mgcn import MGCN, MGCNConfig
from sigerec.models.semantic_branch import cold_item_neighbour_means
from sigerec.models.sige import SIGE, SIGEConfig

COLD = [8, 9]  # no training interaction in the dataset below; both in test


def cold_dataset():
    rng = np.random.default_rng(1)
    users = np.concatenate([np.arange(N_USERS), rng.integers(0, N_USERS, 40)])
    items = np.concatenate([np.arange(N_USERS) % 8, rng.integers(0, 8, 40)])
    train = Dataset.interaction_matrix(users, items, N_USERS, N_ITEMS)
    test = Dataset.interaction_matrix(np.array([0, 1, 2]), np.array([8, 9, 9]), N_USERS, N_ITEMS)
    return Dataset("cold", N_USERS, N_ITEMS, train, train.copy(), test, features=hand_features())


def build(model_class, rule):
    torch.manual_seed(0)
    config_class = {SIGE: SIGEConfig, MGCN: MGCNConfig}[model_class]
    return model_class(cold_dataset(), config_class(embedding_size=8, knn_k=4, cold_item_rule=rule))


def test_neighbour_means_average_warm_neighbours_per_modality_then_modalities():
    warm = np.array([True, True, False, False])
    # Row i: item i's top-k (self included). Item 2: {2, 0, 1} and {2, 1}; item 3: {3, 2} (no warm
    # neighbour, skipped) and {3, 0}.
    first = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0.5, 0.2, 1, 0], [0, 0, 0.3, 1]]))
    second = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0.7, 1, 0], [0.1, 0, 0, 1]]))
    cold, means = cold_item_neighbour_means([first, second], warm)
    np.testing.assert_array_equal(cold, [2, 3])
    expected = [[(0.5 + 0) / 2, (0.5 + 1) / 2, 0, 0], [1, 0, 0, 0]]
    np.testing.assert_allclose(means.toarray(), expected)


def test_a_cold_item_without_warm_neighbours_keeps_its_own_vector():
    warm = np.array([True, False, False])
    graph = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 0.5], [0.4, 0, 1]]))
    cold, means = cold_item_neighbour_means([graph], warm)
    np.testing.assert_array_equal(cold, [2])
    np.testing.assert_allclose(means.toarray(), [[1, 0, 0]])


@pytest.mark.parametrize("model_class", [SIGE, MGCN])
def test_cold_items_score_with_their_warm_neighbours_behaviour(model_class):
    model = build(model_class, "semantic_neighbours")
    behaviour = model.graph.propagate(model.embedding, model.n_ui_layers)
    item_behaviour = behaviour[N_USERS:]
    # The feature kNN graphs' rows, by hand: SIGE mixes co-occurrence into its item graphs, but a
    # cold item co-occurs with nothing, so its rows of S_bar are those of the kNN graph, scaled.
    expected_rows = []
    for item in COLD:
        per_modality = []
        for modality in model.modalities:
            neighbours = [j for j in model.item_graphs[modality].scipy[item].indices if j not in COLD]
            per_modality.append(item_behaviour[neighbours].mean(0))
        expected_rows.append(torch.stack(per_modality).mean(0))
    replaced = behaviour.clone()
    replaced[N_USERS + np.array(COLD)] = torch.stack(expected_rows)
    semantics = {m: torch.cat([model.graph.user_item @ z, z]) for m, z in model.item_semantics().items()}
    expected = (replaced + model.fuser(semantics, replaced))[N_USERS:]
    _, items = model.embeddings()
    torch.testing.assert_close(items[COLD], expected[COLD])


@pytest.mark.parametrize("model_class", [SIGE, MGCN])
def test_the_rule_leaves_users_and_warm_items_unchanged(model_class):
    users_on, items_on = build(model_class, "semantic_neighbours").embeddings()
    users_off, items_off = build(model_class, "none").embeddings()
    assert torch.equal(users_on, users_off)
    assert torch.equal(items_on[:8], items_off[:8])
    assert not torch.allclose(items_on[COLD], items_off[COLD])


@pytest.mark.parametrize("model_class", [SIGE, MGCN])
def test_rule_none_scores_cold_items_by_their_own_id_vectors(model_class):
    model = build(model_class, "none")
    behaviour = model.graph.propagate(model.embedding, model.n_ui_layers)
    semantics = {m: torch.cat([model.graph.user_item @ z, z]) for m, z in model.item_semantics().items()}
    _, items = model.embeddings()
    assert torch.equal(items, (behaviour + model.fuser(semantics, behaviour))[N_USERS:])


def test_content_models_declare_they_score_cold_items_and_id_only_models_do_not():
    assert SIGE.can_score_cold_items and MGCN.can_score_cold_items
    assert not BPR.can_score_cold_items and not LightGCN.can_score_cold_items
