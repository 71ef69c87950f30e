import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sigerec.data.dataset import Dataset
from sigerec.graphs.adjacency import normalized_interaction_adjacency
from sigerec.models.lgmrec import LGMRec, LGMRecConfig

# Test fixtures, not content: 4 items with simple, distinct feature values.
IMAGE_FEATURES = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]], dtype=np.float32)
TEXT_FEATURES = np.array([[1, 2], [2, 1], [1, -1], [-1, 1]], dtype=np.float32)
AUDIO_FEATURES = np.array([[0.5, 1, 0, 2], [1, 0, 1, 0], [2, 1, 0, 0], [0, 1, 1, 1]], dtype=np.float32)
BOTH = {"image": IMAGE_FEATURES, "text": TEXT_FEATURES}


def _dataset(features, n_users=3):
    # 3 users x 4 items, 10 training edges: user 0 - items 0,1,2,3; user 1 - 0,1,2; user 2 - 0,1,3.
    # With n_users=4 the last user has no training items.
    users = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    items = np.array([0, 1, 2, 3, 0, 1, 2, 0, 1, 3])
    matrix = Dataset.interaction_matrix(users, items, n_users, 4)
    return Dataset("hand", n_users, 4, matrix, matrix.copy(), matrix.copy(), features=features)


def _model(features=None, n_users=3, **config):
    torch.manual_seed(0)
    features = BOTH if features is None else features
    return LGMRec(_dataset(features, n_users), LGMRecConfig(embedding_size=4, **config))


def _reference(model, training):
    """LGMRec's forward written out with dense matrices, following MMRec's steps and draw order.

    Returns final users, final items and the per-modality hypergraph embeddings [(users, items)].
    """
    config = model.config
    n_users = model.n_users
    train = _dataset({}, n_users).train
    interactions = torch.from_numpy(train.toarray())  # R
    adjacency = torch.from_numpy(normalized_interaction_adjacency(train).toarray())  # A_hat
    degree = interactions.sum(1, keepdim=True)

    def assign(logits):
        if training:
            return F.gumbel_softmax(logits, tau=config.tau, hard=False, dim=1)
        return torch.softmax(logits / config.tau, dim=1)

    def drop(assignment):
        return F.dropout(assignment, p=1 - config.keep_rate, training=training)

    # Hyperedge assignments first (MMRec draws the Gumbel noise before everything else).
    assignments = []
    for modality in model.modalities:
        item_logits = model.features(modality) @ model.hyperedge_embeddings[modality]
        user_logits = interactions @ item_logits  # summed over the user's items
        assignments.append((assign(item_logits), assign(user_logits)))

    ego = torch.cat([model.user_embedding, model.item_embedding])
    layers, layer = [ego], ego
    for _ in range(config.n_ui_layers if config.cf_model == "lightgcn" else 0):
        layer = adjacency @ layer
        layers.append(layer)
    collaborative = torch.stack(layers).mean(0)

    local = collaborative
    for modality in model.modalities:
        item_features = model.features(modality) @ model.feature_projections[modality]
        user_features = interactions @ item_features / (degree + 1e-7)  # mean of the user's items
        modal = torch.cat([user_features, item_features])
        for _ in range(config.n_mm_layers):
            modal = adjacency @ modal
        local = local + F.normalize(modal, dim=1)

    hyper, global_sum = [], 0
    for item_assignment, user_assignment in assignments:
        item_assignment, user_assignment = drop(item_assignment), drop(user_assignment)
        item_hyper = collaborative[n_users:]
        for _ in range(config.n_hyper_layer):
            latent = item_assignment.T @ item_hyper
            item_hyper = item_assignment @ latent
            user_hyper = user_assignment @ latent
        hyper.append((user_hyper, item_hyper))
        global_sum = global_sum + torch.cat([user_hyper, item_hyper])
    final = local + config.alpha * F.normalize(global_sum, dim=1)
    return final[:n_users], final[n_users:], hyper


def _mmrec_nce(anchors, positives, candidates, tau):
    """MMRec's ``ssl_triple_loss`` in its own exp / sum / log form."""
    anchors, positives, candidates = (F.normalize(x, dim=1) for x in (anchors, positives, candidates))
    positive_score = torch.exp((anchors * positives).sum(1) / tau)
    total_score = torch.exp(anchors @ candidates.T / tau).sum(1)
    return -torch.log(positive_score / total_score).sum()


