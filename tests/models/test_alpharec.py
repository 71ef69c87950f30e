import math

import numpy as np
import pytest
import torch

from sigerec.data.dataset import Dataset
from sigerec.errors import SigerecError
from sigerec.models.alpharec import AlphaRec, AlphaRecConfig, sampled_info_nce
from sigerec.training import runner

# Test fixtures, not content: 5 items with simple, distinct "text" vectors.
TEXT = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1], [2, -1, 1]], dtype=np.float32)
IMAGE = np.array([[1, 0], [0, 1], [1, 1], [2, 1], [1, 2]], dtype=np.float32)


def _dataset(features, n_users=3, n_items=4):
    # user 0 - items 0,1,2,3; user 1 - 0,1,2; user 2 - 0,1,3 (a fifth item, when there is one,
    # has no training edge: it stands for a new item).
    users = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    items = np.array([0, 1, 2, 3, 0, 1, 2, 0, 1, 3])
    matrix = Dataset.interaction_matrix(users, items, n_users, n_items)
    return Dataset("hand", n_users, n_items, matrix, matrix.copy(), matrix.copy(), features=features)


def _model(features=None, n_users=3, n_items=4, **config):
    torch.manual_seed(0)
    if features is None:
        features = {"text": TEXT[:n_items]}
    config = {"embedding_size": 4, "mlp_hidden_size": 8, **config}
    return AlphaRec(_dataset(features, n_users, n_items), AlphaRecConfig(**config))


def _hand_propagation(model, n_layers=2):
    """LightGCN over the MLP outputs with the adjacency written out by hand."""
    train = np.zeros((3, 4), dtype=np.float32)
    for user, items in {0: [0, 1, 2, 3], 1: [0, 1, 2], 2: [0, 1, 3]}.items():
        train[user, items] = 1
    adjacency = np.block([[np.zeros((3, 3)), train], [train.T, np.zeros((4, 4))]])
    degree = adjacency.sum(1)
    normalized = torch.tensor(adjacency / np.sqrt(np.outer(degree, degree)), dtype=torch.float32)
    user_text = torch.tensor(np.stack([TEXT[:4].mean(0), TEXT[:3].mean(0), TEXT[[0, 1, 3]].mean(0)]))
    ego = model.mlp(torch.cat([user_text, torch.tensor(TEXT[:4])]))
    layers, layer = [ego], ego
    for _ in range(n_layers):
        layer = normalized @ layer
        layers.append(layer)
    final = torch.stack(layers).mean(0)
    return final[:3], final[3:]


def test_training_defaults_are_the_official_learning_rate_and_batch_size(tiny_dataset_dir):
    config = runner.resolve_config("alpharec", str(tiny_dataset_dir))
    assert config.training.learning_rate == 5e-4 and config.training.train_batch_size == 4096
    overridden = runner.resolve_config("alpharec", str(tiny_dataset_dir), overrides={"learning_rate": 1e-3})
    assert overridden.training.learning_rate == 1e-3


