import numpy as np
import pytest
import torch

from model_checks import HAND_IMAGE_FEATURES, HAND_TEXT_FEATURES
from model_checks import hand_dataset as _dataset
from sigerec.graphs.adjacency import normalized_interaction_adjacency
from sigerec.models.bm3 import BM3, BM3Config, cosine_alignment_loss

IMAGE_FEATURES = HAND_IMAGE_FEATURES
TEXT_FEATURES = HAND_TEXT_FEATURES
AUDIO_FEATURES = np.array([[0.5], [-1.0], [2.0], [1.5]], dtype=np.float32)


def _model(features=None, **config):
    torch.manual_seed(0)
    features = {"image": IMAGE_FEATURES, "text": TEXT_FEATURES} if features is None else features
    return BM3(_dataset(features), BM3Config(embedding_size=4, **config))


def _cosine_gap(a, b):
    return 1 - torch.nn.functional.cosine_similarity(a, b, dim=-1).mean()


def test_defaults_are_the_published_baby_configuration():
    config = BM3Config()
    assert (config.n_layers, config.dropout, config.reg_weight, config.cl_weight) == (1, 0.5, 0.1, 2.0)
    assert config.embedding_size == 64


def test_cosine_alignment_loss_by_hand_and_stops_target_gradient():
    # cos([1,0],[0,1]) = 0 and cos([1,1],[2,2]) = 1, so the loss is 1 - (0 + 1)/2 = 0.5.
    online = torch.tensor([[1.0, 0.0], [1.0, 1.0]], requires_grad=True)
    target = torch.tensor([[0.0, 1.0], [2.0, 2.0]], requires_grad=True)
    loss = cosine_alignment_loss(online, target)
    assert loss.item() == pytest.approx(0.5)
    loss.backward()
    assert target.grad is None
    # d/dx of -cos(x, y)/2 at x = [1,0], y = [0,1] is -(y/|y| - cos x/|x|)/(2|x|) = [0, -0.5].
    assert torch.allclose(online.grad[0], torch.tensor([0.0, -0.5]))


def test_encoder_is_lightgcn_mean_plus_item_residual():
    model = _model(n_layers=1)
    adjacency = normalized_interaction_adjacency(_dataset({}).train).toarray()
    # By hand: user 0 (degree 4) - item 0 (degree 3) weighs 1/sqrt(12); user 1 - item 2 (3, 2) 1/sqrt(6).
    assert adjacency[0, 3 + 0] == pytest.approx(1 / np.sqrt(12), rel=1e-5)
    assert adjacency[1, 3 + 2] == pytest.approx(1 / np.sqrt(6), rel=1e-5)
    ego = torch.cat([model.user_embedding, model.item_embedding])
    mean = (ego + torch.from_numpy(adjacency) @ ego) / 2
    users, items = model.encode()
    assert users.shape == (3, 4) and items.shape == (4, 4)
    assert torch.allclose(users, mean[:3], atol=1e-6)
    assert torch.allclose(items, mean[3:] + model.item_embedding, atol=1e-6)


def test_zero_layers_give_the_embeddings_and_twice_the_item_embeddings():
    model = _model(n_layers=0)
    users, items = model.encode()
    assert torch.allclose(users, model.user_embedding)
    assert torch.allclose(items, 2 * model.item_embedding)


def test_target_view_is_detached_dropout_scaled_by_the_kept_share():
    model = _model(dropout=0.5)
    online = torch.ones(200, 4, requires_grad=True)
    torch.manual_seed(3)
    target = model._target(online)
    assert not target.requires_grad
    assert set(target.unique().tolist()) == {0.0, 2.0}  # kept entries scaled by 1 / (1 - 0.5)
    assert 0.4 < (target == 0).float().mean().item() < 0.6
    torch.manual_seed(3)
    assert torch.equal(model._target(online), target)  # torch's global RNG drives it


def test_zero_dropout_target_equals_the_online_view():
    model = _model(dropout=0.0)
    online = torch.randn(5, 4)
    assert torch.equal(model._target(online), online)


def test_scores_apply_the_predictor_to_both_sides():
    model = _model()
    model.eval()
    users, items = model.encode()
    predicted_users, predicted_items = model.embeddings()
    assert torch.allclose(predicted_users, model.predictor(users))
    assert torch.allclose(predicted_items, model.predictor(items))
    scores = model.scorer()(torch.tensor([0, 2]))
    assert scores.shape == (2, 4)
    assert torch.allclose(scores, predicted_users[[0, 2]] @ predicted_items.T, atol=1e-6)


@pytest.mark.parametrize(
    "features",
    [
        {"image": IMAGE_FEATURES, "text": TEXT_FEATURES},
        {"audio": AUDIO_FEATURES, "image": IMAGE_FEATURES, "text": TEXT_FEATURES},
    ],
)
def test_loss_without_dropout_is_reconstruction_plus_weighted_alignments_plus_penalty(features):
    # dropout 0: every target is the online view itself, so the loss is a closed formula.
    model = _model(features, dropout=0.0, cl_weight=0.7, reg_weight=0.3)
    users, items = torch.tensor([0, 1, 2]), torch.tensor([3, 2, 1])
    user_table, item_table = model.encode()
    user, item = user_table[users], item_table[items]
    predictor = model.predictor
    expected = _cosine_gap(predictor(user), item) + _cosine_gap(predictor(item), user)
    for modality in features:
        projected = model.feature_projections[modality](torch.from_numpy(features[modality][items.numpy()]))
        expected = expected + 0.7 * (
            _cosine_gap(predictor(projected), item) + _cosine_gap(predictor(projected), projected)
        )
    norms = torch.linalg.vector_norm(user_table) + torch.linalg.vector_norm(item_table)
    expected = expected + 0.3 * norms / 4  # MMRec's EmbLoss: whole tables, divided by n_items
    loss = model.loss(users, items, torch.tensor([0, 0, 0]))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert len(model.feature_projections) == len(features)


def test_loss_ignores_negatives():
    model = _model()
    users, positives = torch.tensor([0, 1]), torch.tensor([1, 2])
    torch.manual_seed(5)
    first = model.loss(users, positives, torch.tensor([2, 3]))
    torch.manual_seed(5)
    second = model.loss(users, positives, torch.tensor([0, 0]))
    assert torch.equal(first, second)


def test_frozen_features_stay_out_of_parameters_and_checkpoints():
    model = _model(train_features=False)
    assert "text_features" not in dict(model.named_parameters())
    assert "text_features" not in model.state_dict()
    assert torch.equal(model.features("text"), torch.from_numpy(TEXT_FEATURES))