def _pair_loss(hyper, a, b, users, positives, tau):
    (users_a, items_a), (users_b, items_b) = hyper[a], hyper[b]
    return _mmrec_nce(users_a[users], users_b[users], users_b, tau) + _mmrec_nce(
        items_a[positives], items_b[positives], items_b, tau
    )


def _reference_loss(model, users, positives, negatives, training):
    config = model.config
    user_vectors, item_vectors, hyper = _reference(model, training)
    user, positive, negative = user_vectors[users], item_vectors[positives], item_vectors[negatives]
    ranking = -F.logsigmoid((user * positive).sum(1) - (user * negative).sum(1)).mean()
    contrast = _pair_loss(hyper, 0, 1, users, positives, config.tau)  # image anchors text, as MMRec's v/t
    penalty = (positive.norm() + negative.norm() + user.norm()) / len(users)
    return ranking + config.cl_weight * contrast + config.reg_weight * penalty


def _assert_close(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-6)


BATCH = (torch.tensor([0, 1, 2, 0]), torch.tensor([1, 0, 3, 2]), torch.tensor([3, 3, 2, 3]))


def test_defaults_are_mmrecs_baby_values():
    config = LGMRecConfig()
    assert (config.embedding_size, config.cf_model, config.n_ui_layers, config.n_mm_layers) == (64, "lightgcn", 2, 2)
    assert (config.n_hyper_layer, config.hyper_num, config.keep_rate, config.alpha) == (1, 4, 0.5, 0.3)
    assert (config.cl_weight, config.reg_weight, config.tau) == (1e-4, 1e-6, 0.2)


def test_eval_forward_matches_the_dense_reference_without_noise_or_dropout():
    model = _model(n_hyper_layer=2, keep_rate=0.5)
    model.eval()
    users, items, hyper = model._forward()
    expected_users, expected_items, expected_hyper = _reference(model, training=False)
    _assert_close(users, expected_users)
    _assert_close(items, expected_items)
    for (user_hyper, item_hyper), (expected_user_hyper, expected_item_hyper) in zip(hyper, expected_hyper):
        _assert_close(user_hyper, expected_user_hyper)
        _assert_close(item_hyper, expected_item_hyper)


def test_eval_is_deterministic_whatever_the_random_state():
    model = _model()
    model.eval()
    torch.manual_seed(1)
    first = model.embeddings()
    torch.manual_seed(2)
    second = model.embeddings()
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    scores = model.scorer()
    chunked = torch.cat([scores(torch.tensor([0, 1])).clone(), scores(torch.tensor([2])).clone()])
    _assert_close(chunked, first[0] @ first[1].T)


def test_training_forward_draws_gumbel_noise_and_dropout_in_mmrecs_order():
    model = _model(keep_rate=0.5)
    model.train()
    torch.manual_seed(7)
    users, items, hyper = model._forward()
    torch.manual_seed(7)
    expected_users, expected_items, expected_hyper = _reference(model, training=True)
    _assert_close(users, expected_users)
    _assert_close(items, expected_items)
    _assert_close(hyper[1][0], expected_hyper[1][0])
    # Noise and dropout make training differ from eval and from another seed.
    torch.manual_seed(8)
    other_users, _, _ = model._forward()
    model.eval()
    eval_users, _ = model.embeddings()
    assert not torch.allclose(users, other_users)
    assert not torch.allclose(users, eval_users)


def test_dropout_keeps_a_keep_rate_share_rescaled_and_only_in_training():
    model = _model(keep_rate=0.25)
    ones = torch.ones(400, 4)
    model.train()
    torch.manual_seed(0)
    dropped = model._dropout(ones)
    assert set(dropped.unique().tolist()) == {0.0, 4.0}
    assert 0.2 < (dropped != 0).float().mean().item() < 0.3
    model.eval()
    assert torch.equal(model._dropout(ones), ones)


def test_eval_assignments_are_the_noise_free_softmax():
    model = _model()
    model.eval()
    logits = torch.randn(6, 4)
    _assert_close(model._assign(logits), torch.softmax(logits / 0.2, dim=1))