def test_user_language_vector_is_the_mean_of_its_training_items_text():
    model = _model()
    expected = np.array([[0.5, 0.5, 0.5], [2 / 3, 2 / 3, 1 / 3], [2 / 3, 1 / 3, 1 / 3]], dtype=np.float32)
    np.testing.assert_allclose(model.user_text().numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(model.item_text.numpy(), TEXT[:4])


def test_a_user_without_training_items_maps_the_zero_vector():
    model = _model(n_users=4)  # user 3 has no training edge
    with torch.no_grad():
        mapped_user = model._mapped()[3]
        assert torch.allclose(mapped_user, model.mlp(torch.zeros(3)), atol=1e-6)


def test_only_parameters_are_the_mlp_so_none_grow_with_users_or_items():
    small, large = _model(), _model(n_users=7, n_items=5)
    names = [name for name, _ in small.named_parameters()]
    assert names == ["mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"]
    assert isinstance(small.mlp[1], torch.nn.LeakyReLU)
    count = sum(p.numel() for p in small.parameters())
    assert count == 3 * 8 + 8 + 8 * 4 + 4 == sum(p.numel() for p in large.parameters())
    assert set(small.state_dict()) == set(names)  # text vectors are rebuilt, never saved


def test_embeddings_are_unit_length_lightgcn_outputs_of_the_mapped_text():
    model = _model()
    users, items = model.embeddings()
    assert users.shape == (3, 4) and items.shape == (4, 4)
    hand_users, hand_items = _hand_propagation(model)
    assert torch.allclose(users, torch.nn.functional.normalize(hand_users, dim=1), atol=1e-5)
    assert torch.allclose(items, torch.nn.functional.normalize(hand_items, dim=1), atol=1e-5)


def test_scores_are_cosines_of_the_propagated_vectors():
    model = _model()
    hand_users, hand_items = _hand_propagation(model)
    cosines = torch.nn.functional.cosine_similarity(hand_users[[0, 2]].unsqueeze(1), hand_items.unsqueeze(0), dim=2)
    assert torch.allclose(model.scorer()(torch.tensor([0, 2])), cosines, atol=1e-5)


def test_sampled_info_nce_by_hand():
    positive = torch.tensor([0.5, 0.0])
    negatives = torch.tensor([[0.0, -0.5], [0.25, 0.25]])
    # tau 0.5: -log(e^1 / (e^1 + e^0 + e^-1)) and -log(e^0 / (e^0 + 2 e^0.5)).
    first = -math.log(math.e / (math.e + 1 + math.exp(-1)))
    second = -math.log(1 / (1 + 2 * math.exp(0.5)))
    assert sampled_info_nce(positive, negatives, 0.5).item() == pytest.approx((first + second) / 2, rel=1e-6)


def test_loss_with_one_negative_is_the_two_way_softmax_of_the_cosines():
    model = _model(n_negatives=1, temperature=0.2)
    hand_users, hand_items = _hand_propagation(model)
    cosine = torch.nn.functional.cosine_similarity
    positive = cosine(hand_users[1], hand_items[2], dim=0) / 0.2
    negative = cosine(hand_users[1], hand_items[3], dim=0) / 0.2
    expected = -torch.log(torch.exp(positive) / (torch.exp(positive) + torch.exp(negative)))
    loss = model.loss(torch.tensor([1]), torch.tensor([2]), torch.tensor([3]))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_loss_adds_the_drawn_negatives_to_the_trainers_one():
    # Item 4 is cold: "none" keeps embeddings() the vectors the loss trains (no cold-item rule).
    model = _model(n_items=5, n_negatives=4, cold_item_rule="none")
    users, positives, negatives = torch.tensor([1, 2]), torch.tensor([0, 3]), torch.tensor([3, 2])
    torch.manual_seed(7)
    drawn = model.sample_negatives(users, 3)
    user_vectors, item_vectors = model.embeddings()
    all_negatives = torch.cat([negatives.unsqueeze(1), drawn], dim=1)
    negative_scores = (user_vectors[users].unsqueeze(1) * item_vectors[all_negatives]).sum(2)
    positive_scores = (user_vectors[users] * item_vectors[positives]).sum(1)
    expected = sampled_info_nce(positive_scores, negative_scores, 0.15)
    torch.manual_seed(7)
    assert model.loss(users, positives, negatives).item() == pytest.approx(expected.item(), rel=1e-5)


def test_drawn_negatives_are_uniform_over_the_items_the_user_did_not_train_on():
    model = _model(n_items=5)
    torch.manual_seed(0)
    drawn = model.sample_negatives(torch.tensor([0, 1, 2]), 3000)
    assert set(drawn[0].tolist()) == {4}  # user 0 trained on items 0-3
    assert set(drawn[1].tolist()) == {3, 4}
    assert set(drawn[2].tolist()) == {2, 4}
    counts = np.bincount(drawn[1].numpy(), minlength=5)[[3, 4]]
    assert abs(counts[0] - counts[1]) < 300  # 1500 each expected; the std is about 27


def test_sampled_negatives_repeat_for_the_same_seed():
    model = _model(n_items=5)
    draws = []
    for _ in range(2):
        torch.manual_seed(3)
        draws.append(model.sample_negatives(torch.tensor([1, 2, 1]), 5))
    assert torch.equal(draws[0], draws[1])


def test_text_modality_is_used_when_there_are_several():
    model = _model({"image": IMAGE[:4], "text": TEXT[:4]})
    assert model.modality == "text" and model.item_text.shape == (4, 3)


def test_a_single_modality_of_another_name_is_used():
    model = _model({"image": IMAGE[:4]})
    assert model.modality == "image" and model.item_text.shape == (4, 2)


def test_language_modality_selects_one_explicitly():
    model = _model({"image": IMAGE[:4], "text": TEXT[:4]}, language_modality="image")
    assert model.modality == "image"


def test_several_modalities_without_text_raise_an_error_naming_them_and_the_key():
    with pytest.raises(SigerecError, match="language_modality") as error:
        _model({"image": IMAGE[:4], "audio": IMAGE[:4]})
    assert "audio, image" in str(error.value)


def test_unknown_language_modality_raises_an_error_listing_the_modalities():
    with pytest.raises(SigerecError, match="'caption'.*text"):
        _model(language_modality="caption")


def test_new_item_from_text_equals_an_item_without_interactions():
    model = _model(n_items=5, cold_item_rule="none")  # item 4 has no training edge; its plain forward
    _, items = model.embeddings()
    assert torch.allclose(model.item_vectors_from_text(TEXT[4]), items[[4]], atol=1e-6)
    assert torch.allclose(model.item_vectors_from_text(TEXT[[4, 4]]), items[[4, 4]], atol=1e-6)


def test_new_user_vector_maps_the_mean_of_the_liked_items_text():
    model = _model()
    vector = model.user_vector_from_liked_items(model.item_text[[0, 2]])
    expected = torch.nn.functional.normalize(model.mlp(torch.tensor(TEXT[[0, 2]].mean(0))), dim=0)
    assert vector.shape == (4,) and torch.allclose(vector, expected, atol=1e-6)


def test_new_text_vectors_of_the_wrong_size_raise_an_error():
    with pytest.raises(SigerecError, match="size 3"):
        _model().item_vectors_from_text(np.ones((2, 5)))


def test_trained_weights_load_into_a_model_of_a_larger_catalogue():
    trained = _model()
    larger = _model(n_users=4, n_items=5)
    larger.load_state_dict(trained.state_dict())
    assert torch.allclose(larger.item_vectors_from_text(TEXT[:2]), trained.item_vectors_from_text(TEXT[:2]))


def _write_text_features(folder):
    # Test fixtures, not content: fixed values for the 6 items of the tiny dataset.
    np.save(folder / "text_feat.npy", np.arange(30, dtype=np.float32).reshape(6, 5) % 4 / 4)
