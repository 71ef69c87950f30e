"""Cold items in the seven content models: ``cold_item_rule`` and ``cold_item_k``, by hand.

A cold item has no training interaction. "warm_neighbours" (every model's default) replaces its
final vector by its warm content neighbours' mean (``graphs/cold_neighbours.py``); SIGE and MGCN
also offer "behaviour_neighbours", VBPR "content_factors", AlphaRec "content_branch".
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from semantic_fixtures import N_ITEMS, N_USERS, hand_dataset, hand_features
from sigerec.data.dataset import Dataset
from sigerec.graphs.cold_neighbours import cold_item_weights
from sigerec.models import get_model_class
from sigerec.models.bpr import BPR
from sigerec.models.lightgcn import LightGCN

CONTENT_MODELS = ["sige", "mgcn", "freedom", "lgmrec", "bm3", "vbpr", "alpharec"]
COLD = [8, 9]  # no training interaction in the dataset below; both in test
WARM = list(range(8))
K = 3
SMALL = {
    "sige": {"knn_k": 4, "cooccurrence_k": 3},
    "mgcn": {"knn_k": 4},
    "freedom": {"knn_k": 4},
    "alpharec": {"mlp_hidden_size": 8},
}
# Warm users, positives and negatives of one training batch.
BATCH = (torch.tensor([0, 3, 5]), torch.tensor([0, 3, 5]), torch.tensor([2, 7, 1]))


def cold_dataset():
    rng = np.random.default_rng(1)
    users = np.concatenate([np.arange(N_USERS), rng.integers(0, N_USERS, 40)])
    items = np.concatenate([np.arange(N_USERS) % 8, rng.integers(0, 8, 40)])
    train = Dataset.interaction_matrix(users, items, N_USERS, N_ITEMS)
    test = Dataset.interaction_matrix(np.array([0, 1, 2]), np.array([8, 9, 9]), N_USERS, N_ITEMS)
    return Dataset("cold", N_USERS, N_ITEMS, train, train.copy(), test, features=hand_features())


def build(name, rule, dataset=None, norm="mean"):
    torch.manual_seed(0)
    model_class = get_model_class(name)
    settings = {"cold_item_rule": rule, "cold_item_k": K, "cold_item_norm": norm, **SMALL.get(name, {})}
    config = model_class.config_class(embedding_size=8, **settings)
    model = model_class(cold_dataset() if dataset is None else dataset, config)
    return model.eval()


def neighbour_means(item_vectors):
    """The cold items' rows [2, d] by the shared rule, computed with ``cold_item_weights`` directly."""
    features = hand_features()
    warm = np.isin(np.arange(N_ITEMS), WARM)
    cold, weights = cold_item_weights([features[m] for m in sorted(features)], warm, K)
    np.testing.assert_array_equal(cold, COLD)
    return torch.from_numpy(weights.toarray()) @ item_vectors.detach()


@pytest.mark.parametrize("name", CONTENT_MODELS)
def test_warm_neighbours_gives_cold_items_their_warm_neighbours_mean_final_vector(name):
    users_none, items_none = build(name, "none").embeddings()
    users, items = build(name, "warm_neighbours").embeddings()
    torch.testing.assert_close(items[COLD], neighbour_means(items_none))
    assert torch.equal(items[WARM], items_none[WARM])
    assert torch.equal(users, users_none)


@pytest.mark.parametrize("name", CONTENT_MODELS)
def test_the_neighbours_norm_gives_cold_items_their_neighbours_mean_length(name):
    _, items_none = build(name, "none").embeddings()
    _, items = build(name, "warm_neighbours", norm="neighbours").embeddings()
    means = neighbour_means(items_none)
    lengths = neighbour_means(items_none.norm(dim=1, keepdim=True))
    torch.testing.assert_close(items[COLD], means * lengths / means.norm(dim=1, keepdim=True))
    assert torch.equal(items[WARM], items_none[WARM])


@pytest.mark.parametrize("name", CONTENT_MODELS)
def test_warm_neighbours_is_the_default_and_changes_nothing_without_cold_items(name):
    model_class = get_model_class(name)
    assert model_class.config_class().cold_item_rule == "warm_neighbours"
    assert model_class.config_class().cold_item_k == 10
    assert model_class.config_class().cold_item_norm == "neighbours"
    with_rule, without = build(name, "warm_neighbours", hand_dataset()), build(name, "none", hand_dataset())
    for vectors, plain in zip(with_rule.embeddings(), without.embeddings()):
        assert torch.equal(vectors, plain)


@pytest.mark.parametrize("name", CONTENT_MODELS)
def test_the_rule_leaves_training_unchanged(name):
    losses = []
    for rule in ("warm_neighbours", "none"):
        model = build(name, rule).train()
        torch.manual_seed(3)
        losses.append(model.loss(*BATCH))
    assert torch.equal(losses[0], losses[1])


def test_vbpr_content_factors_zero_the_untrained_id_part_of_cold_items():
    model = build("vbpr", "content_factors")
    _, items = model.embeddings()
    features = hand_features()
    content = torch.from_numpy(np.concatenate([features["image"], features["text"]], axis=1))
    projected = content @ model.feature_projection.weight.T + model.feature_projection.bias
    torch.testing.assert_close(items[COLD], torch.cat([torch.zeros(2, 8), projected[COLD]], dim=1))
    assert torch.equal(items[WARM], build("vbpr", "none").embeddings()[1][WARM])


def test_alpharec_content_branch_is_the_mapped_language_vector_as_its_plain_forward():
    model = build("alpharec", "content_branch")
    _, items = model.embeddings()
    expected = F.normalize(model.mlp(torch.from_numpy(hand_features()["text"][COLD])), dim=1)
    torch.testing.assert_close(items[COLD], expected)
    _, plain = build("alpharec", "none").embeddings()
    torch.testing.assert_close(items, plain)  # an item without graph edges: normalize(MLP(z_i))


@pytest.mark.parametrize("name", ["sige", "mgcn"])
def test_behaviour_neighbours_replace_the_behaviour_vector_before_the_fuser(name):
    model = build(name, "behaviour_neighbours")
    behaviour = model.graph.propagate(model.embedding, model.n_ui_layers)
    replaced = behaviour.clone()
    replaced[N_USERS + np.array(COLD)] = neighbour_means(behaviour[N_USERS:])
    semantics = {m: torch.cat([model.graph.user_item @ z, z]) for m, z in model.item_semantics().items()}
    expected = replaced + model.fuser(semantics, replaced)
    users, items = model.embeddings()
    torch.testing.assert_close(items[COLD], expected[N_USERS:][COLD])
    users_none, items_none = build(name, "none").embeddings()
    assert torch.equal(users, users_none) and torch.equal(items[WARM], items_none[WARM])
    assert not torch.allclose(items[COLD], items_none[COLD])


@pytest.mark.parametrize("name", ["sige", "mgcn"])
def test_rule_none_scores_cold_items_by_their_own_id_vectors(name):
    model = build(name, "none")
    behaviour = model.graph.propagate(model.embedding, model.n_ui_layers)
    semantics = {m: torch.cat([model.graph.user_item @ z, z]) for m, z in model.item_semantics().items()}
    _, items = model.embeddings()
    assert torch.equal(items, (behaviour + model.fuser(semantics, behaviour))[N_USERS:])


def test_content_models_declare_they_score_cold_items_and_id_only_models_do_not():
    assert all(get_model_class(name).can_score_cold_items for name in CONTENT_MODELS)
    assert not BPR.can_score_cold_items and not LightGCN.can_score_cold_items