def test_training_assignments_are_gumbel_softmax_rows_summing_to_one():
    model = _model(keep_rate=1.0)
    model.train()
    logits = torch.randn(6, 4)
    torch.manual_seed(3)
    drawn = model._assign(logits)
    torch.manual_seed(3)
    _assert_close(drawn, F.gumbel_softmax(logits, tau=0.2, hard=False, dim=1))
    _assert_close(drawn.sum(1), torch.ones(6))


def test_loss_matches_mmrecs_bpr_contrast_and_regulariser():
    model = _model(cl_weight=0.5, reg_weight=0.1)
    model.eval()  # deterministic forward, so the reference needs no shared draws
    loss = model.loss(*BATCH)
    expected = _reference_loss(model, *BATCH, training=False)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    model.train()
    torch.manual_seed(11)
    loss = model.loss(*BATCH)
    torch.manual_seed(11)
    expected = _reference_loss(model, *BATCH, training=True)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_contrastive_loss_negatives_are_all_nodes_and_it_is_summed_over_the_batch():
    model = _model()
    model.eval()
    _, _, hyper = model._forward()
    users, positives = torch.tensor([0, 2]), torch.tensor([1, 3])
    single = [model.contrastive_loss(hyper, users[[k]], positives[[k]]) for k in range(2)]
    both = model.contrastive_loss(hyper, users, positives)
    assert both.item() == pytest.approx(sum(s.item() for s in single), rel=1e-5)  # a sum: no batch negatives
    assert both.item() == pytest.approx(_pair_loss(hyper, 0, 1, users, positives, 0.2).item(), rel=1e-5)


def test_one_modality_has_no_contrastive_term_and_uses_its_hypergraph():
    model = _model({"text": TEXT_FEATURES}, cl_weight=1.0, reg_weight=0.1)
    model.eval()
    users, items, hyper = model._forward()
    expected_users, expected_items, _ = _reference(model, training=False)
    _assert_close(users, expected_users)
    _assert_close(items, expected_items)
    assert model.contrastive_loss(hyper, BATCH[0], BATCH[1]).item() == 0.0
    user, positive, negative = users[BATCH[0]], items[BATCH[1]], items[BATCH[2]]
    expected = (
        -F.logsigmoid((user * positive).sum(1) - (user * negative).sum(1)).mean()
        + 0.1 * (user.norm() + positive.norm() + negative.norm()) / 4
    )
    assert model.loss(*BATCH).item() == pytest.approx(expected.item(), rel=1e-5)
    model.train()
    model.loss(*BATCH).backward()
    assert model.hyperedge_embeddings["text"].grad.abs().sum() > 0


def test_three_modalities_average_the_contrast_over_the_pairs():
    model = _model({"audio": AUDIO_FEATURES, **BOTH})
    assert model.modalities == ["audio", "image", "text"]
    model.eval()
    users, items, hyper = model._forward()
    expected_users, expected_items, _ = _reference(model, training=False)
    _assert_close(users, expected_users)
    _assert_close(items, expected_items)
    pairs = [(0, 1), (0, 2), (1, 2)]
    expected = sum(_pair_loss(hyper, a, b, BATCH[0], BATCH[1], 0.2) for a, b in pairs) / 3
    assert model.contrastive_loss(hyper, BATCH[0], BATCH[1]).item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize(
    "layers",
    [
        {"n_ui_layers": 1, "n_mm_layers": 3},
        {"n_ui_layers": 3, "n_mm_layers": 1},
        {"n_ui_layers": 0, "n_mm_layers": 0},
        {"cf_model": "mf", "n_mm_layers": 2},
    ],
)
def test_other_layer_counts_and_mf_match_the_reference(layers):
    model = _model(**layers)
    model.eval()
    users, items = model.embeddings()
    expected_users, expected_items, _ = _reference(model, training=False)
    _assert_close(users, expected_users)
    _assert_close(items, expected_items)


def test_users_without_training_items_get_finite_vectors():
    model = _model(n_users=4)
    model.eval()
    users, items = model.embeddings()
    assert torch.isfinite(users).all() and torch.isfinite(items).all()
    expected_users, _, _ = _reference(model, training=False)
    _assert_close(users, expected_users)


def test_features_are_frozen_and_left_out_of_checkpoints():
    model = _model()
    assert all("features" not in name or "projections" in name for name in model.state_dict())
    assert not any(parameter is model.features("image") for parameter in model.parameters())
