import numpy as np
import pytest
import torch

from sigerec.data.dataset import Dataset
from sigerec.models.vbpr import VBPR, VBPRConfig

# Test fixture, not content: 3 items x 4 feature dims of simple, distinct values.
TEXT_FEATURES = np.arange(12, dtype=np.float32).reshape(3, 4) / 10


def _dataset(features):
    # user 0 - items 0,1; user 1 - item 1; user 2 - item 2.
    users, items = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2])
    matrix = Dataset.interaction_matrix(users, items, 3, 3)
    return Dataset("hand", 3, 3, matrix, matrix.copy(), matrix.copy(), features=features)


def _model(features=None, **config):
    torch.manual_seed(0)
    features = {"text": TEXT_FEATURES} if features is None else features
    return VBPR(_dataset(features), VBPRConfig(**config))


def test_user_and_item_vectors_have_twice_the_embedding_size():
    users, items = _model().embeddings()
    assert users.shape == (3, 128) and items.shape == (3, 128)


def test_item_vector_is_id_embedding_then_projected_features():
    model = _model(embedding_size=5)
    _, items = model.embeddings()
    weight, bias = model.feature_projection.weight, model.feature_projection.bias
    expected_projection = torch.from_numpy(TEXT_FEATURES) @ weight.T + bias
    assert torch.allclose(items[:, :5], model.item_embedding)
    assert torch.allclose(items[:, 5:], expected_projection, atol=1e-6)


def test_modalities_are_concatenated_in_sorted_name_order():
    image = np.ones((3, 2), dtype=np.float32)
    model = _model({"text": TEXT_FEATURES, "image": image})
    assert torch.equal(model.item_features, torch.from_numpy(np.concatenate([image, TEXT_FEATURES], axis=1)))
    assert model.feature_projection.in_features == 6


def test_loss_trains_embeddings_and_projection_but_not_features():
    model = _model()
    loss = model.loss(torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([2, 2]))
    loss.backward()
    for name in ("user_embedding", "item_embedding", "feature_projection.weight", "feature_projection.bias"):
        gradient = model.get_parameter(name).grad
        assert gradient is not None and torch.isfinite(gradient).all() and gradient.abs().sum() > 0, name
    assert not model.item_features.requires_grad and model.item_features.grad is None
    assert "item_features" not in dict(model.named_parameters())


def test_loss_is_bpr_plus_weighted_norm_of_batch_vectors():
    model = _model(reg_weight=0.5)
    users, items = model.embeddings()
    user, positive, negative = users[[0]], items[[1]], items[[2]]
    ranking = -torch.nn.functional.logsigmoid((user * positive).sum() - (user * negative).sum())
    norms = user.norm() + positive.norm() + negative.norm()
    loss = model.loss(torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))
    assert loss.item() == pytest.approx((ranking + 0.5 * norms).item(), rel=1e-5)


def test_checkpoint_leaves_out_the_feature_buffer_and_round_trips():
    model = _model()
    state = model.state_dict()
    assert "item_features" not in state
    other = VBPR(_dataset({"text": TEXT_FEATURES}), VBPRConfig())
    other.load_state_dict(state)
    assert torch.allclose(other.embeddings()[1], model.embeddings()[1])
